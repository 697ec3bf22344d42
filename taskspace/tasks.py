"""Tasks and task spaces: which classes a task separates, its splits, and few-label subsets.

A :class:`Task` names the classes it separates; its id joins them with ``_vs_`` (``cat_vs_dog``). A
:class:`TaskSpace` is a dataset plus a tuple of tasks: by default the 15 binary CIFAR-10 tasks over
automobile, cat, deer, dog, horse and truck.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from taskspace.data import ImageDataset, ImageSplit, dataset_class_names
from taskspace.errors import ConfigError, did_you_mean
from taskspace.io import read_toml

__all__ = [
    "Task",
    "BinaryTask",
    "TaskSplits",
    "TaskSpace",
    "DEFAULT_CLASSES",
    "DIGITS_CLASSES",
    "sample_labels_per_class",
    "stratified_holdout",
]

#: The six CIFAR-10 classes of the paper's task space: vehicles, cat/dog and deer/horse.
DEFAULT_CLASSES: tuple[str, ...] = ("automobile", "cat", "deer", "dog", "horse", "truck")
#: Six digit classes for the embedded demo space (15 pairs, like the default space).
DIGITS_CLASSES: tuple[str, ...] = ("0", "1", "3", "5", "8", "9")
_SEPARATOR = "_vs_"
ALL_CLASSES = "all"


@dataclass(frozen=True)
class Task:
    """A classification task over some classes of a dataset.

    Args:
        classes: the class names, in the order that defines the task's labels 0..C-1.
    """

    classes: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "classes", tuple(self.classes))
        if len(self.classes) < 2:
            raise ConfigError(f"a task needs at least two classes, got {list(self.classes)}; name two or more")
        for name in self.classes:
            if not name:
                raise ConfigError("a task has an empty class name; name every class")
            if _SEPARATOR in name:
                raise ConfigError(f"class name '{name}' contains '{_SEPARATOR}'; rename the class")
        seen: set[str] = set()
        for name in self.classes:
            if name in seen:
                raise ConfigError(
                    f"task '{_SEPARATOR.join(self.classes)}' names class '{name}' twice; "
                    "pick different classes"
                )
            seen.add(name)

    @property
    def id(self) -> str:
        """Readable identifier, e.g. ``cat_vs_dog``."""
        return _SEPARATOR.join(self.classes)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @classmethod
    def parse(cls, task_id: str, *, class_names: Sequence[str]) -> Task:
        """Build a task from its id (``cat_vs_dog``) or ``all``, checking every class exists.

        Raises:
            ConfigError: an unknown class (with the closest known name) or a repeated class.
        """
        if task_id == ALL_CLASSES:
            return Task(tuple(class_names))
        names = tuple(task_id.split(_SEPARATOR))
        for name in names:
            check_class_name(name, class_names)
        if len(names) == 2:
            return BinaryTask(*names)
        return Task(names)

    def validate(self, class_names: Sequence[str]) -> None:
        """Check that every class of the task exists in ``class_names``."""
        for name in self.classes:
            check_class_name(name, class_names)

    def select(self, dataset: ImageDataset, *, validation_fraction: float = 0.1, seed: int = 0) -> TaskSplits:
        """The task's train / validation / test splits, labels mapped to 0..C-1.

        The validation split is carved out of the training data, stratified per class; which images go
        where depends only on ``seed``.
        """
        self.validate(dataset.class_names)
        if not 0.0 <= validation_fraction < 1.0:
            raise ConfigError(
                f"validation fraction must be in [0, 1), got {validation_fraction}; use e.g. 0.1"
            )
        original = np.array([dataset.class_names.index(name) for name in self.classes])
        train_indices, train_labels = _task_indices(dataset.train, original)
        test_indices, test_labels = _task_indices(dataset.test, original)
        fit_positions, validation_positions = stratified_holdout(
            train_labels, fraction=validation_fraction, seed=seed
        )
        return TaskSplits(
            task=self,
            train=ImageSplit(dataset.train.images[train_indices[fit_positions]], train_labels[fit_positions]),
            validation=ImageSplit(
                dataset.train.images[train_indices[validation_positions]], train_labels[validation_positions]
            ),
            test=ImageSplit(dataset.test.images[test_indices], test_labels),
            train_indices=train_indices[fit_positions],
            validation_indices=train_indices[validation_positions],
            test_indices=test_indices,
        )


class BinaryTask(Task):
    """A two-class task, e.g. ``BinaryTask("cat", "dog")`` with id ``cat_vs_dog``."""

    def __init__(self, first: str, second: str) -> None:
        super().__init__((first, second))

    def __repr__(self) -> str:
        return f"BinaryTask({self.classes[0]!r}, {self.classes[1]!r})"


def check_class_name(name: str, class_names: Sequence[str]) -> None:
    """Raise :class:`ConfigError` with a suggestion if ``name`` is not one of ``class_names``."""
    if name not in class_names:
        raise ConfigError(
            f"unknown class '{name}'{did_you_mean(name, class_names)} "
            f"(classes: {', '.join(class_names)})"
        )


@dataclass(frozen=True)
class TaskSplits:
    """A task's data: labels are 0..C-1 in the order of ``task.classes``.

    The ``*_indices`` arrays locate each image in the dataset's own train or test split.
    """

    task: Task
    train: ImageSplit
    validation: ImageSplit
    test: ImageSplit
    train_indices: np.ndarray
    validation_indices: np.ndarray
    test_indices: np.ndarray


def _task_indices(split: ImageSplit, original_labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mask = np.isin(split.labels, original_labels)
    indices = np.flatnonzero(mask)
    lookup = {int(original): new for new, original in enumerate(original_labels)}
    labels = np.array([lookup[int(label)] for label in split.labels[indices]], dtype=np.int64)
    return indices, labels


def stratified_holdout(labels: np.ndarray, *, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split positions ``0..n-1`` into (kept, held out), holding out ``fraction`` of every class.

    Returns sorted position arrays; the same ``seed`` always gives the same split.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5EED]))
    held_out: list[np.ndarray] = []
    for label in np.unique(labels):
        positions = np.flatnonzero(labels == label)
        count = int(round(fraction * len(positions)))
        held_out.append(rng.permutation(positions)[:count])
    held = np.sort(np.concatenate(held_out)) if held_out else np.array([], dtype=np.int64)
    kept = np.setdiff1d(np.arange(len(labels)), held)
    return kept, held


def sample_labels_per_class(labels: np.ndarray, labels_per_class: int, *, seed: int) -> np.ndarray:
    """Positions of ``labels_per_class`` examples of every class, drawn without replacement.

    Draw from the training split only. The result is sorted; equal seeds give equal subsets.

    Raises:
        ConfigError: ``labels_per_class`` < 1 or larger than the smallest class.
    """
    if labels_per_class < 1:
        raise ConfigError(f"labels per class must be at least 1, got {labels_per_class}")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x1ABE1]))
    chosen: list[np.ndarray] = []
    for label in np.unique(labels):
        positions = np.flatnonzero(labels == label)
        if labels_per_class > len(positions):
            raise ConfigError(
                f"labels per class {labels_per_class} is more than the {len(positions)} training images "
                f"of class {int(label)}; use at most {len(positions)}"
            )
        chosen.append(rng.choice(positions, size=labels_per_class, replace=False))
    return np.sort(np.concatenate(chosen))


@dataclass(frozen=True)
class TaskSpace:
    """A dataset and the tasks defined on it."""

    dataset: str
    tasks: tuple[Task, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "tasks", tuple(self.tasks))
        if not self.tasks:
            raise ConfigError("a task space needs at least one task")
        ids = [task.id for task in self.tasks]
        duplicates = sorted({task_id for task_id in ids if ids.count(task_id) > 1})
        if duplicates:
            raise ConfigError(f"task space lists {', '.join(duplicates)} twice; list each task once")

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(task.id for task in self.tasks)

    @property
    def classes(self) -> tuple[str, ...]:
        """Every class used by some task, in first-seen order."""
        return tuple(dict.fromkeys(name for task in self.tasks for name in task.classes))

    def validate(self, class_names: Sequence[str]) -> None:
        for task in self.tasks:
            task.validate(class_names)

    def task(self, task_id: str) -> Task:
        """The task with id ``task_id``."""
        for task in self.tasks:
            if task.id == task_id:
                return task
        raise ConfigError(f"task '{task_id}' is not in this task space{did_you_mean(task_id, self.ids)}")

    @classmethod
    def from_classes(cls, dataset: str, classes: Iterable[str]) -> TaskSpace:
        """Every pair of ``classes`` as a binary task (``len(classes)`` choose 2 tasks)."""
        names = tuple(classes)
        if len(names) < 2:
            raise ConfigError(f"a task space from classes needs at least two classes, got {list(names)}")
        Task(names)  # rejects repeated classes with a clear message
        return cls(dataset, tuple(BinaryTask(a, b) for a, b in itertools.combinations(names, 2)))

    @classmethod
    def from_pairs(cls, dataset: str, pairs: Iterable[Sequence[str]]) -> TaskSpace:
        """One task per listed pair (or tuple) of classes."""
        return cls(dataset, tuple(BinaryTask(*pair) if len(pair) == 2 else Task(tuple(pair)) for pair in pairs))

    @classmethod
    def default(cls) -> TaskSpace:
        """The paper's space: the 15 binary CIFAR-10 tasks over :data:`DEFAULT_CLASSES`."""
        return cls.from_classes("cifar10", DEFAULT_CLASSES)

    @classmethod
    def digits(cls) -> TaskSpace:
        """The embedded space: 15 binary tasks over :data:`DIGITS_CLASSES` of the 8x8 digits."""
        return cls.from_classes("digits", DIGITS_CLASSES)

    @classmethod
    def from_toml(cls, path: str | os.PathLike[str]) -> TaskSpace:
        """Read a space from TOML: ``dataset`` plus either ``classes = [...]`` or ``pairs = [[a, b], ...]``."""
        file = Path(path)
        document = read_toml(file, what="task space file")
        dataset = document.get("dataset", "cifar10")
        if not isinstance(dataset, str):
            raise ConfigError(f"'dataset' in '{file}' must be a string, e.g. dataset = \"cifar10\"")
        unknown = set(document) - {"dataset", "classes", "pairs"}
        if unknown:
            raise ConfigError(
                f"unknown key(s) {', '.join(sorted(unknown))} in '{file}'; use dataset, classes or pairs"
            )
        if ("classes" in document) == ("pairs" in document):
            raise ConfigError(f"task space file '{file}' needs exactly one of 'classes' or 'pairs'")
        if "classes" in document:
            space = cls.from_classes(dataset, _string_list(document["classes"], "classes", file))
        else:
            raw_pairs = document["pairs"]
            if not isinstance(raw_pairs, list):
                raise ConfigError(f"'pairs' in '{file}' must be a list of class lists, e.g. [[\"cat\", \"dog\"]]")
            space = cls.from_pairs(dataset, [_string_list(pair, "pairs", file) for pair in raw_pairs])
        return space

    @classmethod
    def resolve(cls, spec: str, *, data_root: str | os.PathLike[str] | None = None) -> TaskSpace:
        """``default``, ``digits`` or a TOML file; the classes are checked against the dataset."""
        if spec == "default":
            space = cls.default()
        elif spec == "digits":
            space = cls.digits()
        elif spec.endswith(".toml") or Path(spec).is_file():
            space = cls.from_toml(spec)
        else:
            raise ConfigError(
                f"unknown task space '{spec}'{did_you_mean(spec, ['default', 'digits'])} "
                "(use default, digits or a .toml file)"
            )
        space.validate(dataset_class_names(space.dataset, data_root=data_root))
        return space


def _string_list(value: object, key: str, file: Path) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigError(f"'{key}' in '{file}' must be a list of class names (strings)")
    return list(value)
