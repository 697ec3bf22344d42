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

import dataclasses
import functools
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from taskspace._version import __version__
from taskspace.errors import TaskspaceError
from taskspace.io import (
    content_hash,
    ensure_writable_dir,
    read_json,
    write_json,
    write_text,
)
from taskspace.runner.folder import LAYOUT, cached_dataset, pair_key, read_cell, record_kind
from taskspace.runner.results import (
    MAIN_PROTOCOL,
    PREFERRED_ESTIMATOR,
    TRUTH_COLUMNS,
    VERDICT_COLUMNS,
    RunResults,
    choose_estimator,
    choose_protocol,
    layered_truth_csv_text,
    merge_imports,
    parse_accuracy,
    read_imported_truth,
    read_truth_csv,
    truth_csv_text,
    write_estimates,
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
    "open_run",
    "parse_accuracy",
]

#: Version of ``run.json``; records without one (format 1) name the space by path and are upgraded.
RUN_FORMAT = 2

@dataclass(frozen=True)
class Run(RunResults):
    """A run folder with its grid, its resolved task space and its data root (picklable: it travels to
    worker processes).

    Build one with :meth:`open` (an existing run) or :meth:`create` (a new one, or the same one again).

    Attributes:
        folder: the run folder, absolute.
        grid: the grid options (zoo training, score samples, ground-truth settings, seed).
        space: the task space, resolved once.
        data_root: where the dataset's files are; ``None`` = ``$TASKSPACE_DATA``.
    """

    #: The record's kind (see :mod:`taskspace.runner.record`): a run that trains its task space's zoo.
    kind: ClassVar[str] = "trained"

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
        if record_kind(path) not in ("trained", None):
            raise TaskspaceError(f"'{folder}' holds a {record_kind(path)} run, not a task space's; reopen it with "
                                 "taskspace.runner.open_any_run, which opens every kind")
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

    def source_dir(self, task_id: str) -> Path:
        """The training folder of the zoo's network for ``task_id``."""
        return self.path("zoo", self.space.task(task_id).id)

    def checkpoint(self, task_id: str) -> Path:
        from taskspace.training.run import MODEL_FILE

        return self.source_dir(task_id) / MODEL_FILE

    @property
    def modules(self) -> tuple[str, ...]:
        """The matrices' rows: one module per trained source, named by its task."""
        return tuple(self.space.ids)

    @property
    def target_ids(self) -> tuple[str, ...]:
        """The matrices' columns: the space's tasks."""
        return tuple(self.space.ids)

    def module_sizes(self) -> dict[str, dict[str, Any]]:
        """Each module's width and parameters (``modules.json``), where the run recorded them; else empty."""
        path = self.path("sizes")
        return dict(read_json(path)) if path.is_file() else {}

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
        return self.path("banks", f"{self.space.task(source).id}.json")

    def read_cell(self, path: Path, source: str, target: str) -> dict[str, Any] | None:
        """A cell's record if it is there, readable and about (source, target); else None (computed again)."""
        return read_cell(path, source=source, target=target)

    # -- data ----------------------------------------------------------------------------------------

    @property
    def forward_device(self) -> str:
        """Where the score and probe stages run their forward passes: the zoo's training device
        (``auto`` resolved; ``cuda`` without a GPU is an error naming the fix)."""
        from taskspace.training.run import resolve_device

        return str(resolve_device(str(self.grid.train.get("device", "cpu"))))

    def dataset(self) -> Any:
        """The run's dataset (read once per process)."""
        return cached_dataset(self.space.dataset, self.data_root)

    def splits(self, task: str | Task) -> Any:
        """Train, validation and test splits of a task (of the space, or any other over the dataset's
        classes) as the zoo's networks would use them."""
        if isinstance(task, str):
            task = self.space.task(task) if task in self.space.ids else Task.parse(
                task, class_names=self.dataset().class_names)
        config = self.grid.source_config(task.id, self.space.dataset)
        return task.select(self.dataset(), validation_fraction=config.validation_fraction, seed=config.seed)

    # -- results (the rest: :class:`~taskspace.runner.results.RunResults`) ---------------------------

    def write_estimates(self, matrices: Sequence[Any]) -> None:
        write_estimates(self.path("matrix"), matrices, layered=False)

    def truths(self) -> dict[str, Any]:
        """Protocol -> matrix of accuracies, measured here or imported (``truth.csv``), over every source and
        target of the space (NaN where a cell was not measured); empty when none was."""
        from taskspace.matrix import TransferabilityMatrix

        path = self.path("truth")
        if not path.is_file():
            return {}
        ids = self.space.ids
        matrices = {}
        for protocol, read in read_truth_csv(path, run=self.folder).items():
            unknown = [task for task in (*read.sources, *read.targets) if task not in ids]
            if unknown:
                raise TaskspaceError(f"'{path}' names '{unknown[0]}', which is not a task of the run; write it again "
                                     f"from the measured cells with `taskspace truth {self.folder}`")
            scores = np.full((len(ids), len(ids)), np.nan)
            rows, columns = [ids.index(task) for task in read.sources], [ids.index(task) for task in read.targets]
            scores[np.ix_(rows, columns)] = read.scores
            matrices[protocol] = TransferabilityMatrix(scores, ids, ids, protocol)
        return matrices

    def write_truth(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Write ``truth.csv`` (columns :data:`TRUTH_COLUMNS`)."""
        write_text(self.path("truth"), truth_csv_text(rows))

    def measured_rows(self, first: Sequence[str] = ()) -> list[dict[str, Any]]:
        """Every truth cell measured here (protocols ``first`` first, in that order, then the others by name),
        then every imported row (an imported cell replaces a measured one): the rows of ``truth.csv``."""
        folder = self.path("truth_cells")
        found = sorted(path.name for path in folder.iterdir() if path.is_dir()) if folder.is_dir() else []
        rows: dict[tuple[str, str, str], dict[str, Any]] = {}
        for protocol in [*dict.fromkeys(name for name in first if name in found),
                         *(name for name in found if name not in first)]:
            for source in self.space.ids:
                for target in self.space.ids:
                    record = self.read_cell(self.truth_file(protocol, source, target), source, target)
                    if record is not None:
                        rows[(source, target, protocol)] = {
                            "source": source, "target": target, "protocol": protocol,
                            "accuracy": float(record["accuracy"]), "diagonal": source == target,
                            "seconds": float(record.get("seconds", math.nan))}
        for row in self._imported_rows():
            rows[(row["source"], row["target"], row["protocol"])] = {
                **{key: row[key] for key in ("source", "target", "protocol", "accuracy")},
                "diagonal": row["source"] == row["target"]}
        return list(rows.values())

    def import_truth(self, path: str | os.PathLike[str]) -> dict[str, Any]:
        """Add measured results from a CSV (``source,target,protocol,accuracy``; sources and targets are the
        space's tasks). Imports accumulate as on every kind of run (see
        :func:`~taskspace.runner.results.merge_imports`, whose summary this returns); ``truth.csv`` is
        written again with the measured cells and every import."""
        rows = self._read_imported(path, fix=None)
        merged, summary = merge_imports(self._imported_rows(), rows)
        with self.writing():
            write_text(self.path("imported"), layered_truth_csv_text(merged))
            self.write_truth(self.measured_rows())
        return summary

    def _imported_rows(self) -> list[dict[str, Any]]:
        path = self.path("imported")
        return self._read_imported(path) if path.is_file() else []

    def _read_imported(self, path: str | os.PathLike[str], *, fix: str | None = "") -> list[dict[str, Any]]:
        """Rows of an imported truth file, checked against the space's tasks (as sources and targets)."""
        return read_imported_truth(
            path, layers={task: ("",) for task in self.space.ids}, targets=self.space.ids,
            fix=f"import it again with `taskspace truth {self.folder} --import FILE`" if fix == "" else fix)

    # -- stages --------------------------------------------------------------------------------------

    def train_zoo(self, **execution: Any) -> float:
        """Train every source network that is missing; see :func:`taskspace.runner.grid.train_zoo`."""
        from taskspace.runner.grid import train_zoo

        return train_zoo(self, **execution)

    def score(self, estimators: Sequence[str], **execution: Any) -> dict[str, Any]:
        """Score every source on every target; see :func:`taskspace.runner.grid.compute_matrix`."""
        from taskspace.runner.grid import compute_matrix

        return compute_matrix(self, estimators=estimators, **execution)

    def measure(self, protocols: Sequence[str], *, targets: Sequence[str] | None = None,
                **execution: Any) -> list[dict[str, Any]]:
        """Measure the ground truth (of every target, or of ``targets``); see
        :func:`taskspace.runner.grid.compute_truth`."""
        from taskspace.runner.grid import compute_truth

        return compute_truth(self, protocols=protocols, targets=targets, **execution)


def run_identity(grid: Any, space: TaskSpace) -> str:
    """Hash of the grid options (but the space's name) and the task space's content."""
    document = {"grid": grid.identity_dict(), "space": space.to_record()}
    return content_hash(document)


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


def replace_grid(grid: Any, **changes: Any) -> Any:
    """``grid`` with ``changes``; ``train`` options are merged into the recorded ones."""
    train = {**grid.train, **changes.pop("train", {})}
    return dataclasses.replace(grid, **changes, train=train)


def open_run(run_dir: str | Path, grid: Any | None, *, data_root: str | None = None) -> Run:
    """Create or reopen a run folder; ``grid=None`` reopens with the recorded config (see :class:`Run`)."""
    if grid is None:
        return Run.open(run_dir, data_root=data_root)
    return Run.create(run_dir, grid, data_root=data_root)
