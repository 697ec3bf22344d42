"""The grid of a task space: train the zoo, score every source on every target, measure the truth.

Stages run in order (zoo, then scores or truth); within a stage the cells are independent and run by
the chosen executor. A run folder records its :class:`GridConfig`; a rerun with the same config
skips finished cells, and one with another config is refused rather than mixed in.
"""

from __future__ import annotations

import csv
import io
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from taskspace import __version__
from taskspace.errors import TaskspaceError
from taskspace.io import ensure_writable_dir, read_json, sha256_of_file, write_json, write_text
from taskspace.matrix import TransferabilityMatrix, write_matrix_set
from taskspace.runner.cells import Cell, ExtractCell, ScoreCell, TrainCell, TruthCell, score_path, truth_path
from taskspace.runner.context import GridConfig, RunContext, parse_protocol
from taskspace.runner.executors import run_cells
from taskspace.runner.extraction import bank_path

__all__ = ["open_run", "train_zoo", "compute_matrix", "compute_truth", "TRUTH_COLUMNS", "read_truth_csv"]

RUN_FILE = "run.json"
TRUTH_COLUMNS = ("source", "target", "protocol", "accuracy", "diagonal")


def open_run(run_dir: str | Path, grid: GridConfig | None, *, data_root: str | None = None) -> RunContext:
    """Create or reopen a run folder; ``grid=None`` reopens with the recorded config.

    Raises:
        TaskspaceError: the folder holds a run of another config (it is never mixed), or no run at all
            when ``grid`` is None.
    """
    folder = Path(run_dir)
    record_path = folder / RUN_FILE
    if record_path.is_file():
        record = read_json(record_path)
        try:
            recorded = GridConfig(**record["grid"])
        except (KeyError, TypeError, ValueError) as error:
            raise TaskspaceError(
                f"'{record_path}' is not a taskspace run record ({type(error).__name__}: {error}); "
                "restore it or start the run in another --out folder"
            ) from None
        if grid is not None and recorded.hash() != grid.hash():
            raise TaskspaceError(
                f"'{folder}' holds a run made with another config (hash {recorded.hash()}, this one "
                f"{grid.hash()}); use another --out folder or the same options"
            )
        grid = recorded
    elif grid is None:
        raise TaskspaceError(f"'{folder}' holds no taskspace run ({RUN_FILE} missing); run `taskspace matrix` first")
    else:
        ensure_writable_dir(folder)
    context = RunContext(run_dir=folder, grid=grid, data_root=data_root)
    space = context.space  # validates the space and its classes before anything is written
    if not record_path.is_file():
        write_json(record_path, {"grid": grid.to_dict(), "grid_hash": grid.hash(), "space_ids": list(space.ids),
                                 "dataset": space.dataset, "taskspace_version": __version__})
    return context


def _run_stage(
    cells: Sequence[Cell],
    context: RunContext,
    *,
    executor: str,
    workers: int | None,
    threads: int | None,
    what: str,
    show_progress: bool,
) -> float:
    started = time.perf_counter()
    pending = [cell for cell in cells if not cell.is_done(context)]
    bar = None
    if show_progress and pending:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(pending), desc=what, unit="cell", file=sys.stderr)
    try:
        run_cells(pending, context, executor=executor, workers=workers, threads=threads,
                  on_done=(lambda cell: bar.update(1)) if bar is not None else None)
    finally:
        if bar is not None:
            bar.close()
    return time.perf_counter() - started


def train_zoo(context: RunContext, *, executor: str = "serial", workers: int | None = None,
              threads: int | None = None, show_progress: bool = False) -> float:
    """Train every source network that is missing; returns the wall time of the stage."""
    cells = [TrainCell(task_id) for task_id in context.space.ids]
    return _run_stage(cells, context, executor=executor, workers=workers, threads=threads, what="zoo",
                      show_progress=show_progress)


def compute_matrix(
    context: RunContext,
    *,
    estimators: Sequence[str],
    executor: str = "serial",
    workers: int | None = None,
    threads: int | None = None,
    show_progress: bool = False,
) -> dict[str, TransferabilityMatrix]:
    """Scores of every source on every target; writes ``matrix.csv``, ``matrix.json``, ``matrix.npz``."""
    from taskspace.scoring import get_estimator

    for name in estimators:
        get_estimator(name)  # unknown names fail before any work
    zoo_seconds = train_zoo(context, executor=executor, workers=workers, threads=threads,
                            show_progress=show_progress)
    ids = context.space.ids
    cells = [ScoreCell(source, target, tuple(estimators)) for source in ids for target in ids]
    if any(not cell.is_done(context) for cell in cells):
        _run_stage([ExtractCell(source) for source in ids], context, executor=executor, workers=workers,
                   threads=threads, what="forward passes", show_progress=show_progress)
    score_seconds = _run_stage(cells, context, executor=executor, workers=workers, threads=threads,
                               what="scores", show_progress=show_progress)
    records = {(s, t): read_json(score_path(context, s, t)) for s in ids for t in ids}
    provenance = _provenance(context)
    provenance.update({"zoo_seconds_this_call": zoo_seconds, "score_seconds_this_call": score_seconds})
    matrices = []
    for name in estimators:
        scores = np.array([[_number(records[(s, t)]["scores"].get(name)) for t in ids] for s in ids])
        matrices.append(TransferabilityMatrix(scores, ids, ids, name, True, provenance))
    write_matrix_set(context.run_dir, matrices, stem="matrix")
    timing = {
        name: float(sum(records[key]["seconds"].get(name, 0.0) for key in records)) for name in estimators
    }
    # Forward passes: the banks' measured seconds; cells scored before banks existed kept their own.
    timing["feature_extraction"] = float(
        sum(records[key].get("extract_seconds", 0.0) for key in records)
        + sum(_bank_seconds(context, source) for source in ids
              if any("extract_seconds" not in records[(source, target)] for target in ids))
    )
    write_json(context.run_dir / "score_seconds.json", timing)
    return {matrix.estimator: matrix for matrix in matrices}


def compute_truth(
    context: RunContext,
    *,
    protocols: Sequence[str],
    executor: str = "serial",
    workers: int | None = None,
    threads: int | None = None,
    show_progress: bool = False,
) -> list[dict[str, Any]]:
    """Ground-truth accuracy of every (source, target) under each protocol; writes ``truth.csv``."""
    for protocol in protocols:
        parse_protocol(protocol)
    train_zoo(context, executor=executor, workers=workers, threads=threads, show_progress=show_progress)
    ids = context.space.ids
    rows: list[dict[str, Any]] = []
    for protocol in protocols:
        cells = [TruthCell(protocol, s, t) for s in ids for t in ids]
        _run_stage(cells, context, executor=executor, workers=workers, threads=threads,
                   what=f"truth {protocol}", show_progress=show_progress)
        for source in ids:
            for target in ids:
                record = read_json(truth_path(context, protocol, source, target))
                rows.append({"source": source, "target": target, "protocol": protocol,
                             "accuracy": float(record["accuracy"]), "diagonal": source == target,
                             "seconds": float(record["seconds"])})
    _write_truth_csv(context.run_dir / "truth.csv", rows)
    return rows


def _write_truth_csv(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(TRUTH_COLUMNS)
    for row in rows:
        writer.writerow([row["source"], row["target"], row["protocol"], repr(row["accuracy"]),
                         "true" if row["diagonal"] else "false"])
    write_text(path, buffer.getvalue())


def read_truth_csv(path: str | Path) -> dict[str, TransferabilityMatrix]:
    """``truth.csv`` as one matrix of accuracies per protocol."""
    file = Path(path)
    if not file.is_file():
        raise TaskspaceError(f"no ground truth at '{file}'; run `taskspace truth --out {file.parent}` first")
    rows = list(csv.DictReader(io.StringIO(file.read_text(encoding="utf-8"))))
    if not rows or tuple(rows[0].keys()) != TRUTH_COLUMNS:
        raise TaskspaceError(f"'{file}' is not a taskspace truth.csv (columns {','.join(TRUTH_COLUMNS)})")
    sources = list(dict.fromkeys(row["source"] for row in rows))
    targets = list(dict.fromkeys(row["target"] for row in rows))
    matrices: dict[str, TransferabilityMatrix] = {}
    for protocol in dict.fromkeys(row["protocol"] for row in rows):
        scores = np.full((len(sources), len(targets)), np.nan)
        for row in rows:
            if row["protocol"] == protocol:
                scores[sources.index(row["source"]), targets.index(row["target"])] = float(row["accuracy"])
        matrices[protocol] = TransferabilityMatrix(scores, tuple(sources), tuple(targets), protocol)
    return matrices


def _bank_seconds(context: RunContext, source: str) -> float:
    path = bank_path(context, source).with_suffix(".json")
    return float(read_json(path)["seconds"]) if path.is_file() else 0.0


def _number(value: object) -> float:
    return math.nan if value is None else float(value)  # type: ignore[arg-type]


def _provenance(context: RunContext) -> dict[str, Any]:
    ids = context.space.ids
    return {
        "grid": context.grid.to_dict(),
        "grid_hash": context.grid.hash(),
        "space_ids": list(ids),
        "dataset": context.space.dataset,
        "seed": context.grid.seed,
        "checkpoint_sha256": {task_id: sha256_of_file(context.checkpoint(task_id)) for task_id in ids},
        "taskspace_version": __version__,
        "torch_version": torch.__version__,
        "numpy_version": np.__version__,
    }
