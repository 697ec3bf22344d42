"""The stages of a run: train the zoo, score every module on every target, measure the truth.

The score stage is one for every kind of run (:func:`compute_matrix`); the training and a trained run's
truth are here too, a zoo run's truth in :mod:`taskspace.zoo.stages`. Stages run in order (zoo, then
scores or truth); within a stage the cells are independent and run by the chosen executor. Each stage
holds the run's lock (:meth:`Run.writing`) and writes its results through the run, which knows where
they go.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from taskspace._version import __version__
from taskspace.errors import ConfigError, TaskspaceError, did_you_mean
from taskspace.io import read_json, sha256_of_file, write_json
from taskspace.matrix import TransferabilityMatrix
from taskspace.runner.cells import Cell, ExtractCell, ScoreCell, TrainCell, TruthCell
from taskspace.runner.executors import check_execution, run_cells
from taskspace.runner.extraction import bank_path
from taskspace.runner.folder import read_cell
from taskspace.runner.handles import TrainedRun
from taskspace.transfer import get_protocol

__all__ = ["train_zoo", "compute_matrix", "compute_truth"]


def _run_stage(
    cells: Sequence[Cell],
    run: TrainedRun,
    *,
    executor: str,
    workers: int | None,
    threads: int | None,
    what: str,
    show_progress: bool,
    ray_address: str | None,
) -> float:
    from taskspace.training.progress import stage_progress

    started = time.perf_counter()
    pending = [cell for cell in cells if not cell.is_done(run)]
    with stage_progress(what, total=len(pending), unit="cell", enabled=show_progress and bool(pending)) as advance:
        run_cells(pending, run, executor=executor, workers=workers, threads=threads, on_done=lambda cell: advance(),
                  address=ray_address)
    return time.perf_counter() - started


def train_zoo(run: TrainedRun, *, executor: str = "serial", workers: int | None = None,
              threads: int | None = None, show_progress: bool = False, ray_address: str | None = None) -> float:
    """Train every source network that is missing; returns the wall time of the stage."""
    check_execution(executor, workers, threads)
    cells = [TrainCell(task_id) for task_id in run.space.ids]
    with run.writing():
        return _run_stage(cells, run, executor=executor, workers=workers, threads=threads, what="zoo",
                          show_progress=show_progress, ray_address=ray_address)


def compute_matrix(
    run: Any,
    *,
    estimators: Sequence[str],
    executor: str = "serial",
    workers: int | None = None,
    threads: int | None = None,
    show_progress: bool = False,
    ray_address: str | None = None,
    device: str = "cpu",
    batch_size: int = 256,
) -> dict[str, TransferabilityMatrix]:
    """Scores of every module on every target, on every kind of run; writes the run's matrix files.

    The stage trains the networks the run trains (a task space's), makes every source's missing forward
    passes into the store (a trained run's :class:`ExtractCell` per source on ``executor``; a zoo run's
    here, one source at a time on ``device`` in batches of ``batch_size``), then scores each source in one
    :class:`ScoreCell` on ``executor``. The scores are the same numbers on every executor at equal
    ``threads`` (the records' measured seconds differ).
    """
    from taskspace.scoring import get_estimator

    for name in estimators:
        get_estimator(name)  # unknown names fail before any work
    if not estimators:
        raise TaskspaceError("no estimator to score with; name one or more with --estimators")
    estimators = tuple(estimators)
    execution = _execution(executor, workers, threads, show_progress, ray_address)
    with run.writing():
        if run.kind == "zoo":
            from taskspace.zoo.stages import forward_passes

            cells = [ScoreCell(spec.name, estimators) for spec in run.zoo.sources]
            provenance = {"run": run.identity, "zoo": run.zoo.identity(), "options": run.options.__dict__,
                          "forward_seconds": forward_passes(run, cells, device=device, batch_size=batch_size,
                                                             show_progress=show_progress)}
        else:
            zoo_seconds = train_zoo(run, **execution)
            cells = [ScoreCell(source, estimators) for source in run.space.ids]
            if any(not cell.is_done(run) for cell in cells):
                _run_stage([ExtractCell(source) for source in run.space.ids], run, what="forward passes",
                           **execution)
            provenance = {**_provenance(run), "zoo_seconds_this_call": zoo_seconds}
        score_seconds = _run_stage(cells, run, what="scores", **execution)
        row = "module" if run.kind == "zoo" else "source"
        records = {(module, target): _score_record(run, module, target, row)
                   for module in run.modules for target in run.target_ids}
        if run.kind != "zoo":
            provenance["score_seconds_this_call"] = score_seconds
        matrices = [TransferabilityMatrix(np.array([[_number(records[(module, target)]["scores"].get(name))
                                                      for target in run.target_ids] for module in run.modules]),
                                          run.modules, run.target_ids, name, True, provenance)
                    for name in estimators]
        run.write_estimates(matrices)
        if run.kind != "zoo":
            write_json(run.path("score_seconds"), _score_timing(run, records, estimators))
    _say_failures(records, estimators)
    return {matrix.estimator: matrix for matrix in matrices}


def _score_timing(run: TrainedRun, records: dict[tuple[str, str], dict[str, Any]],
                  estimators: Sequence[str]) -> dict[str, float]:
    """A trained run's measured seconds of each estimator, and of its forward passes: the banks' measured
    seconds (cells scored before banks existed kept their own)."""
    timing = {name: float(sum(record["seconds"].get(name, 0.0) for record in records.values()))
              for name in estimators}
    ids = run.space.ids
    timing["feature_extraction"] = float(
        sum(record.get("extract_seconds", 0.0) for record in records.values())
        + sum(_bank_seconds(run, source) for source in ids
              if any("extract_seconds" not in records[(source, target)] for target in ids))
    )
    return timing


def _say_failures(records: dict[tuple[str, str], dict[str, Any]], estimators: Sequence[str]) -> None:
    """One note per estimator that scored no cell of some source (NaN there), with its first error."""
    for name in estimators:
        sources, first = set(), ""
        for (module, _), record in records.items():
            if record["scores"].get(name) is None and name in record.get("errors", {}):
                sources.add(module.split(":")[0])
                first = first or str(record["errors"][name])
        if sources:
            print(f"taskspace: note: {name} scored no cell of {', '.join(sorted(sources))} (NaN): {first}",
                  file=sys.stderr)


def _score_record(run: Any, module: str, target: str, row: str) -> dict[str, Any]:
    record = read_cell(run.score_file(module, target), **{row: module, "target": target})
    if record is None:
        raise TaskspaceError(
            f"the score cell {module} -> {target} of '{run.folder}' was not written; rerun the command"
        )
    return record


def compute_truth(
    run: TrainedRun,
    *,
    protocols: Sequence[str],
    targets: Sequence[str] | None = None,
    executor: str = "serial",
    workers: int | None = None,
    threads: int | None = None,
    show_progress: bool = False,
    ray_address: str | None = None,
) -> list[dict[str, Any]]:
    """Ground-truth accuracy of every source on every target (or on ``targets`` only) under each protocol.

    Returns this call's cells; ``truth.csv`` is written with every cell the run has measured (of any
    protocol and target, earlier calls' included) and every imported one.
    """
    for protocol in protocols:
        get_protocol(protocol)
    if not protocols:
        raise TaskspaceError("no ground-truth protocol to measure; name one or more with --protocols")
    ids = run.space.ids
    chosen = ids if targets is None else tuple(dict.fromkeys(targets))
    for target in chosen:
        if target not in ids:
            raise ConfigError(f"--targets names '{target}', which is not a task of the run{did_you_mean(target, ids)} "
                              f"(tasks: {', '.join(ids)})")
    execution = _execution(executor, workers, threads, show_progress, ray_address)
    with run.writing():
        train_zoo(run, **execution)
        rows: list[dict[str, Any]] = []
        for protocol in protocols:
            cells = [TruthCell(protocol, s, t) for s in ids for t in chosen]
            pending = {cell.source for cell in cells if not cell.is_done(run)}
            if pending and get_protocol(protocol).reads_outputs:  # each source's passes once, into the store
                _run_stage([ExtractCell(source, split, "truth") for source in ids if source in pending
                            for split in ("train", "test")], run, what="forward passes", **execution)
            _run_stage(cells, run, what=f"truth {protocol}", **execution)
            for source in ids:
                for target in chosen:
                    record = run.read_cell(run.truth_file(protocol, source, target), source, target)
                    if record is None:
                        raise TaskspaceError(f"the {protocol} cell {source} -> {target} was not written; rerun")
                    rows.append({"source": source, "target": target, "protocol": protocol,
                                 "accuracy": float(record["accuracy"]), "diagonal": source == target,
                                 "seconds": float(record["seconds"])})
        run.write_truth(run.measured_rows(first=protocols))
    return rows


def _execution(executor: str, workers: int | None, threads: int | None, show_progress: bool,
               ray_address: str | None) -> dict[str, Any]:
    """The options a stage passes on to its executor, checked before any work."""
    check_execution(executor, workers, threads)
    return {"executor": executor, "workers": workers, "threads": threads, "show_progress": show_progress,
            "ray_address": ray_address}


def _bank_seconds(run: TrainedRun, source: str) -> float:
    path = bank_path(run, source)
    if not path.is_file():
        return 0.0
    try:
        return float(read_json(path)["seconds"])
    except (TaskspaceError, KeyError, TypeError, ValueError):
        return 0.0


def _number(value: object) -> float:
    return math.nan if value is None else float(value)  # type: ignore[arg-type]


def _trained_on(run: TrainedRun, ids: Sequence[str]) -> dict[str, Any]:
    """The processor each checkpoint's bytes came from, as its metrics.json recorded it (networks trained
    before taskspace recorded it are left out): weights differ in their last bits across processors."""
    machines = {}
    for task_id in ids:
        try:
            recorded = run.source_metrics(task_id).get("trained_on")
        except (TaskspaceError, ValueError, TypeError):
            recorded = None
        if isinstance(recorded, dict):
            machines[task_id] = recorded
    return machines


def _provenance(run: TrainedRun) -> dict[str, Any]:
    ids = run.space.ids
    return {
        "grid": run.grid.to_dict(),
        "grid_hash": run.grid.hash(),
        "run_identity": run.identity,
        "space": run.space.to_record(),
        "space_ids": list(ids),
        "dataset": run.space.dataset,
        "seed": run.grid.seed,
        "checkpoint_sha256": {task_id: sha256_of_file(run.checkpoint(task_id)) for task_id in ids},
        "trained_on": _trained_on(run, ids),
        "taskspace_version": __version__,
        "torch_version": torch.__version__,
        "numpy_version": np.__version__,
    }

