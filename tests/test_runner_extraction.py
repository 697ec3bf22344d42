"""Forward passes shared between targets and with the truth: per-class score samples, one store per source."""

from __future__ import annotations

import numpy as np
import pytest

from taskspace.features import source_outputs
from taskspace.runner import GridConfig, compute_matrix, open_run
from taskspace.runner.extraction import (
    bank_indices,
    bank_is_current,
    bank_key,
    extract_bank,
    gather,
    read_bank,
    score_positions,
)
from taskspace.training.checkpoints import load_model

# Three digit classes, every pair: each class belongs to two targets.
SPACE = 'dataset = "digits"\nclasses = ["1", "7", "3"]\n'


@pytest.fixture(scope="module")
def shared_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("shared")
    space = folder / "space.toml"
    space.write_text(SPACE)
    context = open_run(folder / "run", GridConfig(space=str(space), train={"epochs": 2, "seed": 0}, score_samples=60))
    compute_matrix(context, estimators=("alignment", "logme"))
    return context


def test_score_samples_are_balanced_and_from_the_target_training_split(shared_run):
    for task_id in shared_run.space.ids:
        splits = shared_run.splits(task_id)
        positions = score_positions(shared_run, splits)
        assert len(positions) == 60 and len(np.unique(positions)) == 60
        assert np.bincount(splits.train.labels[positions]).tolist() == [30, 30]
        assert np.all(np.diff(positions) > 0)


def test_targets_that_share_a_class_share_its_sampled_images(shared_run):
    sampled = {}
    for task_id in shared_run.space.ids:
        splits = shared_run.splits(task_id)
        chosen = splits.train_indices[score_positions(shared_run, splits)]
        for label, name in enumerate(splits.task.classes):
            sampled.setdefault(name, []).append(set(chosen[splits.train.labels[score_positions(shared_run, splits)] == label]))
    overlaps = [len(first & second) for first, second in (pair for pair in sampled.values())]
    # Each class is in two targets; their validation holdouts differ, so most but not all images agree.
    assert all(overlap >= 20 for overlap in overlaps)
    # The bank holds the union: fewer images than three targets' samples passed separately.
    assert len(bank_indices(shared_run)) < 3 * 60


def test_bank_rows_equal_a_forward_pass_over_the_target_images(shared_run):
    source, target = "1_vs_7", "7_vs_3"
    bank = read_bank(shared_run, source)
    assert bank is not None
    splits = shared_run.splits(target)
    positions = score_positions(shared_run, splits)
    gathered = gather(bank, splits, positions)
    net, saved = load_model(shared_run.checkpoint(source))
    direct = source_outputs(net, splits.train.take(positions), normalization=saved["normalization"])
    np.testing.assert_allclose(gathered.features, direct.features, atol=1e-5)
    np.testing.assert_allclose(gathered.logits, direct.logits, atol=1e-4)
    np.testing.assert_array_equal(gathered.labels, direct.labels)


def test_every_source_has_one_current_bank_and_a_changed_checkpoint_makes_it_stale(shared_run, tmp_path):
    for source in shared_run.space.ids:
        assert bank_is_current(shared_run, source)
        assert len(read_bank(shared_run, source)["indices"]) == len(bank_indices(shared_run))
    checkpoint = shared_run.checkpoint("1_vs_7")
    original = checkpoint.read_bytes()
    try:
        checkpoint.write_bytes(original + b"\0")
        assert not bank_is_current(shared_run, "1_vs_7")
        assert read_bank(shared_run, "1_vs_7") is None
    finally:
        checkpoint.write_bytes(original)
    assert bank_is_current(shared_run, "1_vs_7")


def test_a_bank_missing_images_is_refused(shared_run):
    bank = dict(read_bank(shared_run, "1_vs_7"))
    bank["indices"] = bank["indices"][1:]
    for name in ("features", "logits"):
        bank[name] = bank[name][1:]
    splits = shared_run.splits("1_vs_7")
    with pytest.raises(Exception, match="lacks images"):
        gather(bank, splits, np.arange(len(splits.train.labels)))


def test_extract_bank_rewrites_a_damaged_bank(shared_run):
    path = shared_run.path("features") / f"{bank_key(shared_run, '7_vs_3')}.npz"
    path.write_bytes(b"not an npz")
    assert read_bank(shared_run, "7_vs_3") is None
    extract_bank(shared_run, "7_vs_3")
    assert read_bank(shared_run, "7_vs_3") is not None


def test_a_trained_source_reads_what_the_bank_holds_bit_for_bit(shared_run):
    from taskspace.data import ImageSplit
    from taskspace.zoo.networks import LOGITS, trained_outputs
    from taskspace.zoo.spec import TRAINED_LAYER, ZooSpec

    zoo = ZooSpec.trained(shared_run.space, shared_run.grid)
    # one source per task, named by it, whose default module keeps the task's id (rows and cell files)
    assert zoo.modules == shared_run.space.ids
    assert all(source.trained and source.task == source.name for source in zoo.sources)
    assert zoo.sources[0].to_record()["train"] == shared_run.grid.source_config(
        zoo.sources[0].name, shared_run.space.dataset).hash()
    indices = bank_indices(shared_run)
    images = ImageSplit(shared_run.dataset().train.images[indices],
                        np.asarray(shared_run.dataset().train.labels)[indices])
    for source in zoo.sources:
        bank = read_bank(shared_run, source.name)
        assert bank is not None
        outputs = trained_outputs(shared_run.folder / source.reference, images)
        np.testing.assert_array_equal(outputs[TRAINED_LAYER], bank["features"])
        np.testing.assert_array_equal(outputs[LOGITS], bank["logits"])
    # asking a trained source for another layer adds a row named source:layer
    deeper = ZooSpec.trained(shared_run.space, shared_run.grid, layers=("hidden.0", TRAINED_LAYER))
    assert deeper.sources[0].modules == (f"{deeper.sources[0].name}:hidden.0", deeper.sources[0].name)


def test_the_frozen_truth_reads_the_scores_store_and_measures_what_a_pass_of_its_own_would(shared_run):
    """One store: the frozen probes read the forward passes the scores made (and add only the images they
    lack, once per source), and measure bit for bit what a per-target forward pass of their own gives."""
    from dataclasses import replace

    from taskspace.runner import compute_truth
    from taskspace.runner.cells import transfer_job
    from taskspace.runner.extraction import store_key_of, truth_indices
    from taskspace.transfer import get_protocol
    from taskspace.zoo.store import stored_indices

    compute_truth(shared_run, protocols=("frozen_all", "frozen_k10"))
    features = shared_run.path("features")
    for source in shared_run.space.ids:
        held = stored_indices(features, store_key_of(shared_run, source, "train"))
        np.testing.assert_array_equal(held, np.union1d(bank_indices(shared_run), truth_indices(shared_run, "train")))
        np.testing.assert_array_equal(stored_indices(features, store_key_of(shared_run, source, "test")),
                                      truth_indices(shared_run, "test"))
    # one store file per source and split: no per-target cache of forward passes beside it
    assert len(list(features.glob("*.npz"))) == 2 * len(shared_run.space.ids)
    for protocol in ("frozen_all", "frozen_k10"):
        for source in shared_run.space.ids:
            for target in shared_run.space.ids:
                job = transfer_job(shared_run, protocol, source, target)
                assert job.outputs is not None
                own = replace(job, outputs=None, feature_cache=shared_run.folder.parent / "own-passes")
                measured = get_protocol(protocol).measure(job)
                assert measured == get_protocol(protocol).measure(own), (protocol, source, target)
                recorded = shared_run.read_cell(shared_run.truth_file(protocol, source, target), source, target)
                assert recorded["accuracy"] == measured["accuracy"]
                # every truth cell records how it was measured
                assert recorded["recipe"]["labels_per_class"] == (None if protocol == "frozen_all" else 10)
                assert recorded["recipe"]["steps"] == job.config.output_steps


def _assert_one_sampler(run, samples, *, zoo_seed):
    """The one sampler gives a task-space run's sample and a zoo run's, exactly, on every task of ``run``."""
    from taskspace.zoo.targets import stratified_positions, target_images

    dataset = run.dataset()
    labels = np.asarray(dataset.train.labels)
    members = {name: np.flatnonzero(labels == dataset.class_names.index(name)) for name in dataset.class_names}
    for task_id in run.space.ids:
        splits = run.splits(task_id)
        classes = {name: members[name] for name in splits.task.classes}
        # "task-splits": a task-space run's sample, validation share held out
        np.testing.assert_array_equal(
            stratified_positions(splits.train_indices, classes, samples=samples, seed=run.grid.seed,
                                 policy="task-splits"),
            score_positions(run, splits))
        # "all": a zoo run's sample over every training image of the target's classes
        images = target_images(dataset, splits.task, score_samples=samples, seed=zoo_seed)
        np.testing.assert_array_equal(
            stratified_positions(images.train, classes, samples=samples, seed=zoo_seed, policy="all"),
            images.scored)


@pytest.mark.parametrize("samples", [60, 11, None])
def test_one_sampler_gives_both_recorded_image_policies(shared_run, samples):
    import dataclasses

    run = dataclasses.replace(shared_run, grid=dataclasses.replace(shared_run.grid, score_samples=samples))
    _assert_one_sampler(run, samples, zoo_seed=3)


def test_one_sampler_matches_the_default_space_on_cifar10(cifar_root, tmp_path):
    from taskspace.runner import Run

    run = Run.create(tmp_path / "run", GridConfig(space="default", score_samples=1000), data_root=str(cifar_root))
    _assert_one_sampler(run, 1000, zoo_seed=0)
