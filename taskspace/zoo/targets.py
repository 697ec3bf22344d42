"""The targets of a zoo run: tasks of a task space and, optionally, a whole dataset as one task.

A target's images are every training and test image of its classes, in the dataset's order, with
labels 0..C-1 in the order of the task's classes. The estimators see a seeded, class-stratified
sample of the training images (``score_samples`` of them, or all); the ground truth fits on the
training images and tests on the test images. Features extracted elsewhere (a ``features`` source)
list their rows in exactly this order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from taskspace.errors import ConfigError
from taskspace.tasks import Task, TaskSpace
from taskspace.training.seeds import derive_seed

__all__ = ["IMAGE_POLICIES", "stratified_positions", "Target", "ZooTargets", "target_images"]


@dataclass(frozen=True)
class Target:
    """One target: its id in matrices and its task (classes in label order)."""

    id: str
    task: Task


@dataclass(frozen=True)
class ZooTargets:
    """The targets of a zoo run over one dataset.

    Attributes:
        dataset: the dataset's name (or an image folder's absolute path).
        space: the task space whose tasks are targets, or None.
        whole_dataset: whether the dataset's full classification task is a target too (its id is the
            dataset's name).
    """

    dataset: str
    space: TaskSpace | None
    whole_dataset: bool = False

    def __post_init__(self) -> None:
        if self.space is None and not self.whole_dataset:
            raise ConfigError("a zoo run needs targets: a task space (--space) or a whole dataset (--target-dataset)")
        if self.space is not None and self.space.dataset != self.dataset:
            raise ConfigError(f"the space's tasks are over '{self.space.dataset}' but --target-dataset is "
                              f"'{self.dataset}'; a run's targets share one dataset")

    def targets(self, class_names: list[str] | tuple[str, ...]) -> list[Target]:
        """Every target, the space's tasks first."""
        listed = [Target(task.id, task) for task in self.space.tasks] if self.space is not None else []
        if self.whole_dataset:
            listed.append(Target(self.whole_id, Task(tuple(class_names))))
        return listed

    @property
    def whole_id(self) -> str:
        """The id of the whole-dataset target: the dataset's name (an image folder's last part)."""
        return self.dataset.rstrip("/").rsplit("/", 1)[-1]

    def to_record(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "space": self.space.to_record() if self.space is not None else None,
                "whole_dataset": self.whole_dataset}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> ZooTargets:
        space = TaskSpace.from_record(record["space"]) if record.get("space") is not None else None
        return cls(str(record["dataset"]), space, bool(record.get("whole_dataset", False)))


@dataclass(frozen=True)
class TargetImages:
    """Where a target's images are in the dataset, and their labels.

    Attributes:
        train, test: indices into the dataset's train and test splits (dataset order).
        train_labels, test_labels: labels 0..C-1.
        scored: positions in ``train`` the estimators see (sorted).
    """

    train: np.ndarray
    test: np.ndarray
    train_labels: np.ndarray
    test_labels: np.ndarray
    scored: np.ndarray


def target_images(dataset: Any, task: Task, *, score_samples: int | None, seed: int) -> TargetImages:
    """The target's images; ``score_samples`` of its training images split evenly over its classes
    (each class's drawn from one seeded order of that class, so targets sharing a class share them)."""
    original = np.array([dataset.class_names.index(name) for name in task.classes])
    lookup = np.full(len(dataset.class_names), -1, dtype=np.int64)
    lookup[original] = np.arange(len(original))
    parts = {}
    for split in ("train", "test"):
        labels = np.asarray(getattr(dataset, split).labels)
        indices = np.flatnonzero(np.isin(labels, original))
        parts[split] = (indices.astype(np.int64), lookup[labels[indices]])
    train, train_labels = parts["train"]
    if score_samples is None or score_samples >= len(train):
        scored = np.arange(len(train))
    else:
        chosen = []
        for label, name in enumerate(task.classes):
            quota = score_samples // len(task.classes) + (1 if label < score_samples % len(task.classes) else 0)
            members = np.flatnonzero(train_labels == label)
            order = np.random.default_rng(derive_seed(seed, "zoo-score-order", name)).permutation(len(members))
            chosen.append(members[order[:quota]])
        scored = np.sort(np.concatenate(chosen))
    return TargetImages(train, parts["test"][0], train_labels, parts["test"][1], scored.astype(np.int64))


#: How a run chooses the training images its estimators see for a target, recorded with the run:
#: ``task-splits`` (a task-space run: the target's training split, the share its own network validated on
#: held out, each class drawn in the order tagged ``score-order``) or ``all`` (a zoo run: every training
#: image of the target's classes, in the order tagged ``zoo-score-order``).
IMAGE_POLICIES = {"task-splits": "score-order", "all": "zoo-score-order"}


def stratified_positions(
    train_indices: np.ndarray,
    class_members: dict[str, np.ndarray],
    *,
    samples: int | None,
    seed: int,
    policy: str,
) -> np.ndarray:
    """The one class-stratified sample of a target's training images, for either image policy.

    Each class of the target (in ``class_members``' order, which is the task's) gets ``samples //
    classes`` images, the remainder to the first ones; a class's images are taken first-come in one
    seeded order of *all* its training images in the dataset (tagged by the policy), skipping those not
    among ``train_indices``, so targets that share a class share its sampled images.

    Args:
        train_indices: the target's training images, as dataset indices (in the split's order).
        class_members: class name -> the dataset's training indices of that class (sorted).
        samples: how many images in all (None, or not fewer than the target has: every image).
        seed: the run's root seed.
        policy: one of :data:`IMAGE_POLICIES`.

    Returns:
        Sorted positions in ``train_indices`` (in the split).
    """
    from taskspace.training.seeds import derive_seed

    tag = IMAGE_POLICIES[policy]
    if samples is None or samples >= len(train_indices):
        return np.arange(len(train_indices), dtype=np.int64)
    chosen = []
    for position, (name, members) in enumerate(class_members.items()):
        quota = samples // len(class_members) + (1 if position < samples % len(class_members) else 0)
        order = members[np.random.default_rng(derive_seed(seed, tag, name)).permutation(len(members))]
        chosen.append(order[np.isin(order, train_indices)][:quota])
    wanted = np.concatenate(chosen)
    by_index = np.argsort(train_indices)
    return np.sort(by_index[np.searchsorted(train_indices, wanted, sorter=by_index)]).astype(np.int64)
