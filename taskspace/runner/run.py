"""A run folder and its one owner, :class:`Run`.

A run is a task space, a :class:`~taskspace.config.GridConfig` and a data root; its folder
holds the zoo, the cells of each stage and the results read back from them. This module alone knows
the folder's layout (:data:`LAYOUT`, the one table of its file names); every other module asks a
:class:`Run` for a path, a reader or a writer.

Identity by content: ``run.json`` records the resolved task space (dataset, each task's classes,
class groups), not the file or name it was read from, and the run's identity is the hash of that
content and the grid options. A moved or respelled space file reopens the run; a changed one is
refused with what differs. Cell files are named by the hash of their ids (the readable ids are kept
inside and checked on reading), so no class name can make two cells share a file.

One writer at a time: :meth:`Run.writing` holds ``run.lock`` (the writer's pid and host); a lock left
by a process that no longer runs is taken over, and said so.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import functools
import hashlib
import io
import json
import math
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from taskspace import __version__
from taskspace.analysis import EVALUATION_COLUMNS
from taskspace.errors import TaskspaceError, did_you_mean
from taskspace.io import (
    canonical_json,
    ensure_writable_dir,
    read_json,
    read_record,
    write_json,
    write_text,
)
from taskspace.tasks import Task, TaskSpace

__all__ = [
    "LAYOUT",
    "RUN_FORMAT",
    "PREFERRED_ESTIMATOR",
    "MAIN_PROTOCOL",
    "TRUTH_COLUMNS",
    "VERDICT_COLUMNS",
    "Run",
    "pair_key",
    "read_truth_csv",
    "choose_estimator",
    "choose_protocol",
]

#: Where everything of a run lives, relative to its folder: the only table of its file names.
LAYOUT: dict[str, str] = {
    "record": "run.json",                    # identity: grid, task space, data root, versions
    "lock": "run.lock",                      # the pid and host of the process writing the run
    "zoo": "zoo",                            # zoo/<task>/: one trained source network (config, model, metrics)
    "features": "features",                  # cached forward passes, named by their content hash
    "banks": "features/banks",               # banks/<source>.{npz,json}: a source's pass over every scored image
    "scores": "scores",                      # scores/<pair key>.json: one (source, target) cell
    "truth_cells": "truth",                  # truth/<protocol>/<pair key>.json (+ runs/<pair key>/ when trained)
    "matrix": "matrix",                      # matrix.{csv,json,npz}: every estimator's matrix
    "score_seconds": "score_seconds.json",   # measured cost of each estimator and of the forward passes
    "truth": "truth.csv",                    # the measured ground truth, one row per cell and protocol
    "verdict": "evaluation.csv",             # how well each estimator predicts each ground truth
    "recommendations": "recommendations",    # recommendations/<target>__<estimator>.json
    "structure_graph": "structure/graph",    # the task graph: graph.graphml, graph.gexf, graph.json
    "structure_record": "structure/structure.json",  # communities, arborescence, group recovery
    "similarity": "similarity",              # module similarity matrices, cached by their inputs
    "report": "report",                      # report.html, report.md, figures/
}

#: Version of ``run.json``; records without one (format 1) name the space by path and are upgraded.
RUN_FORMAT = 2

#: The estimator a run is shown by when it has it: taskspace's kernel-family score (the held-out fit on the
#: cosine kernel's features; benchmarks/few_images.py says why it replaced alignment_whitened).
PREFERRED_ESTIMATOR = "kernel_ridge_r2"

#: The ground truth a run is shown against when it was measured.
MAIN_PROTOCOL = "frozen_all"

TRUTH_COLUMNS = ("source", "target", "protocol", "accuracy", "diagonal")

#: The columns of ``evaluation.csv``: the rows of :func:`taskspace.analysis.evaluate`.
VERDICT_COLUMNS = EVALUATION_COLUMNS
_VERDICT_TEXT = ("estimator", "protocol")
_VERDICT_REQUIRED = ("estimator", "protocol", "kendall_tau", "kendall_tau_low", "kendall_tau_high")


def pair_key(source: str, target: str) -> str:
    """A file-name-safe key of one (source, target) cell: distinct pairs never share one, whatever their ids."""
    return hashlib.sha256(canonical_json([source, target]).encode()).hexdigest()[:24]


@dataclass(frozen=True)
class Run:
    """A run folder with its grid, its resolved task space and its data root (picklable: it travels to
    worker processes).

    Build one with :meth:`open` (an existing run) or :meth:`create` (a new one, or the same one again).

    Attributes:
        folder: the run folder, absolute.
        grid: the grid options (zoo training, score samples, ground-truth settings, seed).
        space: the task space, resolved once.
        data_root: where the dataset's files are; ``None`` = ``$TASKSPACE_DATA``.
    """

    folder: Path
    grid: Any  # GridConfig (typed loosely: context.py imports this module's neighbours)
    space: TaskSpace
    data_root: str | None = None

    # -- identity ------------------------------------------------------------------------------------

    @property
    def identity(self) -> str:
        """Hash of what decides the run's results: the grid options and the task space's content."""
        return run_identity(self.grid, self.space)

    @staticmethod
    def exists(folder: str | os.PathLike[str]) -> bool:
        """Whether ``folder`` holds a run (its record)."""
        return (Path(folder).expanduser() / LAYOUT["record"]).is_file()

    @classmethod
    def open(cls, folder: str | os.PathLike[str], *, data_root: str | None = None) -> Run:
        """Reopen the run in ``folder`` as it was recorded.

        Args:
            folder: a run folder made by ``taskspace matrix`` or ``taskspace truth``.
            data_root: where the dataset lives now; default: the one recorded with the run.

        Raises:
            TaskspaceError: no run there, or a damaged ``run.json`` (one line, with the fix).
        """
        path = Path(folder).expanduser().absolute()
        record_file = path / LAYOUT["record"]
        if not path.is_dir():
            raise TaskspaceError(f"'{folder}' is not a folder; pass a run folder made by `taskspace matrix RUN`")
        if not record_file.is_file():
            raise TaskspaceError(
                f"'{folder}' holds no taskspace run ({LAYOUT['record']} missing); "
                f"make one with `taskspace matrix {folder}`"
            )
        if _kind_of(record_file) == "zoo":
            raise TaskspaceError(f"'{folder}' holds a zoo run (made with --zoo), which this command does not read yet; "
                                 "use matrix, truth, evaluate, recommend or plot depth-profile on it")
        grid, space, recorded_root, upgrade = _read_record(record_file, data_root)
        run = cls(path, grid, space, data_root if data_root is not None else recorded_root)
        run._check_space()
        if upgrade:
            with run.writing():
                _upgrade_cells(run)
                run._write_record()
        return run

    @classmethod
    def create(
        cls,
        folder: str | os.PathLike[str],
        grid: Any,
        *,
        space: TaskSpace | None = None,
        data_root: str | None = None,
    ) -> Run:
        """Create a run, or reopen the same one (same grid options and task-space content).

        Nothing is written until every input is checked: the space against its dataset, the folder
        (writable, not inside the dataset). A folder holding another run is refused with what differs.

        Args:
            folder: the run folder.
            grid: the grid options.
            space: the resolved task space; default: ``grid.space`` resolved.
            data_root: where the dataset lives; recorded with the run.
        """
        path = Path(folder).expanduser().absolute()
        resolved = space if space is not None else TaskSpace.resolve(grid.space, data_root=data_root)
        run = cls(path, grid, resolved, _absolute_root(data_root))
        run._check_space()
        record_file = path / LAYOUT["record"]
        if record_file.is_file():
            existing = cls.open(path, data_root=data_root)
            problems = existing.differences(grid, resolved)
            if problems:
                raise TaskspaceError(
                    f"'{folder}' holds another run ({'; '.join(problems)}); use the run's options or another folder"
                )
            return existing
        _refuse_inside_dataset(path, resolved.dataset, run.data_root)
        if path.exists() and not path.is_dir():
            raise TaskspaceError(f"'{folder}' is a file, not a folder; choose a folder for the run")
        ensure_writable_dir(path, what="run folder")
        with run.writing():
            run._write_record()
        return run

    def differences(self, grid: Any, space: TaskSpace) -> list[str]:
        """What differs between this run and one of ``grid`` over ``space``, as short phrases."""
        problems = [f"task space: {item}" for item in self.space.differences(space)]
        mine, theirs = self.grid.identity_dict(), grid.identity_dict()
        for name in sorted(set(mine) | set(theirs)):
            if name == "train":
                for option in sorted(set(mine["train"]) | set(theirs["train"])):
                    here, there = mine["train"].get(option), theirs["train"].get(option)
                    if here != there:
                        problems.append(f"training option {option}: run {here!r}, asked {there!r}")
            elif mine.get(name) != theirs.get(name):
                problems.append(f"{name}: run {mine.get(name)!r}, asked {theirs.get(name)!r}")
        return problems

    def _check_space(self) -> None:
        from taskspace.data import dataset_class_names

        self.space.validate(dataset_class_names(self.space.dataset, data_root=self.data_root))

    def _write_record(self) -> None:
        write_json(self.path("record"), {
            "format": RUN_FORMAT,
            "identity": self.identity,
            "grid": self.grid.to_dict(),
            "grid_hash": self.grid.hash(),
            "space": self.space.to_record(),
            "space_ids": list(self.space.ids),
            "dataset": self.space.dataset,
            "data_root": self.data_root,
            "taskspace_version": __version__,
        })

    def record(self) -> dict[str, Any]:
        """The run's ``run.json``."""
        return dict(read_json(self.path("record")))

    # -- layout --------------------------------------------------------------------------------------

    def path(self, role: str, *parts: str) -> Path:
        """``folder / LAYOUT[role] / parts``: the path of one of the run's files or folders."""
        return self.folder.joinpath(LAYOUT[role], *parts)

    def source_dir(self, task_id: str) -> Path:
        """The training folder of the zoo's network for ``task_id``."""
        return self.path("zoo", self.space.task(task_id).id)

    def checkpoint(self, task_id: str) -> Path:
        from taskspace.training.run import MODEL_FILE

        return self.source_dir(task_id) / MODEL_FILE

    def source_metrics(self, task_id: str) -> dict[str, Any]:
        """The zoo network's ``metrics.json`` (its test accuracy among them)."""
        from taskspace.training.run import METRICS_FILE

        return dict(read_json(self.source_dir(task_id) / METRICS_FILE))

    def score_file(self, source: str, target: str) -> Path:
        return self.path("scores", f"{pair_key(source, target)}.json")

    def truth_file(self, protocol: str, source: str, target: str) -> Path:
        return self.path("truth_cells", protocol, f"{pair_key(source, target)}.json")

    def truth_work_dir(self, protocol: str, source: str, target: str) -> Path:
        """Where a ground-truth cell that trains keeps its training folder."""
        return self.path("truth_cells", protocol, "runs", pair_key(source, target))

    def bank_file(self, source: str) -> Path:
        return self.path("banks", f"{self.space.task(source).id}.npz")

    def recommendation_file(self, target: str, estimator: str) -> Path:
        return self.path("recommendations", f"{target}__{estimator}.json")

    def read_cell(self, path: Path, source: str, target: str) -> dict[str, Any] | None:
        """A cell's record if it is there, readable and about (source, target); else None (computed again)."""
        return read_record(path, source=source, target=target)

    # -- data ----------------------------------------------------------------------------------------

    @property
    def forward_device(self) -> str:
        """Where the score and probe stages run their forward passes: the zoo's training device
        (``auto`` resolved; ``cuda`` without a GPU is an error naming the fix)."""
        from taskspace.training.run import resolve_device

        return str(resolve_device(str(self.grid.train.get("device", "cpu"))))

    def dataset(self) -> Any:
        """The run's dataset (read once per process)."""
        return _dataset(self.space.dataset, self.data_root)

    def splits(self, task: str | Task) -> Any:
        """Train, validation and test splits of a task (of the space, or any other over the dataset's
        classes) as the zoo's networks would use them."""
        if isinstance(task, str):
            task = self.space.task(task) if task in self.space.ids else Task.parse(
                task, class_names=self.dataset().class_names)
        config = self.grid.source_config(task.id, self.space.dataset)
        return task.select(self.dataset(), validation_fraction=config.validation_fraction, seed=config.seed)

    # -- one writer ----------------------------------------------------------------------------------

    @contextlib.contextmanager
    def writing(self) -> Iterator[Run]:
        """Hold the run's lock while writing into it (re-entrant within one process)."""
        with holding_lock(self.folder, self.path("lock")):
            yield self

    # -- results -------------------------------------------------------------------------------------

    def estimates(self) -> dict[str, Any]:
        """Estimator name -> :class:`~taskspace.matrix.TransferabilityMatrix` (``matrix.json``)."""
        from taskspace.matrix import read_matrix_set

        path = self.path("matrix").with_suffix(".json")
        if not path.is_file():
            raise TaskspaceError(f"no matrix in '{self.folder}'; score it with `taskspace matrix {self.folder}`")
        return read_matrix_set(path)

    def has_estimates(self) -> bool:
        return self.path("matrix").with_suffix(".json").is_file()

    def write_estimates(self, matrices: Sequence[Any]) -> None:
        from taskspace.matrix import merge_matrix_sets, write_matrix_set

        matrices = merge_matrix_sets(self.estimates() if self.has_estimates() else {}, matrices)
        write_matrix_set(self.folder, matrices, stem=LAYOUT["matrix"])

    def truths(self) -> dict[str, Any]:
        """Protocol -> matrix of measured accuracies (``truth.csv``); empty when none was measured."""
        path = self.path("truth")
        return read_truth_csv(path, run=self.folder) if path.is_file() else {}

    def write_truth(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Write ``truth.csv`` (columns :data:`TRUTH_COLUMNS`)."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(TRUTH_COLUMNS)
        for row in rows:
            writer.writerow([row["source"], row["target"], row["protocol"], repr(float(row["accuracy"])),
                             "true" if row["diagonal"] else "false"])
        write_text(self.path("truth"), buffer.getvalue())

    def verdict(self) -> list[dict[str, Any]]:
        """The rows of ``evaluation.csv``, numbers as floats; empty when no verdict was written.

        Raises:
            TaskspaceError: the file lacks a column, or holds a value that is not a number.
        """
        path = self.path("verdict")
        if not path.is_file():
            return []
        try:
            with open(path, encoding="utf-8", newline="") as handle:
                rows = list(csv.DictReader(handle))
        except (OSError, UnicodeDecodeError, csv.Error) as error:
            raise TaskspaceError(f"'{path}' cannot be read ({error}); {self._verdict_fix()}") from None
        if rows:
            missing = [column for column in _VERDICT_REQUIRED if column not in rows[0]]
            if missing:
                raise TaskspaceError(f"'{path}' lacks column(s) {', '.join(missing)}; {self._verdict_fix()}")
        parsed = []
        for number, row in enumerate(rows, start=2):
            values: dict[str, Any] = {}
            for column, text in row.items():
                if column is None:
                    raise TaskspaceError(f"'{path}' line {number} has extra fields; {self._verdict_fix()}")
                if column in _VERDICT_TEXT:
                    values[column] = text
                    continue
                try:
                    values[column] = float(text)
                except (TypeError, ValueError):
                    raise TaskspaceError(
                        f"'{path}' line {number}: {column} '{text}' is not a number; {self._verdict_fix()}"
                    ) from None
            parsed.append(values)
        return parsed

    def _verdict_fix(self) -> str:
        return f"write it again with `taskspace evaluate {self.folder}`"

    def write_verdict(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Write ``evaluation.csv`` (columns :data:`VERDICT_COLUMNS`) with the csv module."""
        if not rows:
            raise TaskspaceError("no evaluation rows to write; the run's estimates and truths share no cell")
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(VERDICT_COLUMNS)
        for row in rows:
            writer.writerow([repr(row[column]) if isinstance(row[column], float) else row[column]
                             for column in VERDICT_COLUMNS])
        write_text(self.path("verdict"), buffer.getvalue())

    def default_protocol(self, requested: str | None = None) -> str | None:
        """See :func:`choose_protocol`."""
        return choose_protocol(self.truths(), requested)

    def default_estimator(self, requested: str | None = None, *, protocol: str | None = None) -> str:
        """See :func:`choose_estimator`."""
        return choose_estimator(self.estimates(), self.verdict(), requested=requested, protocol=protocol,
                                run=self.folder)

    # -- stages --------------------------------------------------------------------------------------

    def train_zoo(self, **execution: Any) -> float:
        """Train every source network that is missing; see :func:`taskspace.runner.grid.train_zoo`."""
        from taskspace.runner.grid import train_zoo

        return train_zoo(self, **execution)

    def score(self, estimators: Sequence[str], **execution: Any) -> dict[str, Any]:
        """Score every source on every target; see :func:`taskspace.runner.grid.compute_matrix`."""
        from taskspace.runner.grid import compute_matrix

        return compute_matrix(self, estimators=estimators, **execution)

    def measure(self, protocols: Sequence[str], **execution: Any) -> list[dict[str, Any]]:
        """Measure the ground truth; see :func:`taskspace.runner.grid.compute_truth`."""
        from taskspace.runner.grid import compute_truth

        return compute_truth(self, protocols=protocols, **execution)


def _kind_of(record_file: Path) -> str | None:
    """The ``kind`` a run record names (``zoo`` for a zoo run; none for a task-space run)."""
    try:
        record = read_json(record_file)
    except TaskspaceError:
        return None
    return record.get("kind") if isinstance(record, dict) else None


def run_identity(grid: Any, space: TaskSpace) -> str:
    """Hash of the grid options (but the space's name) and the task space's content."""
    document = {"grid": grid.identity_dict(), "space": space.to_record()}
    return hashlib.sha256(canonical_json(document).encode()).hexdigest()[:16]


# -- the default-estimator policy ---------------------------------------------------------------------


def choose_protocol(truths: Mapping[str, Any], requested: str | None = None) -> str | None:
    """``requested`` (it must be measured), else :data:`MAIN_PROTOCOL` if measured, else the first; None
    when the run has no ground truth."""
    if requested is not None:
        if requested not in truths:
            available = ", ".join(truths) or "none: measure one with `taskspace truth RUN` first"
            raise TaskspaceError(f"the run has no ground truth '{requested}' (measured: {available})")
        return requested
    if not truths:
        return None
    return MAIN_PROTOCOL if MAIN_PROTOCOL in truths else next(iter(truths))


def choose_estimator(
    estimates: Mapping[str, Any],
    verdict: Sequence[Mapping[str, Any]],
    *,
    requested: str | None = None,
    protocol: str | None = None,
    run: str | os.PathLike[str] = "RUN",
) -> str:
    """The estimator a run is shown and ranked by.

    ``requested`` if given (it must be in the run). Otherwise :data:`PREFERRED_ESTIMATOR` when the run
    has it, unless the run's own verdict (rows of ``evaluation.csv``, against ``protocol``, by default
    ``frozen_all`` when measured) puts its mean Kendall τ below the lower end of the best estimator's
    95% interval: then that best estimator. Without a verdict, the preferred one, else the first.
    """
    if requested is not None:
        if requested not in estimates:
            from taskspace.scoring import list_estimators

            known = list_estimators()
            add = (f", or add it with `taskspace matrix {run} --estimators {requested}`" if requested in known
                   else did_you_mean(requested, [*estimates, *known]))
            raise TaskspaceError(
                f"the run's matrix has no estimator '{requested}' (it has {', '.join(sorted(estimates))}); "
                f"pass one of those{add}"
            )
        return requested
    rows = [row for row in verdict if row["estimator"] in estimates and _sortable(row["kendall_tau"]) > -math.inf]
    if rows:
        protocols = [row["protocol"] for row in rows]
        chosen = protocol if protocol in protocols else (MAIN_PROTOCOL if MAIN_PROTOCOL in protocols else protocols[0])
        rows = [row for row in rows if row["protocol"] == chosen]
    best = max(rows, key=lambda row: _sortable(row["kendall_tau"])) if rows else None
    if PREFERRED_ESTIMATOR in estimates:
        preferred = next((row for row in rows if row["estimator"] == PREFERRED_ESTIMATOR), None)
        if best is None or preferred is None or _sortable(preferred["kendall_tau"]) >= _sortable(
            best.get("kendall_tau_low", math.nan)
        ):
            return PREFERRED_ESTIMATOR
    return str(best["estimator"]) if best is not None else next(iter(estimates))


def _sortable(value: object) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan
    return number if math.isfinite(number) else -math.inf


# -- the ground truth's file --------------------------------------------------------------------------


def parse_accuracy(text: str, *, where: str, fix: str) -> float:
    """An accuracy read from a file: a number in [0, 1], else one line naming ``where`` and the ``fix``."""
    try:
        accuracy = float(text)
    except (TypeError, ValueError):
        accuracy = math.nan
    if not 0.0 <= accuracy <= 1.0:
        raise TaskspaceError(f"{where}: accuracy '{text}' is not a number in [0, 1]; {fix}")
    return accuracy


def read_truth_csv(path: str | os.PathLike[str], *, run: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """``truth.csv`` as one matrix of accuracies per protocol.

    Raises:
        TaskspaceError: the file is missing, has other columns, or a row whose accuracy is not a
            number in [0, 1] (one line naming the file, the line and the fix).
    """
    import numpy as np

    from taskspace.matrix import TransferabilityMatrix

    file = Path(path)
    folder = run if run is not None else file.parent
    fix = f"write it again from the measured cells with `taskspace truth {folder}`"
    if not file.is_file():
        raise TaskspaceError(f"no ground truth at '{file}'; measure it with `taskspace truth {folder}`")
    try:
        rows = list(csv.DictReader(io.StringIO(file.read_text(encoding="utf-8"))))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise TaskspaceError(f"'{file}' cannot be read ({error}); {fix}") from None
    if not rows or tuple(rows[0].keys()) != TRUTH_COLUMNS:
        raise TaskspaceError(f"'{file}' is not a taskspace truth.csv (columns {','.join(TRUTH_COLUMNS)}); {fix}")
    for number, row in enumerate(rows, start=2):
        if any(value is None or value == "" for value in row.values()):
            raise TaskspaceError(f"'{file}' line {number} is incomplete; {fix}")
        parse_accuracy(row["accuracy"], where=f"'{file}' line {number}", fix=fix)
    sources = list(dict.fromkeys(row["source"] for row in rows))
    targets = list(dict.fromkeys(row["target"] for row in rows))
    matrices: dict[str, Any] = {}
    for protocol in dict.fromkeys(row["protocol"] for row in rows):
        scores = np.full((len(sources), len(targets)), np.nan)
        for row in rows:
            if row["protocol"] == protocol:
                scores[sources.index(row["source"]), targets.index(row["target"])] = float(row["accuracy"])
        matrices[protocol] = TransferabilityMatrix(scores, tuple(sources), tuple(targets), protocol)
    return matrices


# -- the record, old and new --------------------------------------------------------------------------


def _read_record(record_file: Path, data_root: str | None) -> tuple[Any, TaskSpace, str | None, bool]:
    """The grid, space and data root recorded in ``run.json``; the last value says whether it is a
    format-1 record to upgrade."""
    from taskspace.config import GridConfig

    fix = "restore it, or start the run in another folder"
    try:
        record = read_json(record_file)
    except TaskspaceError:
        raise TaskspaceError(f"'{record_file}' is not a taskspace run record (not valid JSON); {fix}") from None
    try:
        if not isinstance(record, dict):
            raise TypeError("not a JSON object")
        grid = GridConfig(**record["grid"])
        if record.get("format", 1) == 1:
            # Format 1 named the space by the path it was read from: resolve it, and accept it only
            # when it still has the tasks and dataset the run recorded.
            space = TaskSpace.resolve(grid.space, data_root=data_root)
            if list(space.ids) != list(record["space_ids"]) or space.dataset != record["dataset"]:
                raise TaskspaceError(
                    f"'{record_file}' names its task space by the file '{grid.space}', which no longer holds "
                    f"the run's tasks; restore that file, or start the run in another folder"
                )
            return grid, space, None, True
        space = TaskSpace.from_record(record["space"])
        root = record.get("data_root")
        if root is not None and not isinstance(root, str):
            raise TypeError("data_root must be a string or null")
    except (KeyError, TypeError, ValueError) as error:
        raise TaskspaceError(
            f"'{record_file}' is not a taskspace run record ({type(error).__name__}: {error}); {fix}"
        ) from None
    if record.get("identity") != run_identity(grid, space):
        raise TaskspaceError(f"'{record_file}' does not match its own identity hash (edited by hand?); {fix}")
    return grid, space, root, False


def _upgrade_cells(run: Run) -> None:
    """Rename the cell files of a format-1 run (``<source>__<target>.json``) to their pair keys, where the
    old name is not shared by two cells, and write their ids into them."""
    ids = run.space.ids
    old_names: dict[str, list[tuple[str, str]]] = {}
    for source in ids:
        for target in ids:
            old_names.setdefault(f"{source}__{target}", []).append((source, target))
    folders: list[tuple[Path, Callable[[str, str], Path]]] = [(run.path("scores"), run.score_file)]
    truth_root = run.path("truth_cells")
    if truth_root.is_dir():
        for protocol_dir in sorted(path for path in truth_root.iterdir() if path.is_dir()):
            folders.append((protocol_dir, functools.partial(run.truth_file, protocol_dir.name)))
    for folder, new_path in folders:
        for name, pairs in old_names.items():
            old = folder / f"{name}.json"
            if len(pairs) != 1 or not old.is_file():
                continue  # an ambiguous old name is left alone: its cell is computed again
            source, target = pairs[0]
            try:
                record = read_json(old)
            except TaskspaceError:
                continue
            if isinstance(record, dict):
                record.update({"source": source, "target": target})
                write_json(new_path(source, target), record)
            old.unlink()
        runs = folder / "runs"
        for name, pairs in old_names.items():
            if len(pairs) == 1 and (runs / name).is_dir():
                os.replace(runs / name, runs / pair_key(*pairs[0]))


def _absolute_root(data_root: str | None) -> str | None:
    return str(Path(data_root).expanduser().absolute()) if data_root else None


def _refuse_inside_dataset(folder: Path, dataset: str, data_root: str | None) -> None:
    """A run folder inside the dataset's own files would add folders (classes) to it."""
    from taskspace.data import dataset_names
    from taskspace.data.roots import resolve_data_root

    if dataset in dataset_names():
        protected = [resolve_data_root(data_root) / "cifar-10-batches-py"] if dataset == "cifar10" else []
    else:
        protected = [Path(dataset)]
    for root in protected:
        root = root.expanduser().resolve()
        if folder.resolve() == root or root in folder.resolve().parents:
            raise TaskspaceError(
                f"the run folder '{folder}' is inside the dataset '{root}', and writing there would change the "
                "dataset; choose a run folder outside it"
            )


# -- the lock -----------------------------------------------------------------------------------------


@contextlib.contextmanager
def holding_lock(folder: Path, lock: Path) -> Iterator[None]:
    """Hold ``lock`` (the writer's pid and host) while writing into ``folder``; re-entrant within one process.

    Raises:
        TaskspaceError: a live process of this or another host holds it (a stale lock is taken over, and said).
    """
    key = str(folder)
    if _HELD.get(key, 0):
        _HELD[key] += 1
        try:
            yield
        finally:
            _HELD[key] -= 1
        return
    _take_lock(lock, folder)
    _HELD[key] = 1
    try:
        yield
    finally:
        _HELD[key] = 0
        with contextlib.suppress(OSError):
            if _lock_owner(lock).get("pid") == os.getpid():
                lock.unlink()

#: Locks this process holds, by run folder, with their nesting depth.
_HELD: dict[str, int] = {}


def _lock_owner(lock: Path) -> dict[str, Any]:
    try:
        owner = json.loads(lock.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return {}
    return owner if isinstance(owner, dict) else {}


def _alive(pid: object) -> bool:
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def _take_lock(lock: Path, folder: Path) -> None:
    ensure_writable_dir(folder, what="run folder")
    mine = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S")}
    text = json.dumps(mine)
    try:
        descriptor = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        owner = _lock_owner(lock)
        pid, host = owner.get("pid"), owner.get("host")
        if host not in (None, mine["host"]):
            raise TaskspaceError(
                f"'{folder}' is being written by pid {pid} on host {host} (since {owner.get('since')}); wait for "
                f"it to finish, or, if nothing runs there any more, delete '{lock}'"
            ) from None
        if _alive(pid) and pid != os.getpid():
            raise TaskspaceError(
                f"'{folder}' is being written by another taskspace process (pid {pid}, since "
                f"{owner.get('since')}); wait for it to finish or use another run folder"
            ) from None
        # Stale: its writer is gone. Take it over with an atomic replace, then check it is ours.
        staged = lock.with_name(f".{lock.name}.{os.getpid()}")
        staged.write_text(text, encoding="utf-8")
        os.replace(staged, lock)
        if _lock_owner(lock).get("pid") != os.getpid():
            raise TaskspaceError(
                f"'{folder}' was just taken by another taskspace process; wait for it to finish"
            ) from None
        what = f"pid {pid}" if pid is not None else "an unreadable lock"
        print(f"taskspace: note: took over the stale lock of {what} on '{folder}' (no longer running)",
              file=sys.stderr)
        return
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)


@lru_cache(maxsize=2)
def _dataset(name: str, data_root: str | None) -> Any:
    from taskspace.data import load_dataset

    # One read per process: worker processes keep the dataset between cells.
    return load_dataset(name, data_root=data_root)


def replace_grid(grid: Any, **changes: Any) -> Any:
    """``grid`` with ``changes``; ``train`` options are merged into the recorded ones."""
    train = {**grid.train, **changes.pop("train", {})}
    return dataclasses.replace(grid, **changes, train=train)
