"""Executors run a list of independent cells: serially, in a local process pool, or on Ray.

Cells are independent within a stage and derive their own seeds. Results are bit-identical across
executors when every cell runs with the same number of torch threads (``threads``): training sums in
a different order with another thread count, which moves scores by about 1e-4 relative. Without
``threads``, worker processes split the machine's cores between them instead of oversubscribing them.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

from taskspace.errors import ConfigError, TaskspaceError
from taskspace.io import write_json
from taskspace.registry import Registry
from taskspace.runner.cells import Cell
from taskspace.runner.handles import TrainedRun

__all__ = ["EXECUTORS", "list_executors", "run_cells", "check_execution"]

Runner = Callable[[Sequence[Cell], TrainedRun, int, int | None, Callable[[Cell], None], str | None], None]
EXECUTORS: Registry[Runner] = Registry("executor")


def list_executors() -> list[str]:
    return EXECUTORS.names()


def run_cells(
    cells: Sequence[Cell],
    run: Any,
    *,
    executor: str = "serial",
    workers: int | None = None,
    threads: int | None = None,
    on_done: Callable[[Cell], None] | None = None,
    address: str | None = None,
) -> int:
    """Run every cell that is not done yet; returns how many ran.

    Args:
        cells: independent cells of one stage.
        run: the run (a task space's, or a zoo run for its scoring).
        executor: ``serial``, ``process`` or ``ray``.
        workers: parallel workers (default: the CPU count); ignored by ``serial``.
        threads: torch threads of every cell (default: all cores for ``serial``, the cores split
            between workers otherwise). Equal values give bit-identical results across executors.
        on_done: called after each finished cell.
        address: ``ray`` only: the address of an existing Ray cluster to run on (default:
            ``$RAY_ADDRESS``, else a Ray started on this machine for the stage).
    """
    check_execution(executor, workers, threads)
    pending = [cell for cell in cells if not cell.is_done(run)]
    if not pending:
        return 0
    runner = EXECUTORS.get(executor)
    count = workers if workers is not None else max(1, (os.cpu_count() or 1))
    runner(pending, run, count, threads, on_done or (lambda cell: None), address)
    return len(pending)


def check_execution(executor: str, workers: int | None, threads: int | None) -> None:
    """Refuse an unknown executor or a worker or thread count below 1, before any work."""
    EXECUTORS.get(executor)
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ConfigError(f"workers must be an integer >= 1, got {workers!r}; e.g. --workers 2")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ConfigError(f"threads must be an integer >= 1, got {threads!r}; e.g. --threads 1")


def _run_one(cell: Cell, run: TrainedRun, threads: int | None = None) -> str:
    import torch

    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        cell.run(run)
    finally:
        torch.set_num_threads(previous)
    return cell.name


@EXECUTORS.register("serial")
def _serial(
    cells: Sequence[Cell], run: TrainedRun, workers: int, threads: int | None, on_done: Callable[[Cell], None],
    address: str | None,
) -> None:
    """Cells one after another in this process (all cores for each, unless ``threads`` says otherwise)."""
    for cell in cells:
        _run_one(cell, run, threads)
        on_done(cell)


def _threads_per_worker(workers: int) -> int:
    return max(1, (os.cpu_count() or 1) // workers)


@EXECUTORS.register("process")
def _process_pool(
    cells: Sequence[Cell], run: TrainedRun, workers: int, threads: int | None, on_done: Callable[[Cell], None],
    address: str | None,
) -> None:
    """Cells in a local pool of worker processes (spawned), the cores split between them."""
    import multiprocessing

    # "spawn": a forked copy of a process that already started torch's thread pools can deadlock.
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        per_cell = threads or _threads_per_worker(workers)
        futures = {pool.submit(_run_one, cell, run, per_cell): cell for cell in cells}
        for future in as_completed(futures):
            future.result()
            on_done(futures[future])


@EXECUTORS.register("ray")
def _ray(
    cells: Sequence[Cell], run: TrainedRun, workers: int, threads: int | None, on_done: Callable[[Cell], None],
    address: str | None,
) -> None:
    """Cells on Ray: an existing cluster (``address`` or ``$RAY_ADDRESS``) or one started here.

    Workers need not see the run folder: each cell's inputs go to the cluster's object store (the
    dataset and each feature bank once per stage), workers return results, and this process alone
    writes them into the run. A task whose worker dies is retried by Ray.
    """
    try:
        import ray
    except ImportError:
        raise TaskspaceError(
            "the ray executor needs Ray; install it with `pip install 'taskspace[ray]'` or use --executor process"
        ) from None
    address = address or os.environ.get("RAY_ADDRESS") or None
    started_here = not ray.is_initialized()
    if started_here:
        _connect(ray, address, workers)
    try:
        shared: dict[str, Any] = {}

        def share(key: str, make: Callable[[], Any]) -> Any:
            if key not in shared:
                shared[key] = ray.put(make())
            return shared[key]

        remote = ray.remote(num_cpus=1, max_retries=_RETRIES, scheduling_strategy="SPREAD")(_compute)
        per_cell = threads or (_threads_per_worker(workers) if started_here and address is None else 1)
        pending = {remote.remote(cell, cell.prepare(run, share), per_cell): cell for cell in cells}
        placement: dict[str, str] = {}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for reference in ready:
                cell = pending.pop(reference)
                node, result = ray.get(reference)
                cell.commit(run, result)
                placement[cell.name] = node
                on_done(cell)
        if placement:
            write_json(run.path("placement"), {"nodes": sorted(set(placement.values())), "cells": placement})
    finally:
        if started_here:
            ray.shutdown()


#: Times Ray runs a cell again whose worker died.
_RETRIES = 3


def _connect(ray: Any, address: str | None, workers: int) -> None:
    if address is None:
        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(sys.path)}})
        return
    problem = _unreachable(address)
    if problem is not None:
        raise TaskspaceError(
            f"cannot join the Ray cluster at '{address}' ({problem}); check --ray-address (or RAY_ADDRESS) and "
            "that `ray status` shows the cluster"
        )
    try:
        ray.init(address=address, log_to_driver=False)
    except (ConnectionError, RuntimeError) as error:
        detail = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
        raise TaskspaceError(
            f"cannot join the Ray cluster at '{address}' ({detail}); check --ray-address (or RAY_ADDRESS) and "
            "that `ray status` shows the cluster"
        ) from None


def _unreachable(address: str) -> str | None:
    """Why nothing answers at ``host:port`` (Ray would retry for minutes), or None; ``auto`` is not checked."""
    import socket

    target = address.removeprefix("ray://")
    host, _, port = target.rpartition(":")
    if address == "auto" or not host:
        return None
    if not port.isdigit():
        return f"'{port}' is not a port number"
    try:
        with socket.create_connection((host, int(port)), timeout=_CONNECT_TIMEOUT_S):
            return None
    except OSError as error:
        return error.strerror or type(error).__name__


#: Seconds to wait for a cluster's address to answer.
_CONNECT_TIMEOUT_S = 10


def _compute(cell: Cell, inputs: dict[str, Any], threads: int) -> Any:
    """The Ray node's id and a cell's result on it, from its inputs with the shared ones fetched from the
    object store."""
    import ray
    import torch

    resolved = {key: ray.get(value) if isinstance(value, ray.ObjectRef) else value for key, value in inputs.items()}
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return ray.get_runtime_context().get_node_id(), cell.compute(resolved)
    finally:
        torch.set_num_threads(previous)
