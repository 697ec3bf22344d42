"""Cells: the units of work of a grid, each written atomically and skipped when already done.

- :class:`TrainCell` trains one source network (the zoo).
- :class:`ExtractCell` passes every image some target scores through one source network, once
  (the source's feature bank, see :mod:`taskspace.runner.extraction`).
- :class:`ScoreCell` scores one source on one target with every requested estimator, on the
  target's rows of the source's bank.
- :class:`TruthCell` measures one ground truth: target test accuracy after reusing the source
  (:mod:`taskspace.transfer`).

Each cell derives its seed from the grid's root seed and its own name, so the order in which cells
run, and the executor that runs them, does not change any result. A cell's files live where its
:class:`~taskspace.runner.run.Run` says.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from taskspace.errors import TaskspaceError
from taskspace.features import cached_source_outputs
from taskspace.io import write_json
from taskspace.runner.extraction import bank_is_current, extract_bank, gather, read_bank, score_positions
from taskspace.runner.run import Run
from taskspace.training import train_task
from taskspace.transfer import TransferJob, get_protocol

__all__ = ["Cell", "TrainCell", "ExtractCell", "ScoreCell", "TruthCell", "score_one", "transfer_job"]


class Cell:
    """One unit of work; ``run`` must be idempotent and write its result atomically."""

    name: str

    def is_done(self, run: Run) -> bool:
        raise NotImplementedError

    def run(self, run: Run) -> None:
        raise NotImplementedError


@dataclass(frozen=True)
class TrainCell(Cell):
    """Train the modular network of one source task into the run's zoo."""

    task: str

    @property
    def name(self) -> str:
        return f"train {self.task}"

    def is_done(self, run: Run) -> bool:
        """Finished, by this grid's config: its config hash matches and its model and metrics are there."""
        from taskspace.training.run import finished_run

        config = run.grid.source_config(self.task, run.space.dataset)
        return finished_run(run.source_dir(self.task), config) is not None

    def run(self, run: Run) -> None:
        config = run.grid.source_config(self.task, run.space.dataset)
        train_task(config, out_dir=run.source_dir(self.task), dataset=run.dataset())


@dataclass(frozen=True)
class ExtractCell(Cell):
    """Forward passes of ``source`` over every training image some target scores (its feature bank)."""

    source: str

    @property
    def name(self) -> str:
        return f"extract {self.source}"

    def is_done(self, run: Run) -> bool:
        return bank_is_current(run, self.source)

    def run(self, run: Run) -> None:
        extract_bank(run, self.source)


def score_one(run: Run, source: str, target: str, estimators: Sequence[str],
              known: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every estimator's score of ``source`` on ``target`` (a task of the run's space or a new one over
    its dataset's classes), from forward passes only; ``known`` scores are kept.

    A target of the space is read from the source's feature bank (its forward passes are made first
    if the bank is missing); a new target's score sample is passed through the source once and cached.
    """
    from taskspace.scoring import score_source

    splits = run.splits(target)
    positions = score_positions(run, splits)
    if target in run.space.ids:
        bank = read_bank(run, source)
        if bank is None:  # a cell run on its own, outside compute_matrix's extract stage
            extract_bank(run, source)
            bank = read_bank(run, source)
        assert bank is not None
        outputs = gather(bank, splits, positions)
    else:
        outputs = cached_source_outputs(run.checkpoint(source), splits.train.take(positions),
                                        cache_dir=run.path("features"))
    record = score_source(outputs.features, outputs.labels, estimators=estimators,
                          source_probs=outputs.probabilities(),
                          source_accuracy=_test_accuracy(run, source), known=known)
    return {**record, "source": source, "target": splits.task.id, "samples": int(len(outputs.labels))}


def _test_accuracy(run: Run, source: str) -> float:
    metrics = run.source_metrics(source)
    try:
        accuracy = float(metrics["test_accuracy"])
    except (KeyError, TypeError, ValueError):
        accuracy = float("nan")
    if not 0.0 <= accuracy <= 1.0:
        raise TaskspaceError(
            f"the zoo's metrics of '{source}' hold no test accuracy in [0, 1]; train it again with "
            f"`taskspace matrix {run.folder}` after removing '{run.source_dir(source)}'"
        )
    return accuracy


@dataclass(frozen=True)
class ScoreCell(Cell):
    """Score ``source`` on ``target`` with ``estimators``; keeps scores already in the cell's file."""

    source: str
    target: str
    estimators: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"score {self.source} -> {self.target}"

    def _existing(self, run: Run) -> dict[str, Any]:
        return run.read_cell(run.score_file(self.source, self.target), self.source, self.target) or {}

    def is_done(self, run: Run) -> bool:
        return set(self.estimators) <= set(self._existing(run).get("scores", {}))

    def run(self, run: Run) -> None:
        existing = self._existing(run)
        record = score_one(run, self.source, self.target, self.estimators, known=existing)
        if "extract_seconds" in existing:
            record["extract_seconds"] = existing["extract_seconds"]
        write_json(run.score_file(self.source, self.target), record)


def transfer_job(run: Run, protocol: str, source: str, target: str) -> TransferJob:
    """What a protocol needs to measure (source, target) in this run (``target`` may be a new task)."""
    splits = run.splits(target)
    return TransferJob(
        source=source, target=splits.task.id, checkpoint=run.checkpoint(source), splits=splits,
        config=run.grid.source_config(splits.task.id, run.space.dataset), seed=run.grid.seed,
        probe_draws=run.grid.probe_draws, finetune_epochs=run.grid.finetune_epochs,
        finetune_lr=run.grid.finetune_lr, feature_cache=run.path("features"),
        work_dir=run.truth_work_dir(protocol, source, splits.task.id), dataset=run.dataset(),
    )


@dataclass(frozen=True)
class TruthCell(Cell):
    """Target test accuracy after reusing ``source`` under ``protocol``."""

    protocol: str
    source: str
    target: str

    @property
    def name(self) -> str:
        return f"truth {self.protocol} {self.source} -> {self.target}"

    def is_done(self, run: Run) -> bool:
        record = run.read_cell(run.truth_file(self.protocol, self.source, self.target), self.source, self.target)
        return record is not None and _is_accuracy(record.get("accuracy"))

    def run(self, run: Run) -> None:
        started = time.perf_counter()
        record = get_protocol(self.protocol).measure(transfer_job(run, self.protocol, self.source, self.target))
        record.update({"protocol": self.protocol, "source": self.source, "target": self.target,
                       "diagonal": self.source == self.target, "seconds": time.perf_counter() - started})
        write_json(run.truth_file(self.protocol, self.source, self.target), record)


def _is_accuracy(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and 0.0 <= value <= 1.0

