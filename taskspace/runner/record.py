"""Every shape of ``run.json`` on disk, read by one function, and the one opener of any run folder.

A run folder holds one of four record shapes, each with its own identity (unchanged, so every existing
folder reopens with the hash it was made with):

========================  ============================================  ==================================
shape                     recognised by                                 opened as
========================  ============================================  ==================================
trained, format 1         no ``kind``, no ``format``                    :class:`~taskspace.runner.run.Run`
trained, format 2         ``format: 2``, no ``kind``                    :class:`~taskspace.runner.run.Run`
zoo                       ``kind: "zoo"``                               :class:`~taskspace.zoo.run.ZooRun`
imported                  ``kind: "imported"``                          :class:`~taskspace.runner.imported.ImportedRun`
========================  ============================================  ==================================

:func:`record_kind` tells the kind from the record alone (no source is resolved, no file hashed);
:func:`open_any_run` reopens the folder as its kind, every command that reads a run goes through it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from taskspace.errors import TaskspaceError
from taskspace.io import read_json
from taskspace.runner.folder import LAYOUT, RUN_KINDS, record_kind

if TYPE_CHECKING:
    from typing import TypeAlias

    from taskspace.runner.imported import ImportedRun
    from taskspace.runner.run import Run
    from taskspace.zoo.run import ZooRun

    #: A run of any kind, as :func:`open_any_run` returns it.
    AnyRun: TypeAlias = Run | ZooRun | ImportedRun

__all__ = ["RUN_KINDS", "record_kind", "open_any_run"]

def open_any_run(folder: str | os.PathLike[str], *, data_root: str | None = None) -> AnyRun:
    """Reopen the run in ``folder`` as the kind its record names, with its recorded identity.

    Args:
        folder: a run folder made by ``taskspace matrix``, ``taskspace truth`` or ``taskspace import``.
        data_root: where the dataset lives now; default: the one recorded with the run.

    Raises:
        TaskspaceError: no run there, a record of an unknown kind, or a damaged one (one line, with the fix).
    """
    from taskspace.runner.imported import ImportedRun
    from taskspace.runner.run import Run
    from taskspace.zoo.run import ZooRun

    kind = record_kind(folder)
    if kind == "zoo":
        return ZooRun.open(folder, data_root=data_root)
    if kind == "imported":
        return ImportedRun.open(folder)
    record_file = Path(folder).expanduser() / LAYOUT["record"]
    if kind is None and record_file.is_file():
        named = _named_kind(record_file)
        if named is not None:
            raise TaskspaceError(f"'{folder}' holds a run of kind '{named}', which this version of taskspace does "
                                 f"not know (kinds: {', '.join(RUN_KINDS)}); open it with the version that made it")
    return Run.open(folder, data_root=data_root)  # a trained run, or the one-line reason there is none


def _named_kind(record_file: Path) -> Any:
    try:
        record = read_json(record_file)
    except TaskspaceError:
        return None
    return record.get("kind") if isinstance(record, dict) else None
