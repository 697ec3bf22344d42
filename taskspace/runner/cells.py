"""Cells: the units of work of a grid, each written atomically and skipped when already done.

- :class:`TrainCell` trains one source network (the zoo).
- :class:`ExtractCell` passes every image some target scores through one source network, once
  (the source's feature bank, see :mod:`taskspace.runner.extraction`).
- :class:`ScoreCell` scores one source on every target it lacks scores of, with every requested
  estimator (a trained source on each target's rows of its bank; a zoo source at each of its layers).
- :class:`TruthCell` measures one ground truth: target test accuracy after reusing the source
  (:mod:`taskspace.transfer`).
- :class:`FinetuneCell` measures the ``finetune`` truth of one zoo module (a network cut at a layer) on
  one target (:mod:`taskspace.zoo.finetune`).

Each cell derives its seed from the grid's root seed and its own name, so the order in which cells
run, and the executor that runs them, does not change any result. A cell's files live where its
:class:`~taskspace.runner.run.Run` says.

A cell runs in one of two ways. Where the worker sees the run folder (the serial and process
executors), :meth:`Cell.run` reads its inputs there and writes its result there (training resumes in
place after an interruption). On a cluster, where it may not, the driver calls :meth:`Cell.prepare`
for the cell's inputs (large shared ones, such as the dataset and the feature banks, as handles of the
cluster's object store), a worker calls :meth:`Cell.compute` on them without touching the run folder,
and the driver alone writes the returned result with :meth:`Cell.commit`. Both ways call the same
functions on the same inputs, so they give the same bytes.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from taskspace.errors import TaskspaceError
from taskspace.features import SourceOutputs
from taskspace.io import write_bytes, write_json
from taskspace.runner.extraction import (
    add_to_store,
    bank_indices,
    checkpoint_digest,
    extract_bank,
    gather,
    read_bank,
    record_bank_seconds,
    score_positions,
    split_outputs,
    store_key_of,
    store_missing,
    store_rows,
    truth_indices,
)
from taskspace.runner.folder import read_cell
from taskspace.runner.handles import TrainedRun
from taskspace.training import train_task
from taskspace.transfer import TransferJob, get_protocol
from taskspace.zoo.spec import module_id

__all__ = ["Cell", "Share", "TrainCell", "ExtractCell", "ScoreCell", "TruthCell", "FinetuneCell", "score_one",
           "transfer_job"]

#: ``share(key, make)``: a handle to ``make()`` that workers resolve, made once per key and stage.
Share = Callable[[str, Callable[[], Any]], Any]


class Cell:
    """One unit of work; ``run`` must be idempotent and write its result atomically."""

    @property
    def name(self) -> str:
        """What the cell does, in words (``train cat_vs_dog``)."""
        raise NotImplementedError

    def is_done(self, run: TrainedRun) -> bool:
        raise NotImplementedError

    def run(self, run: TrainedRun) -> None:
        """Compute and write the result where the run folder is at hand."""
        raise NotImplementedError

    def prepare(self, run: TrainedRun, share: Share) -> dict[str, Any]:
        """(Driver) everything :meth:`compute` needs; values from ``share`` are resolved before it runs."""
        raise NotImplementedError

    def compute(self, inputs: dict[str, Any]) -> Any:
        """(Worker) the cell's result from its prepared inputs alone: the run folder is not read or written."""
        raise NotImplementedError

    def commit(self, run: TrainedRun, result: Any) -> None:
        """(Driver) write the result of :meth:`compute` into the run, atomically."""
        raise NotImplementedError


@dataclass(frozen=True)
class TrainCell(Cell):
    """Train the modular network of one source task into the run's zoo."""

    task: str

    @property
    def name(self) -> str:
        return f"train {self.task}"

    def is_done(self, run: TrainedRun) -> bool:
        """Finished, by this grid's config: its config hash matches and its model and metrics are there."""
        from taskspace.training.run import finished_run

        config = run.grid.source_config(self.task, run.space.dataset)
        return finished_run(run.source_dir(self.task), config) is not None

    def run(self, run: TrainedRun) -> None:
        config = run.grid.source_config(self.task, run.space.dataset)
        train_task(config, out_dir=run.source_dir(self.task), dataset=run.dataset())

    def prepare(self, run: TrainedRun, share: Share) -> dict[str, Any]:
        return {"config": run.grid.source_config(self.task, run.space.dataset),
                "dataset": share("dataset", run.dataset)}

    def compute(self, inputs: dict[str, Any]) -> dict[str, bytes]:
        from taskspace.training.run import CONFIG_FILE, METRICS_FILE, MODEL_FILE

        with tempfile.TemporaryDirectory(prefix="taskspace-train-") as folder:
            train_task(inputs["config"], out_dir=folder, dataset=inputs["dataset"])
            return {name: (Path(folder) / name).read_bytes() for name in (CONFIG_FILE, MODEL_FILE, METRICS_FILE)}

    def commit(self, run: TrainedRun, result: dict[str, bytes]) -> None:
        from taskspace.training.run import METRICS_FILE

        folder = run.source_dir(self.task)
        (folder / METRICS_FILE).unlink(missing_ok=True)
        for name in sorted(result, key=lambda name: name == METRICS_FILE):  # the metrics, which mean done, last
            write_bytes(folder / name, result[name])


@dataclass(frozen=True)
class ExtractCell(Cell):
    """Forward passes of ``source`` over the dataset's ``split`` images a stage needs, into the one store:
    every training image some target scores (``purpose`` "scores": the source's bank), or every training
    or test image of the targets (``purpose`` "truth": what the frozen probes read)."""

    source: str
    split: str = "train"
    purpose: str = "scores"

    @property
    def name(self) -> str:
        return f"extract {self.source}" + ("" if self.purpose == "scores" else f" ({self.split}, truth)")

    def _indices(self, run: TrainedRun) -> np.ndarray:
        return bank_indices(run) if self.purpose == "scores" else truth_indices(run, self.split)

    def _record(self, run: TrainedRun, seconds: float) -> None:
        if self.purpose == "scores":  # the score stage's forward passes are part of its measured cost
            record_bank_seconds(run, self.source, seconds)

    def is_done(self, run: TrainedRun) -> bool:
        return len(store_missing(run, self.source, self.split, self._indices(run))) == 0

    def run(self, run: TrainedRun) -> None:
        _, seconds = store_rows(run, self.source, self.split, self._indices(run))
        self._record(run, seconds)

    def prepare(self, run: TrainedRun, share: Share) -> dict[str, Any]:
        return {"checkpoint": run.checkpoint(self.source).read_bytes(),
                "key": store_key_of(run, self.source, self.split),
                "indices": store_missing(run, self.source, self.split, self._indices(run)),
                "dataset": share("dataset", run.dataset), "device": run.forward_device}

    def compute(self, inputs: dict[str, Any]) -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="taskspace-extract-") as folder:
            checkpoint = Path(folder) / "source.pt"
            checkpoint.write_bytes(inputs["checkpoint"])
            outputs, seconds = split_outputs(checkpoint, inputs["dataset"], self.split, inputs["indices"],
                                             device=inputs.get("device", "cpu"))
        return {"outputs": outputs, "seconds": seconds, "key": inputs["key"], "indices": inputs["indices"]}

    def commit(self, run: TrainedRun, result: dict[str, Any]) -> None:
        add_to_store(run, result["key"], result["indices"], result["outputs"])
        self._record(run, result["seconds"])


def score_one(run: TrainedRun, source: str, target: str, estimators: Sequence[str],
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
    else:  # a new target's images are the dataset's too: read through the same store
        rows, _ = store_rows(run, source, "train", splits.train_indices[positions])
        outputs = SourceOutputs(rows["features"], rows["logits"],
                                np.asarray(splits.train.labels[positions], dtype=np.int64))
    record = score_source(outputs.features, outputs.labels, estimators=estimators,
                          source_probs=outputs.probabilities(),
                          source_accuracy=_test_accuracy(run, source), known=known)
    return {**record, "source": source, "target": splits.task.id, "samples": int(len(outputs.labels)),
            "checkpoint_sha256": checkpoint_digest(run, source)}


def _test_accuracy(run: TrainedRun, source: str) -> float:
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
    """Every pending (module, target) of one source scored with ``estimators``, on every kind of run: a
    trained source's targets (its φ, gathered from its bank), a zoo source's (layer, target) pairs. The
    forward passes are made before the stage (a trained run's :class:`ExtractCell` stage, a zoo run's
    driver) and read from the store; scores already in a record are kept, and each record is written
    atomically on its own."""

    source: str
    estimators: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"score {self.source}"

    def is_done(self, run: Any) -> bool:
        if run.kind == "zoo":
            from taskspace.zoo.forward import pending_pairs

            return not pending_pairs(run, self.source, self.estimators)
        return not _pending_targets(run, self.source, self.estimators)

    def run(self, run: Any) -> None:
        self.commit(run, self.compute(self.prepare(run, lambda key, make: make())))

    def prepare(self, run: Any, share: Share) -> dict[str, Any]:
        if run.kind == "zoo":
            from taskspace.zoo.forward import score_inputs

            return score_inputs(run, self.source, self.estimators)
        return _trained_score_inputs(run, self.source, self.estimators)

    def compute(self, inputs: dict[str, Any]) -> list[dict[str, Any]]:
        from taskspace.scoring import score_source

        return [{**cell["record"], **score_source(cell["features"], cell["labels"], estimators=self.estimators,
                                                  source_probs=cell["probs"], source_accuracy=inputs["accuracy"],
                                                  known=cell["known"])}
                for cell in inputs["cells"]]

    def commit(self, run: Any, result: list[dict[str, Any]]) -> None:
        for record in result:
            write_json(run.score_file(record.get("module", record["source"]), record["target"]), record)


def _existing_scores(run: TrainedRun, source: str, target: str) -> dict[str, Any]:
    """The scores of a trained run's cell already measured, if measured on the source's network as it is
    now (a cell written before the checkpoint's digest was recorded is taken as it is)."""
    record = run.read_cell(run.score_file(source, target), source, target) or {}
    if not _valid_scores(record):
        return {}
    recorded = record.get("checkpoint_sha256")
    if recorded is not None and recorded != checkpoint_digest(run, source):
        return {}  # the network changed since: every score is measured again, none mixed with the new ones
    return record


def _pending_targets(run: TrainedRun, source: str, estimators: tuple[str, ...]) -> list[str]:
    return [target for target in run.space.ids
            if not set(estimators) <= set(_existing_scores(run, source, target).get("scores", {}))]


def _trained_score_inputs(run: TrainedRun, source: str, estimators: tuple[str, ...]) -> dict[str, Any]:
    """What a trained source's score cell computes from: per pending target, the target's rows of the
    source's bank (:mod:`taskspace.runner.extraction`), its labels and probabilities, the scores already
    measured; and the network's own test accuracy."""
    bank = read_bank(run, source)
    if bank is None:
        raise TaskspaceError(f"the feature bank of '{source}' is missing; run the stage's forward passes first")
    digest, cells = checkpoint_digest(run, source), []
    for target in _pending_targets(run, source, estimators):
        splits = run.splits(target)
        positions = score_positions(run, splits)
        outputs = gather(bank, splits, positions)
        known = _existing_scores(run, source, target)
        record = {"source": source, "target": target, "samples": int(len(outputs.labels)), "checkpoint_sha256": digest}
        if "extract_seconds" in known:
            record["extract_seconds"] = known["extract_seconds"]
        cells.append({"record": record, "features": outputs.features, "labels": outputs.labels,
                      "probs": outputs.probabilities(), "known": known})
    return {"cells": cells, "accuracy": _test_accuracy(run, source)}


def transfer_job(run: TrainedRun, protocol: str, source: str, target: str) -> TransferJob:
    """What a protocol needs to measure (source, target) in this run (``target`` may be a new task); a
    frozen probe's forward passes are read from the run's store (made there first where it lacks them)."""
    splits = run.splits(target)
    outputs = None
    if get_protocol(protocol).reads_outputs:
        train, _ = store_rows(run, source, "train", splits.train_indices)
        test, _ = store_rows(run, source, "test", splits.test_indices)
        outputs = (SourceOutputs(train["features"], train["logits"], np.asarray(splits.train.labels, dtype=np.int64)),
                   SourceOutputs(test["features"], test["logits"], np.asarray(splits.test.labels, dtype=np.int64)))
    return TransferJob(
        source=source, target=splits.task.id, checkpoint=run.checkpoint(source), splits=splits,
        config=run.grid.source_config(splits.task.id, run.space.dataset), seed=run.grid.seed,
        probe_draws=run.grid.probe_draws, finetune_epochs=run.grid.finetune_epochs,
        finetune_lr=run.grid.finetune_lr, feature_cache=run.path("features"),
        work_dir=run.truth_work_dir(protocol, source, splits.task.id), dataset=run.dataset(), outputs=outputs,
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

    def is_done(self, run: TrainedRun) -> bool:
        record = run.read_cell(run.truth_file(self.protocol, self.source, self.target), self.source, self.target)
        return record is not None and _is_accuracy(record.get("accuracy"))

    def run(self, run: TrainedRun) -> None:
        self.commit(run, self._measure(transfer_job(run, self.protocol, self.source, self.target)))

    def _measure(self, job: TransferJob) -> dict[str, Any]:
        started = time.perf_counter()
        record = get_protocol(self.protocol).measure(job)
        record.update({"protocol": self.protocol, "source": self.source, "target": self.target,
                       "diagonal": self.source == self.target, "seconds": time.perf_counter() - started})
        return record

    def prepare(self, run: TrainedRun, share: Share) -> dict[str, Any]:
        job = transfer_job(run, self.protocol, self.source, self.target)
        placeholder: Any = None  # the splits and the dataset travel on their own, shared; compute puts them back
        return {"job": replace(job, splits=placeholder, dataset=placeholder), "checkpoint": job.checkpoint.read_bytes(),
                "splits": share(f"splits {self.target}", lambda: job.splits),
                "dataset": share("dataset", run.dataset)}

    def compute(self, inputs: dict[str, Any]) -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="taskspace-truth-") as folder:
            checkpoint = Path(folder) / "source.pt"
            checkpoint.write_bytes(inputs["checkpoint"])
            job = replace(inputs["job"], checkpoint=checkpoint, splits=inputs["splits"], dataset=inputs["dataset"],
                          feature_cache=Path(folder) / "features", work_dir=Path(folder) / "work")
            return self._measure(job)

    def commit(self, run: TrainedRun, result: dict[str, Any]) -> None:
        write_json(run.truth_file(self.protocol, self.source, self.target), result)


@dataclass(frozen=True)
class FinetuneCell(Cell):
    """The ``finetune`` ground truth of one module (``source`` at ``layer``) on one target: the network cut
    at the layer and trained with a new head (:func:`taskspace.zoo.finetune.finetune_module`).

    Where the worker sees the source's files it reads them there (:meth:`run`); on a cluster the driver
    sends their bytes and the dataset (:meth:`prepare`), the worker writes the files to a folder of its
    own and trains (:meth:`compute`), and the driver writes the record (:meth:`commit`). Seeded by the
    module and the target, so every executor gives the same accuracy.
    """

    protocol: str
    source: str
    layer: str
    target: str
    device: str = "cpu"

    @property
    def module(self) -> str:
        return module_id(self.source, self.layer)

    @property
    def name(self) -> str:
        return f"truth {self.protocol} {self.module} -> {self.target}"

    def is_done(self, run: Any) -> bool:
        record = read_cell(run.truth_file(self.protocol, self.module, self.target), module=self.module,
                           target=self.target)
        return record is not None and _is_accuracy(record.get("accuracy"))

    def run(self, run: Any) -> None:
        spec, target = run.zoo.source(self.source), self._target(run)
        self.commit(run, self._measure(spec, target, run.images(target), run.dataset(), run.options))

    def prepare(self, run: Any, share: Share) -> dict[str, Any]:
        spec, target = run.zoo.source(self.source), self._target(run)
        return {"spec": spec, "files": {str(path): path.read_bytes() for path in spec.files()}, "target": target,
                "images": run.images(target), "dataset": share("dataset", run.dataset), "options": run.options}

    def compute(self, inputs: dict[str, Any]) -> dict[str, Any]:
        spec = inputs["spec"]
        with tempfile.TemporaryDirectory(prefix="taskspace-finetune-") as folder:
            local = {name: Path(folder) / f"{index}{Path(name).suffix}" for index, name in enumerate(inputs["files"])}
            for name, data in inputs["files"].items():
                local[name].write_bytes(data)
            moved = replace(
                spec, weights=local[str(spec.weights)] if spec.weights is not None else None,
                reference=str(local[spec.reference]) if spec.reference in local else spec.reference)
            return self._measure(moved, inputs["target"], inputs["images"], inputs["dataset"], inputs["options"])

    def commit(self, run: Any, result: dict[str, Any]) -> None:
        write_json(run.truth_file(self.protocol, self.module, self.target), result)

    def _target(self, run: Any) -> Any:
        return next(target for target in run.target_list() if target.id == self.target)

    def _measure(self, spec: Any, target: Any, images: Any, dataset: Any, options: Any) -> dict[str, Any]:
        from taskspace.zoo.finetune import finetune_module

        record = finetune_module(spec, self.layer, target.id, images, dataset=dataset, options=options,
                                 device=self.device)
        return {"module": self.module, "source": self.source, "layer": self.layer, "target": self.target,
                "protocol": self.protocol, **record}


def _valid_scores(record: dict[str, Any]) -> bool:
    """Whether a score cell's record holds numbers (or None) where scores and seconds belong."""
    if not record:
        return True
    scores, seconds = record.get("scores"), record.get("seconds")
    if not isinstance(scores, dict) or not isinstance(seconds, dict):
        return False
    return all(value is None or (isinstance(value, int | float) and not isinstance(value, bool)
                                 and math.isfinite(value)) for value in scores.values())


def _is_accuracy(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and 0.0 <= value <= 1.0

