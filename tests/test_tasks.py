"""Tasks, task spaces, splits and few-label subsets."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from taskspace.data import CIFAR10_CLASSES, ImageDataset, ImageSplit
from taskspace.errors import ConfigError
from taskspace.tasks import BinaryTask, Task, TaskSpace, sample_labels_per_class, stratified_holdout


def _toy_dataset(per_class: int = 20, test_per_class: int = 5) -> ImageDataset:
    names = ("a", "b", "c")
    train_labels = np.repeat(np.arange(3), per_class)
    test_labels = np.repeat(np.arange(3), test_per_class)
    train_images = np.arange(len(train_labels), dtype=np.uint8)[:, None, None, None].repeat(2, axis=1).repeat(2, 2)
    test_images = np.zeros((len(test_labels), 2, 2, 1), dtype=np.uint8)
    return ImageDataset("toy", names, ImageSplit(train_images, train_labels), ImageSplit(test_images, test_labels))


def test_binary_task_id_and_parse_round_trip():
    task = BinaryTask("cat", "dog")
    assert task.id == "cat_vs_dog"
    assert Task.parse("cat_vs_dog", class_names=CIFAR10_CLASSES) == task
    assert Task.parse("all", class_names=CIFAR10_CLASSES).num_classes == 10


def test_unknown_class_suggests_the_close_name():
    with pytest.raises(ConfigError, match=r"unknown class 'atuomobile'; did you mean 'automobile'\?"):
        Task.parse("atuomobile_vs_truck", class_names=CIFAR10_CLASSES)


def test_same_class_twice_is_refused():
    with pytest.raises(ConfigError, match="names class 'cat' twice"):
        BinaryTask("cat", "cat")


def test_default_space_is_the_15_pairs_of_six_classes():
    space = TaskSpace.default()
    assert len(space.tasks) == 15
    assert space.dataset == "cifar10"
    assert set(space.classes) == {"automobile", "cat", "deer", "dog", "horse", "truck"}
    assert "cat_vs_dog" in space.ids and "automobile_vs_truck" in space.ids


def test_space_from_toml_classes_and_pairs(tmp_path):
    classes_file = tmp_path / "space.toml"
    classes_file.write_text('dataset = "cifar10"\nclasses = ["airplane", "ship", "frog"]\n')
    assert TaskSpace.resolve(str(classes_file)).ids == ("airplane_vs_ship", "airplane_vs_frog", "ship_vs_frog")
    pairs_file = tmp_path / "pairs.toml"
    pairs_file.write_text('pairs = [["cat", "dog"], ["deer", "horse"]]\n')
    assert TaskSpace.resolve(str(pairs_file)).ids == ("cat_vs_dog", "deer_vs_horse")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('classes = ["cat", "dgo"]', "did you mean 'dog'"),
        ('classes = ["cat"]', "at least two classes"),
        ('pairs = [["cat", "cat"]]', "twice"),
        ('classes = ["cat", "dog"]\npairs = [["cat", "dog"]]', "exactly one of"),
        ('colours = ["red"]', "unknown key"),
        ("classes = [", "not valid TOML"),
    ],
)
def test_bad_space_files_give_one_clear_line(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as caught:
        TaskSpace.resolve(str(path))
    assert "\n" not in str(caught.value)


def test_unknown_space_name():
    with pytest.raises(ConfigError, match="did you mean 'digits'"):
        TaskSpace.resolve("digit")


def test_select_carves_validation_from_training_and_remaps_labels():
    dataset = _toy_dataset()
    splits = Task(("c", "a")).select(dataset, validation_fraction=0.25, seed=3)
    assert set(np.unique(splits.train.labels)) == {0, 1}
    # class "c" (original 2) became label 0
    assert np.all(dataset.train.labels[splits.train_indices][splits.train.labels == 0] == 2)
    assert len(splits.validation) == 10 and len(splits.train) == 30 and len(splits.test) == 10
    assert not set(splits.train_indices) & set(splits.validation_indices)
    again = Task(("c", "a")).select(dataset, validation_fraction=0.25, seed=3)
    assert np.array_equal(splits.validation_indices, again.validation_indices)
    other = Task(("c", "a")).select(dataset, validation_fraction=0.25, seed=4)
    assert not np.array_equal(splits.validation_indices, other.validation_indices)


def test_stratified_holdout_holds_out_the_share_of_every_class():
    labels = np.repeat([0, 1], [100, 50])
    kept, held = stratified_holdout(labels, fraction=0.1, seed=0)
    assert np.bincount(labels[held]).tolist() == [10, 5]
    assert len(kept) + len(held) == 150


def test_few_labels_are_balanced_deterministic_and_bounded():
    labels = np.repeat([0, 1, 2], [7, 9, 8])
    chosen = sample_labels_per_class(labels, 3, seed=1)
    assert np.bincount(labels[chosen]).tolist() == [3, 3, 3]
    assert np.array_equal(chosen, sample_labels_per_class(labels, 3, seed=1))
    with pytest.raises(ConfigError, match="more than the 7 training images"):
        sample_labels_per_class(labels, 8, seed=1)
    with pytest.raises(ConfigError, match="at least 1"):
        sample_labels_per_class(labels, 0, seed=1)


def test_default_space_groups_its_15_tasks_into_6_task_groups():
    space = TaskSpace.default()
    assert space.group_names == ("vehicles", "pets", "hoofed")
    assert space.class_group("truck") == "vehicles"
    assert space.task_group("cat_vs_dog") == "pets"
    assert space.task_group(BinaryTask("automobile", "deer")) == "hoofed|vehicles"
    assert space.task_group("deer_vs_truck") == "hoofed|vehicles"  # unordered: same as automobile_vs_deer
    sizes = sorted(Counter(space.task_groups().values()).values())
    assert sizes == [1, 1, 1, 4, 4, 4]
    assert hash(space) == hash(TaskSpace.default())  # still a hashable frozen dataclass


def test_groups_are_optional_and_accepted_as_a_mapping():
    assert TaskSpace.digits().groups == ()
    with pytest.raises(ConfigError, match="no class groups"):
        TaskSpace.digits().task_group("0_vs_1")
    space = TaskSpace.from_classes("cifar10", ["cat", "dog", "ship"], groups={"pets": ["cat", "dog"]})
    assert space.groups == (("pets", ("cat", "dog")),)
    with pytest.raises(ConfigError, match="class 'ship' is in no group"):
        space.task_group("cat_vs_ship")


@pytest.mark.parametrize(
    ("groups", "message"),
    [
        ({"pets": ["cat", "dog"], "odd": ["dog"]}, "class 'dog' is in groups 'pets' and 'odd'; put each class in one"),
        ({"pets": ["cat", "dgo"]}, "names class 'dgo', which no task of the space uses; did you mean 'dog'"),
        ({"pets": []}, "lists no class"),
        ({"a|b": ["cat"]}, "contains '|'"),
    ],
)
def test_bad_groups_give_one_clear_line(groups, message):
    with pytest.raises(ConfigError, match=message) as caught:
        TaskSpace.from_classes("cifar10", ["cat", "dog", "deer"], groups=groups)
    assert "\n" not in str(caught.value)


def test_space_from_toml_reads_and_checks_groups(tmp_path):
    path = tmp_path / "space.toml"
    path.write_text('classes = ["automobile", "truck", "cat"]\n[groups]\nvehicles = ["automobile", "truck"]\n'
                    'pets = ["cat"]\n')
    space = TaskSpace.from_toml(path)
    assert space.task_groups() == {
        "automobile_vs_truck": "vehicles", "automobile_vs_cat": "pets|vehicles", "truck_vs_cat": "pets|vehicles"
    }
    path.write_text('classes = ["automobile", "truck"]\n[groups]\nvehicles = ["automobile", "airplane"]\n')
    with pytest.raises(ConfigError, match=r"\[groups\] in .*names class 'airplane'") as caught:
        TaskSpace.from_toml(path)
    assert "\n" not in str(caught.value)
    path.write_text('classes = ["automobile", "truck"]\ngroups = ["automobile"]\n')
    with pytest.raises(ConfigError, match="must be a table of class lists"):
        TaskSpace.from_toml(path)


def test_confirmation_space_has_vehicle_and_animal_groups():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "spaces" / "confirm.toml"
    space = TaskSpace.from_toml(path)
    assert dict(space.groups) == {"vehicles": ("airplane", "ship", "truck"), "animals": ("bird", "frog", "deer")}
    assert Counter(space.task_groups().values()) == {"vehicles": 3, "animals": 3, "animals|vehicles": 9}
