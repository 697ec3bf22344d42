"""A run made from files: measured results and estimator values brought from elsewhere, no networks.

``taskspace import RUN --truth truth.csv --scores scores.csv`` checks both files whole, then writes the
run: ``run.json`` (its identity: the files' SHA-256, not their paths), ``truth.csv`` and the matrix set.
Its rows are the files' sources (``source:layer`` where a layer is given), its columns their targets;
a cell never measured is NaN, and every analysis says how many cells it used. ``evaluate``,
``recommend``, ``structure`` and ``report`` read it as they read any run's results.
"""

from __future__ import annotations

import os
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
    sha256_of_file,
    write_json,
    write_text,
)
from taskspace.runner.folder import LAYOUT, holding_lock, record_kind
from taskspace.runner.results import (
    RunResults,
    csv_text,
    write_estimates,
)

__all__ = ["ImportedRun", "IMPORTED_KIND", "is_imported_run"]

#: The ``kind`` of an imported run's ``run.json``.
IMPORTED_KIND = "imported"
IMPORTED_FORMAT = 1
_TRUTH_COLUMNS = ("source", "target", "protocol", "accuracy")


def is_imported_run(folder: str | os.PathLike[str]) -> bool:
    """Whether ``folder`` holds a run made with ``taskspace import``."""
    return record_kind(folder) == IMPORTED_KIND


@dataclass(frozen=True)
class ImportedRun(RunResults):
    """A run folder holding imported results (see the module's docstring)."""

    folder: Path
    modules: tuple[str, ...]
    target_ids: tuple[str, ...]
    files: dict[str, str]
    percent: bool = False

    #: The record's kind (see :mod:`taskspace.runner.record`).
    kind: ClassVar[str] = IMPORTED_KIND

    @property
    def identity(self) -> str:
        """Hash of what decides the run's numbers: the imported files' contents and how accuracies read."""
        document = {"files": self.files, "percent": self.percent}
        return content_hash(document)

    @classmethod
    def create(cls, folder: str | os.PathLike[str], *, truth: str | os.PathLike[str] | None = None,
               scores: str | os.PathLike[str] | None = None, percent: bool = False) -> ImportedRun:
        """Import ``truth`` and/or ``scores`` into a new run in ``folder`` (or reopen the same import).

        Everything is checked before anything is written: both files whole, and the folder (empty, or
        holding this same import).

        Raises:
            TaskspaceError: a bad file (one line naming it, the line and the fix), or a folder holding
                another run.
        """
        from taskspace.history import read_history

        history = read_history(truth, scores, percent=percent)
        files = {role: sha256_of_file(path) for role, path in (("truth", truth), ("scores", scores))
                 if path is not None}
        path = Path(folder).expanduser().absolute()
        run = cls(path, history.sources, history.targets, files, percent)
        if (path / LAYOUT["record"]).is_file():
            if not is_imported_run(path):
                raise TaskspaceError(f"'{folder}' holds another kind of run; import into a new folder")
            existing = cls.open(path)
            if existing.identity != run.identity:
                raise TaskspaceError(f"'{folder}' holds another import (other files); import into a new folder")
            return existing
        if path.exists() and not path.is_dir():
            raise TaskspaceError(f"'{folder}' is a file, not a folder; choose a folder for the run")
        ensure_writable_dir(path, what="run folder")
        with holding_lock(path, path / LAYOUT["lock"]):
            if history.truths:
                rows = [(source, target, protocol, repr(float(matrix[i, j])))
                        for protocol, matrix in history.truths.items()
                        for i, source in enumerate(history.sources) for j, target in enumerate(history.targets)
                        if np.isfinite(matrix[i, j])]
                write_text(run.path("truth"), csv_text(_TRUTH_COLUMNS, rows))
            if history.evidence:
                from taskspace.matrix import TransferabilityMatrix

                write_estimates(run.path("matrix"), [
                    TransferabilityMatrix(matrix, history.sources, history.targets, name,
                                          provenance={"imported": files.get("scores")})
                    for name, matrix in history.evidence.items()], layered=False)
            write_json(run.path("record"), {
                "kind": IMPORTED_KIND, "format": IMPORTED_FORMAT, "identity": run.identity,
                "sources": list(run.modules), "targets": list(run.target_ids), "files": files,
                "percent": percent, "taskspace_version": __version__})
        return run

    @classmethod
    def open(cls, folder: str | os.PathLike[str]) -> ImportedRun:
        """Reopen an imported run.

        Raises:
            TaskspaceError: no imported run there, or a damaged ``run.json``.
        """
        path = Path(folder).expanduser().absolute()
        if not is_imported_run(path):
            raise TaskspaceError(f"'{folder}' holds no imported run; make one with `taskspace import {folder} "
                                 "--truth FILE --scores FILE`")
        record = read_json(path / LAYOUT["record"])
        try:
            run = cls(path, tuple(record["sources"]), tuple(record["targets"]), dict(record["files"]),
                      bool(record.get("percent", False)))
        except (KeyError, TypeError) as error:
            raise TaskspaceError(f"'{path / LAYOUT['record']}' is not a taskspace run record ({error}); "
                                 "import the files again into a new folder") from None
        if record.get("identity") != run.identity:
            raise TaskspaceError(f"'{path / LAYOUT['record']}' does not match its own identity hash (edited by "
                                 "hand?); import the files again into a new folder")
        return run

    # -- results -------------------------------------------------------------------------------------

    def estimates(self) -> dict[str, Any]:
        """The imported estimators' matrices; empty when only a truth was imported."""
        return super().estimates() if self.has_estimates() else {}

    def truths(self) -> dict[str, Any]:
        """Protocol -> matrix of accuracies over every module and target (NaN where not measured)."""
        from taskspace.history import read_history
        from taskspace.matrix import TransferabilityMatrix

        if not self.path("truth").is_file():
            return {}
        history = read_history(self.path("truth"))
        matrices = {}
        for protocol, values in history.truths.items():
            full = np.full((len(self.modules), len(self.target_ids)), np.nan)
            for i, source in enumerate(history.sources):
                for j, target in enumerate(history.targets):
                    full[self.modules.index(source), self.target_ids.index(target)] = values[i, j]
            matrices[protocol] = TransferabilityMatrix(full, self.modules, self.target_ids, protocol)
        return matrices

    def module_sizes(self) -> dict[str, dict[str, Any]]:
        return {}
