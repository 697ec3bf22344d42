"""Cells: the units of work of a grid, each written atomically and skipped when already done.

- :class:`TrainCell` trains one source network (the zoo).
- :class:`ExtractCell` passes every image some target scores through one source network, once
  (the source's feature bank, see :mod:`taskspace.runner.extraction`).
- :class:`ScoreCell` scores one source on one target with every requested estimator, on the
  target's rows of the source's bank.
- :class:`TruthCell` measures one ground truth: target test accuracy after reusing the source.

Each cell derives its seed from the grid's root seed and its own name, so the order in which cells
run, and the executor that runs them, does not change any result.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from taskspace.errors import TaskspaceError
from taskspace.features import SourceOutputs, cached_source_outputs
from taskspace.io import read_json, write_json
from taskspace.runner.context import RunContext, parse_protocol
from taskspace.runner.extraction import bank_is_current, extract_bank, gather, read_bank, score_positions
from taskspace.tasks import sample_labels_per_class
from taskspace.training import train_task
from taskspace.training.seeds import derive_seed
from taskspace.training.trainers import fit_linear

__all__ = ["Cell", "TrainCell", "ExtractCell", "ScoreCell", "TruthCell", "score_path", "truth_path", "pair_name"]


def pair_name(source: str, target: str) -> str:
    return f"{source}__{target}"


def score_path(context: RunContext, source: str, target: str) -> Path:
    return context.run_dir / "scores" / f"{pair_name(source, target)}.json"


def truth_path(context: RunContext, protocol: str, source: str, target: str) -> Path:
    return context.run_dir / "truth" / protocol / f"{pair_name(source, target)}.json"


class Cell:
    """One unit of work; ``run`` must be idempotent and write its result atomically."""

    name: str

    def is_done(self, context: RunContext) -> bool:
        raise NotImplementedError

    def run(self, context: RunContext) -> None:
        raise NotImplementedError


@dataclass(frozen=True)
class TrainCell(Cell):
    """Train the modular network of one source task into ``zoo/<task>``."""

    task: str

    @property
    def name(self) -> str:
        return f"train {self.task}"

    def is_done(self, context: RunContext) -> bool:
        return (context.source_dir(self.task) / "metrics.json").is_file()

    def run(self, context: RunContext) -> None:
        config = context.grid.source_config(self.task, context.space.dataset)
        train_task(config, out_dir=context.source_dir(self.task), dataset=context.dataset())


def _target_outputs(context: RunContext, source: str, target: str, split: str) -> SourceOutputs:
    splits = context.splits(target)
    return cached_source_outputs(
        context.checkpoint(source), getattr(splits, split), cache_dir=context.run_dir / "features"
    )


@dataclass(frozen=True)
class ExtractCell(Cell):
    """Forward passes of ``source`` over every training image some target scores (its feature bank)."""

    source: str

    @property
    def name(self) -> str:
        return f"extract {self.source}"

    def is_done(self, context: RunContext) -> bool:
        return bank_is_current(context, self.source)

    def run(self, context: RunContext) -> None:
        extract_bank(context, self.source)


@dataclass(frozen=True)
class ScoreCell(Cell):
    """Score ``source`` on ``target`` with ``estimators``; keeps scores already in the cell's file."""

    source: str
    target: str
    estimators: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"score {self.source} -> {self.target}"

    def _existing(self, context: RunContext) -> dict[str, Any]:
        path = score_path(context, self.source, self.target)
        if not path.is_file():
            return {}
        try:
            return read_json(path)
        except TaskspaceError:
            return {}  # damaged: computed again

    def is_done(self, context: RunContext) -> bool:
        return set(self.estimators) <= set(self._existing(context).get("scores", {}))

    def run(self, context: RunContext) -> None:
        from taskspace.scoring import get_estimator

        record = self._existing(context) or {"scores": {}, "seconds": {}, "errors": {}}
        bank = read_bank(context, self.source)
        if bank is None:  # a cell run on its own, outside compute_matrix's extract stage
            extract_bank(context, self.source)
            bank = read_bank(context, self.source)
        assert bank is not None
        splits = context.splits(self.target)
        outputs = gather(bank, splits, score_positions(context, splits))
        record["samples"] = int(len(outputs.labels))
        source_metrics = read_json(context.source_dir(self.source) / "metrics.json")
        probabilities = outputs.probabilities()
        for name in self.estimators:
            if name in record["scores"]:
                continue
            estimator = get_estimator(name)
            began = time.perf_counter()
            try:
                value = float(
                    estimator(
                        outputs.features.astype(np.float64),
                        outputs.labels,
                        source_probs=probabilities,
                        source_accuracy=float(source_metrics["test_accuracy"]),
                    )
                )
            except TaskspaceError as error:
                value = math.nan
                record["errors"][name] = str(error)
            record["seconds"][name] = time.perf_counter() - began
            record["scores"][name] = None if math.isnan(value) else value
        write_json(score_path(context, self.source, self.target), record)


@dataclass(frozen=True)
class TruthCell(Cell):
    """Target test accuracy after reusing ``source`` under ``protocol``."""

    protocol: str
    source: str
    target: str

    @property
    def name(self) -> str:
        return f"truth {self.protocol} {self.source} -> {self.target}"

    def is_done(self, context: RunContext) -> bool:
        return truth_path(context, self.protocol, self.source, self.target).is_file()

    def run(self, context: RunContext) -> None:
        kind, labels_per_class = parse_protocol(self.protocol)
        started = time.perf_counter()
        if kind == "frozen":
            record = self._frozen(context, labels_per_class)
        else:
            record = self._finetune(context)
        record.update({"protocol": self.protocol, "source": self.source, "target": self.target,
                       "diagonal": self.source == self.target, "seconds": time.perf_counter() - started})
        write_json(truth_path(context, self.protocol, self.source, self.target), record)

    def _frozen(self, context: RunContext, labels_per_class: int | None) -> dict[str, Any]:
        config = context.grid.source_config(self.target, context.space.dataset)
        train = _target_outputs(context, self.source, self.target, "train")
        test = _target_outputs(context, self.source, self.target, "test")
        accuracies = [
            probe_accuracy(train.subset(positions), test, steps=config.output_steps,
                           weight_decay=config.output_weight_decay)
            for positions in probe_draws(context, self.target, train.labels, labels_per_class)
        ]
        return {"accuracy": float(np.mean(accuracies)), "draws": accuracies}

    def _finetune(self, context: RunContext) -> dict[str, Any]:
        config = context.grid.source_config(self.target, context.space.dataset).replace(
            mode="finetune",
            epochs=context.grid.finetune_epochs,
            lr=context.grid.finetune_lr,
            init_from=str(context.checkpoint(self.source)),
            seed=derive_seed(context.grid.seed, "finetune", self.target) % (2**31),
            warmup_epochs=0.0,
        )
        folder = context.run_dir / "truth" / self.protocol / "runs" / pair_name(self.source, self.target)
        metrics = train_task(config, out_dir=folder, dataset=context.dataset())
        return {"accuracy": float(metrics["test_accuracy"]), "train_seconds": metrics["train_seconds"]}


def probe_draws(context: RunContext, target: str, train_labels: np.ndarray,
                labels_per_class: int | None) -> list[np.ndarray]:
    """Positions in ``target``'s training split that each draw of a frozen probe is fitted on: all of
    them once (``labels_per_class`` None), else ``probe_draws`` seeded draws of K labels per class."""
    if labels_per_class is None:
        return [np.arange(len(train_labels))]
    return [sample_labels_per_class(train_labels, labels_per_class,
                                    seed=derive_seed(context.grid.seed, "probe", target, labels_per_class, draw))
            for draw in range(context.grid.probe_draws)]


def probe_predictions(train: SourceOutputs, test: SourceOutputs, *, steps: int, weight_decay: float) -> np.ndarray:
    """Test-set class predictions of a new output module fitted on frozen source features."""
    classes = int(max(train.labels.max(), test.labels.max())) + 1
    linear = torch.nn.Linear(train.features.shape[1], classes)
    fit_linear(linear, features=torch.from_numpy(train.features), labels=torch.from_numpy(train.labels),
               steps=steps, weight_decay=weight_decay)
    with torch.no_grad():
        return linear(torch.from_numpy(test.features)).argmax(dim=1).numpy()


def probe_accuracy(train: SourceOutputs, test: SourceOutputs, *, steps: int, weight_decay: float) -> float:
    """Test accuracy of a new output module fitted on frozen source features (forward passes only)."""
    predictions = probe_predictions(train, test, steps=steps, weight_decay=weight_decay)
    return float((predictions == test.labels).mean())
