"""A run folder's layout, its cells' keys and records, its one writer, and the dataset it reads.

:data:`LAYOUT` is the one table of a run's file names, for every kind of run; the other modules ask a
run for a path (``run.path(role)``), never join names themselves. Cell files are named by the hash of
their ids (:func:`pair_key`; the readable ids are kept inside and checked by :func:`read_cell`), so no
class name can make two cells share a file.

One writer at a time: :func:`holding_lock` holds ``run.lock``, a kernel lock (``filelock``) that the
operating system releases when its process ends, with the writer's pid and host beside it.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

import filelock

from taskspace.errors import TaskspaceError
from taskspace.io import content_hash, ensure_writable_dir, read_json, read_record, write_json

__all__ = ["LAYOUT", "RUN_KINDS", "pair_key", "read_cell", "record_kind", "holding_lock", "cached_dataset"]

#: Where everything of a run lives, relative to its folder: the only table of its file names.
LAYOUT: dict[str, str] = {
    "record": "run.json",                    # identity: sources, targets, options, data root, versions
    "lock": "run.lock",                      # the writer's kernel lock; run.lock.json: its pid, host and start
    "zoo": "zoo",                            # zoo/<task>/: one trained source network (config, model, metrics)
    "features": "features",                  # cached forward passes, named by their content hash
    "banks": "features/banks",               # banks/<source>.json: seconds of a source's passes over every scored image
    "scores": "scores",                      # scores/<pair key>.json: one (module, target) cell
    "truth_cells": "truth",                  # truth/<protocol>/<pair key>.json (+ runs/<pair key>/ when trained)
    "matrix": "matrix",                      # matrix.{csv,json,npz}: every estimator's matrix
    "score_seconds": "score_seconds.json",   # measured cost of each estimator and of the forward passes
    "placement": "ray_placement.json",        # which Ray node ran each cell of the last stage run on Ray
    "truth": "truth.csv",                    # the measured ground truth, one row per cell and protocol
    "imported": "truth_imported.csv",        # ground truth imported from elsewhere, as given
    "verdict": "evaluation.csv",             # how well each estimator predicts each ground truth
    "verdict_inputs": "evaluation.json",     # the digest of the results the verdict was computed from
    "sizes": "modules.json",                 # each module's width, depth and parameters up to its layer
    "recommendations": "recommendations",    # recommendations/<target>__<estimator>.json
    "structure_graph": "structure/graph",    # the task graph: graph.graphml, graph.gexf, graph.json
    "structure_record": "structure/structure.json",  # communities, arborescence, group recovery
    "similarity": "similarity",              # module similarity matrices, cached by their inputs
    "report": "report",                      # report.html, report.md, figures/
    "depth": "depth",                        # a trained run's networks at every module boundary (a zoo run)
}


#: The kinds of run a record can name: a task space whose zoo the run trains, a zoo of files, an import.
RUN_KINDS = ("trained", "zoo", "imported")


def record_kind(folder: str | os.PathLike[str]) -> str | None:
    """The kind of run ``folder`` holds (one of :data:`RUN_KINDS`), read from its ``run.json`` alone (no
    source resolved, no file hashed); None when it holds no readable record of a known kind. A record
    without ``kind`` is a trained run's (formats 1 and 2)."""
    record_file = Path(folder).expanduser() / LAYOUT["record"]
    if not record_file.is_file():
        return None
    try:
        record = read_json(record_file)
    except TaskspaceError:
        return None
    if not isinstance(record, dict):
        return None
    kind = record.get("kind", "trained")
    return kind if kind in RUN_KINDS else None


def pair_key(module: str, target: str) -> str:
    """A file-name-safe key of one (module, target) cell: distinct pairs never share one, whatever their ids."""
    return content_hash([module, target], 24)


def read_cell(path: Path, **ids: str) -> dict[str, Any] | None:
    """A cell's record if it is there, readable and about ``ids`` (``source=``/``module=`` and ``target=``,
    as the run's kind names its rows); else None, and the cell is computed again."""
    return read_record(path, **ids)


@lru_cache(maxsize=2)
def cached_dataset(name: str, data_root: str | None) -> Any:
    """The dataset ``name`` under ``data_root``, read once per process (worker processes keep it between cells)."""
    from taskspace.data import load_dataset

    return load_dataset(name, data_root=data_root)


# -- the lock -----------------------------------------------------------------------------------------


@contextlib.contextmanager
def holding_lock(folder: Path, lock: Path) -> Iterator[None]:
    """Hold ``lock`` while writing into ``folder``; re-entrant within one process.

    The lock is the kernel's (``filelock``: released by the operating system when its process ends, so
    no lock is ever left stale and none is ever taken over); beside it, ``<lock>.json`` names the
    writer's pid, host and start, for the message another process gets.

    Raises:
        TaskspaceError: another process holds it (one line naming it, with what to do).
    """
    key = str(folder)
    if key in _HELD:
        _HELD[key][1] += 1
        try:
            yield
        finally:
            _HELD[key][1] -= 1
        return
    ensure_writable_dir(folder, what="run folder")
    kernel = filelock.FileLock(str(lock), timeout=0)
    owner_file = lock.with_name(lock.name + ".json")
    try:
        kernel.acquire()
    except filelock.Timeout:
        owner = _lock_owner(owner_file)
        pid, host = owner.get("pid"), owner.get("host")
        who = f"pid {pid} on host {host}" if host not in (None, socket.gethostname()) else f"pid {pid}"
        raise TaskspaceError(
            f"'{folder}' is being written by another process ({who}, since {owner.get('since', 'a moment ago')}); "
            "wait for it to finish or use another run folder"
        ) from None
    _HELD[key] = [kernel, 1]
    try:
        write_json(owner_file, {"pid": os.getpid(), "host": socket.gethostname(),
                                "since": time.strftime("%Y-%m-%d %H:%M:%S")})
        yield
    finally:
        del _HELD[key]
        with contextlib.suppress(OSError):
            owner_file.unlink()
        kernel.release()

#: Locks this process holds, by run folder: the kernel lock and the nesting depth.
_HELD: dict[str, list[Any]] = {}


def _lock_owner(owner_file: Path) -> dict[str, Any]:
    try:
        owner = json.loads(owner_file.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return {}
    return owner if isinstance(owner, dict) else {}
