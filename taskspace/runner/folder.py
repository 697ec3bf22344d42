"""A run folder's layout, its cells' keys and records, its one writer, and the dataset it reads.

:data:`LAYOUT` is the one table of a run's file names, for every kind of run; the other modules ask a
run for a path (``run.path(role)``), never join names themselves. Cell files are named by the hash of
their ids (:func:`pair_key`; the readable ids are kept inside and checked by :func:`read_cell`), so no
class name can make two cells share a file.

One writer at a time: :func:`holding_lock` holds ``run.lock`` (the writer's pid and host); a lock left
by a process that no longer runs is taken over, and said so.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

from taskspace.errors import TaskspaceError
from taskspace.io import canonical_json, ensure_writable_dir, read_record

__all__ = ["LAYOUT", "pair_key", "read_cell", "holding_lock", "cached_dataset"]

#: Where everything of a run lives, relative to its folder: the only table of its file names.
LAYOUT: dict[str, str] = {
    "record": "run.json",                    # identity: sources, targets, options, data root, versions
    "lock": "run.lock",                      # the pid and host of the process writing the run
    "zoo": "zoo",                            # zoo/<task>/: one trained source network (config, model, metrics)
    "features": "features",                  # cached forward passes, named by their content hash
    "banks": "features/banks",               # banks/<source>.{npz,json}: a source's pass over every scored image
    "scores": "scores",                      # scores/<pair key>.json: one (module, target) cell
    "truth_cells": "truth",                  # truth/<protocol>/<pair key>.json (+ runs/<pair key>/ when trained)
    "matrix": "matrix",                      # matrix.{csv,json,npz}: every estimator's matrix
    "score_seconds": "score_seconds.json",   # measured cost of each estimator and of the forward passes
    "truth": "truth.csv",                    # the measured ground truth, one row per cell and protocol
    "imported": "truth_imported.csv",        # ground truth imported from elsewhere, as given
    "verdict": "evaluation.csv",             # how well each estimator predicts each ground truth
    "sizes": "modules.json",                 # each module's width, depth and parameters up to its layer
    "recommendations": "recommendations",    # recommendations/<target>__<estimator>.json
    "structure_graph": "structure/graph",    # the task graph: graph.graphml, graph.gexf, graph.json
    "structure_record": "structure/structure.json",  # communities, arborescence, group recovery
    "similarity": "similarity",              # module similarity matrices, cached by their inputs
    "report": "report",                      # report.html, report.md, figures/
}


def pair_key(module: str, target: str) -> str:
    """A file-name-safe key of one (module, target) cell: distinct pairs never share one, whatever their ids."""
    return hashlib.sha256(canonical_json([module, target]).encode()).hexdigest()[:24]


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
