"""What every cell of a grid needs to know: the run folder, the grid config and where data lives."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from taskspace.config import TrainConfig
from taskspace.data import ImageDataset, load_dataset
from taskspace.errors import ConfigError
from taskspace.io import canonical_json
from taskspace.tasks import TaskSpace, TaskSplits

__all__ = ["GridConfig", "RunContext", "PROTOCOL_PREFIXES", "parse_protocol"]

PROTOCOL_PREFIXES = ("frozen_k", "frozen_all", "finetune")


def parse_protocol(name: str) -> tuple[str, int | None]:
    """``frozen_k10`` -> ("frozen", 10); ``frozen_all`` -> ("frozen", None); ``finetune`` -> ("finetune", None)."""
    if name == "frozen_all":
        return "frozen", None
    if name == "finetune":
        return "finetune", None
    if name.startswith("frozen_k") and name[len("frozen_k"):].isdigit() and int(name[len("frozen_k"):]) > 0:
        return "frozen", int(name[len("frozen_k"):])
    raise ConfigError(
        f"unknown ground-truth protocol '{name}'; use frozen_kK (K labels per class, e.g. frozen_k10), "
        "frozen_all or finetune"
    )


@dataclass(frozen=True)
class GridConfig:
    """A task-space experiment: the zoo, the scores and the ground truth.

    Attributes:
        space: ``default``, ``digits`` or a TOML file of a task space.
        train: options of every source network's :class:`TrainConfig` (the task is set per source).
        score_samples: target training images the estimators see (``None`` = all, exact scores).
        probe_draws: few-label subsets averaged per frozen_kK ground-truth cell.
        finetune_epochs: epochs of the fine-tuning ground truth.
        finetune_lr: peak learning rate of the fine-tuning ground truth (no warm-up).
        seed: root seed; every cell derives its own from it.
    """

    space: str = "default"
    train: dict[str, Any] = field(default_factory=dict)
    score_samples: int | None = None
    probe_draws: int = 3
    finetune_epochs: int = 2
    finetune_lr: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "train", dict(self.train))
        if "task" in self.train or "mode" in self.train:
            raise ConfigError("grid training options must not set task or mode; the grid sets them per source")
        if self.score_samples is not None and self.score_samples < 10:
            raise ConfigError(f"score_samples must be at least 10 (or unset for all), got {self.score_samples}")
        if self.probe_draws < 1:
            raise ConfigError(f"probe_draws must be at least 1, got {self.probe_draws}")
        if self.finetune_epochs < 1:
            raise ConfigError(f"finetune_epochs must be at least 1, got {self.finetune_epochs}")

    def source_config(self, task_id: str, dataset: str) -> TrainConfig:
        return TrainConfig.from_dict({**self.train, "task": task_id, "dataset": dataset, "mode": "modular"})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def hash(self) -> str:
        return hashlib.sha256(canonical_json(self.to_dict()).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class RunContext:
    """A grid run: its folder, config and data root (picklable: it travels to worker processes)."""

    run_dir: Path
    grid: GridConfig
    data_root: str | None = None

    @property
    def space(self) -> TaskSpace:
        return TaskSpace.resolve(self.grid.space, data_root=self.data_root)

    def dataset(self) -> ImageDataset:
        return _dataset(self.space.dataset, self.data_root)

    def splits(self, task_id: str) -> TaskSplits:
        config = self.grid.source_config(task_id, self.space.dataset)
        return self.space.task(task_id).select(
            self.dataset(), validation_fraction=config.validation_fraction, seed=config.seed
        )

    def source_dir(self, task_id: str) -> Path:
        return self.run_dir / "zoo" / task_id

    def checkpoint(self, task_id: str) -> Path:
        return self.source_dir(task_id) / "model.pt"


@lru_cache(maxsize=2)
def _dataset(name: str, data_root: str | os.PathLike[str] | None) -> ImageDataset:
    # One read per process: worker processes keep the dataset between cells.
    return load_dataset(name, data_root=data_root)
