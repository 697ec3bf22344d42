"""Tasks and task spaces: which classes a task separates, its splits, and few-label subsets.

A :class:`Task` names the classes it separates; its id joins them with ``_vs_`` (``cat_vs_dog``). A
:class:`TaskSpace` is a dataset plus a tuple of tasks: by default the 15 binary CIFAR-10 tasks over
automobile, cat, deer, dog, horse and truck.

A space may also sort its classes into named groups (vehicles, pets, hoofed). A task's group is then the
set of its classes' groups: ``cat_vs_dog`` is ``pets`` and ``automobile_vs_deer`` is ``hoofed|vehicles``.
These known groups are what a structure found in a transferability matrix is compared against.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np

from taskspace.data import ImageDataset, ImageSplit, dataset_class_names, dataset_names
from taskspace.errors import ConfigError, did_you_mean
from taskspace.io import read_toml

__all__ = [
    "Task",
    "BinaryTask",
    "TaskSplits",
    "TaskSpace",
    "DEFAULT_CLASSES",
    "DIGITS_CLASSES",
    "DEFAULT_GROUPS",
    "GROUP_SEPARATOR",
    "sample_labels_per_class",
    "stratified_holdout",
]

#: The six CIFAR-10 classes of the paper's task space: vehicles, cat/dog and deer/horse.
DEFAULT_CLASSES: tuple[str, ...] = ("automobile", "cat", "deer", "dog", "horse", "truck")
#: Six digit classes for the embedded demo space (15 pairs, like the default space).
DIGITS_CLASSES: tuple[str, ...] = ("0", "1", "3", "5", "8", "9")
#: The class groups of the default space: its 15 tasks fall into 6 task groups.
DEFAULT_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("vehicles", ("automobile", "truck")),
    ("pets", ("cat", "dog")),
    ("hoofed", ("deer", "horse")),
)
#: Joins the class groups of a task that spans several, in sorted order: ``hoofed|vehicles``.
GROUP_SEPARATOR = "|"
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


ClassGroups = tuple[tuple[str, tuple[str, ...]], ...]


@dataclass(frozen=True)
class TaskSpace:
    """A dataset, the tasks defined on it and, optionally, named groups of its classes.

    Args:
        dataset: the dataset's name, e.g. ``cifar10``.
        tasks: the tasks; ids must be unique.
        groups: ``(group, classes)`` pairs, e.g. ``(("pets", ("cat", "dog")), ...)``, or a mapping
            ``{"pets": ["cat", "dog"]}`` (stored as pairs so the space stays hashable). Each class is in
            at most one group and every grouped class is used by some task. Empty: no groups.
    """

    dataset: str
    tasks: tuple[Task, ...]
    groups: ClassGroups = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "tasks", tuple(self.tasks))
        if not self.tasks:
            raise ConfigError("a task space needs at least one task")
        ids = [task.id for task in self.tasks]
        duplicates = sorted({task_id for task_id in ids if ids.count(task_id) > 1})
        if duplicates:
            raise ConfigError(f"task space lists {', '.join(duplicates)} twice; list each task once")
        object.__setattr__(self, "groups", _normalise_groups(self.groups, self.classes))

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(task.id for task in self.tasks)

    @property
    def classes(self) -> tuple[str, ...]:
        """Every class used by some task, in first-seen order."""
        return tuple(dict.fromkeys(name for task in self.tasks for name in task.classes))

    @property
    def group_names(self) -> tuple[str, ...]:
        """The class groups' names, in the order given."""
        return tuple(name for name, _ in self.groups)

    def validate(self, class_names: Sequence[str]) -> None:
        for task in self.tasks:
            task.validate(class_names)

    def task(self, task_id: str) -> Task:
        """The task with id ``task_id``."""
        for task in self.tasks:
            if task.id == task_id:
                return task
        raise ConfigError(f"task '{task_id}' is not in this task space{did_you_mean(task_id, self.ids)}")

    def class_group(self, class_name: str) -> str:
        """The group of ``class_name``.

        Raises:
            ConfigError: the space has no groups, or the class is in none of them.
        """
        for name, members in self.groups:
            if class_name in members:
                return name
        if not self.groups:
            raise ConfigError("this task space has no class groups; add a [groups] table to its TOML file")
        raise ConfigError(
            f"class '{class_name}' is in no group (groups: {', '.join(self.group_names)}); "
            "add it to one in the space's [groups] table"
        )

    def task_group(self, task: Task | str) -> str:
        """A task's group label: its classes' groups, distinct and sorted, joined by ``|``.

        A binary task within one group gets that group (``cat_vs_dog`` → ``pets``); one across two groups
        gets the unordered pair (``automobile_vs_deer`` → ``hoofed|vehicles``).

        Args:
            task: a task of this space or its id.

        Raises:
            ConfigError: an unknown task id, no groups, or a class of the task in no group.
        """
        classes = (self.task(task) if isinstance(task, str) else task).classes
        return GROUP_SEPARATOR.join(sorted({self.class_group(name) for name in classes}))

    def task_groups(self) -> dict[str, str]:
        """``{task id: group label}`` for every task, in task order (see :meth:`task_group`)."""
        return {task.id: self.task_group(task) for task in self.tasks}

    def to_record(self) -> dict[str, object]:
        """The space's content as JSON values: dataset, each task's classes and the class groups.

        This, not the file or name the space was read from, is what identifies a run's task space.
        """
        return {"dataset": self.dataset, "tasks": [list(task.classes) for task in self.tasks],
                "groups": [[name, list(members)] for name, members in self.groups]}  # pairs: order kept

    @classmethod
    def from_record(cls, record: Mapping[str, object]) -> TaskSpace:
        """The inverse of :meth:`to_record`.

        Raises:
            ConfigError: the record lacks a key or holds values of the wrong kind.
        """
        try:
            dataset, tasks, groups = record["dataset"], record["tasks"], record.get("groups", [])
            if not isinstance(dataset, str) or not isinstance(tasks, list) or not isinstance(groups, list):
                raise TypeError("dataset must be a string, tasks a list and groups a list of [name, classes]")
            built = tuple(BinaryTask(*classes) if len(classes) == 2 else Task(tuple(classes)) for classes in tasks)
        except (KeyError, TypeError) as error:
            raise ConfigError(f"a task-space record is malformed ({error})") from None
        return cls(dataset, built, cast(ClassGroups, groups))  # normalised and checked by __post_init__

    def differences(self, other: TaskSpace) -> list[str]:
        """What differs from ``other``, as short phrases ("dataset 'cifar10' vs 'digits'", ...); empty if equal."""
        found = []
        if self.dataset != other.dataset:
            found.append(f"dataset '{self.dataset}' vs '{other.dataset}'")
        mine, theirs = set(self.ids), set(other.ids)
        if mine - theirs:
            found.append("tasks only here: " + ", ".join(task for task in self.ids if task not in theirs))
        if theirs - mine:
            found.append("tasks only there: " + ", ".join(task for task in other.ids if task not in mine))
        if mine == theirs and self.ids != other.ids:
            found.append("the same tasks in another order")
        if self.groups != other.groups:
            found.append(f"class groups {_groups_text(self.groups)} vs {_groups_text(other.groups)}")
        return found

    @classmethod
    def from_classes(
        cls,
        dataset: str,
        classes: Iterable[str],
        *,
        groups: ClassGroups | Mapping[str, Sequence[str]] = (),
    ) -> TaskSpace:
        """Every pair of ``classes`` as a binary task (``len(classes)`` choose 2 tasks)."""
        names = tuple(classes)
        if len(names) < 2:
            raise ConfigError(f"a task space from classes needs at least two classes, got {list(names)}")
        Task(names)  # rejects repeated classes with a clear message
        tasks = tuple(BinaryTask(a, b) for a, b in itertools.combinations(names, 2))
        return cls(dataset, tasks, cast(ClassGroups, groups))

    @classmethod
    def from_pairs(
        cls,
        dataset: str,
        pairs: Iterable[Sequence[str]],
        *,
        groups: ClassGroups | Mapping[str, Sequence[str]] = (),
    ) -> TaskSpace:
        """One task per listed pair (or tuple) of classes."""
        tasks = tuple(BinaryTask(*pair) if len(pair) == 2 else Task(tuple(pair)) for pair in pairs)
        return cls(dataset, tasks, cast(ClassGroups, groups))

    @classmethod
    def default(cls) -> TaskSpace:
        """The paper's space: the 15 binary CIFAR-10 tasks over :data:`DEFAULT_CLASSES`, grouped by
        :data:`DEFAULT_GROUPS` into 6 task groups (3 within a group, 3 across two)."""
        return cls.from_classes("cifar10", DEFAULT_CLASSES, groups=DEFAULT_GROUPS)

    @classmethod
    def digits(cls) -> TaskSpace:
        """The embedded space: 15 binary tasks over :data:`DIGITS_CLASSES` of the 8x8 digits."""
        return cls.from_classes("digits", DIGITS_CLASSES)

    @classmethod
    def from_toml(cls, path: str | os.PathLike[str]) -> TaskSpace:
        """Read a space from TOML: ``dataset`` plus either ``classes = [...]`` or ``pairs = [[a, b], ...]``,
        and optionally a ``[groups]`` table of class lists (``vehicles = ["automobile", "truck"]``)."""
        file = Path(path)
        document = read_toml(file, what="task space file")
        dataset = document.get("dataset", "cifar10")
        if not isinstance(dataset, str):
            raise ConfigError(f"'dataset' in '{file}' must be a string, e.g. dataset = \"cifar10\"")
        unknown = set(document) - {"dataset", "classes", "pairs", "groups"}
        if unknown:
            raise ConfigError(
                f"unknown key(s) {', '.join(sorted(unknown))} in '{file}'; use dataset, classes, pairs or groups"
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
        if "groups" in document:
            groups = _groups_table(document["groups"], file)
            try:
                space = dataclasses.replace(space, groups=cast(ClassGroups, groups))
            except ConfigError as error:
                raise ConfigError(f"[groups] in '{file}': {error}") from None
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
        if space.dataset not in dataset_names() and Path(space.dataset).expanduser().is_dir():
            # an image folder is named by its absolute path, so a run made here opens from anywhere
            space = dataclasses.replace(space, dataset=str(Path(space.dataset).expanduser().absolute()))
        return space


def _groups_text(groups: ClassGroups) -> str:
    return "{" + "; ".join(f"{name}: {', '.join(members)}" for name, members in groups) + "}" if groups else "none"


def _normalise_groups(
    groups: ClassGroups | Mapping[str, Sequence[str]] | None, space_classes: Sequence[str]
) -> ClassGroups:
    """Check class groups against the space's classes and return them as ``(name, classes)`` pairs."""
    if groups is None:
        return ()
    pairs = list(groups.items()) if isinstance(groups, Mapping) else list(groups)
    normalised: list[tuple[str, tuple[str, ...]]] = []
    owner: dict[str, str] = {}
    for entry in pairs:
        if not (isinstance(entry, Sequence) and len(entry) == 2 and isinstance(entry[0], str)):
            raise ConfigError(
                f"class group {entry!r} is not a (name, classes) pair; "
                "write groups like {\"pets\": [\"cat\", \"dog\"]}"
            )
        name, members = entry[0], entry[1]
        if not isinstance(members, (list, tuple)) or not all(isinstance(member, str) for member in members):
            raise ConfigError(f"group '{name}' must list class names (strings), e.g. {name} = [\"cat\", \"dog\"]")
        members = tuple(members)
        if not name or GROUP_SEPARATOR in name:
            raise ConfigError(f"group name {name!r} is empty or contains '{GROUP_SEPARATOR}'; rename the group")
        if name in {existing for existing, _ in normalised}:
            raise ConfigError(f"group '{name}' is listed twice; list each group once")
        if not members:
            raise ConfigError(f"group '{name}' lists no class; name at least one class or drop the group")
        for member in members:
            if member not in space_classes:
                raise ConfigError(
                    f"group '{name}' names class '{member}', which no task of the space uses"
                    f"{did_you_mean(member, space_classes)} (classes: {', '.join(space_classes)})"
                )
            if member in owner:
                raise ConfigError(
                    f"class '{member}' is in groups '{owner[member]}' and '{name}'; put each class in one group"
                )
            owner[member] = name
        normalised.append((name, members))
    return tuple(normalised)


def _groups_table(value: object, file: Path) -> dict[str, list[str]]:
    if not isinstance(value, dict):
        raise ConfigError(
            f"'groups' in '{file}' must be a table of class lists, e.g. [groups] vehicles = [\"automobile\", \"truck\"]"
        )
    return {name: _string_list(members, f"groups.{name}", file) for name, members in value.items()}


def _string_list(value: object, key: str, file: Path) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigError(f"'{key}' in '{file}' must be a list of class names (strings)")
    return list(value)
