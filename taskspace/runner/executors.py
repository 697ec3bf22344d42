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

from taskspace.errors import ConfigError, TaskspaceError
from taskspace.registry import Registry
from taskspace.runner.cells import Cell
from taskspace.runner.run import Run

__all__ = ["EXECUTORS", "list_executors", "run_cells", "check_execution"]

Runner = Callable[[Sequence[Cell], Run, int, int | None, Callable[[Cell], None]], None]
EXECUTORS: Registry[Runner] = Registry("executor")


def list_executors() -> list[str]:
    return EXECUTORS.names()


def run_cells(
    cells: Sequence[Cell],
    run: Run,
    *,
    executor: str = "serial",
    workers: int | None = None,
    threads: int | None = None,
    on_done: Callable[[Cell], None] | None = None,
) -> int:
    """Run every cell that is not done yet; returns how many ran.

    Args:
        cells: independent cells of one stage.
        run: the run.
        executor: ``serial``, ``process`` or ``ray``.
        workers: parallel workers (default: the CPU count); ignored by ``serial``.
        threads: torch threads of every cell (default: all cores for ``serial``, the cores split
            between workers otherwise). Equal values give bit-identical results across executors.
        on_done: called after each finished cell.
    """
    check_execution(executor, workers, threads)
    pending = [cell for cell in cells if not cell.is_done(run)]
    if not pending:
        return 0
    runner = EXECUTORS.get(executor)
    count = workers if workers is not None else max(1, (os.cpu_count() or 1))
    runner(pending, run, count, threads, on_done or (lambda cell: None))
    return len(pending)


def check_execution(executor: str, workers: int | None, threads: int | None) -> None:
    """Refuse an unknown executor or a worker or thread count below 1, before any work."""
    EXECUTORS.get(executor)
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ConfigError(f"workers must be an integer >= 1, got {workers!r}; e.g. --workers 2")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ConfigError(f"threads must be an integer >= 1, got {threads!r}; e.g. --threads 1")


def _run_one(cell: Cell, run: Run, threads: int | None = None) -> str:
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
    cells: Sequence[Cell], run: Run, workers: int, threads: int | None, on_done: Callable[[Cell], None]
) -> None:
    for cell in cells:
        _run_one(cell, run, threads)
        on_done(cell)


def _threads_per_worker(workers: int) -> int:
    return max(1, (os.cpu_count() or 1) // workers)


@EXECUTORS.register("process")
def _process_pool(
    cells: Sequence[Cell], run: Run, workers: int, threads: int | None, on_done: Callable[[Cell], None]
) -> None:
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
    cells: Sequence[Cell], run: Run, workers: int, threads: int | None, on_done: Callable[[Cell], None]
) -> None:
    try:
        import ray
    except ImportError:
        raise TaskspaceError(
            "the ray executor needs Ray; install it with `pip install 'taskspace[ray]'` or use --executor process"
        ) from None
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(sys.path)}})
    try:
        remote = ray.remote(num_cpus=1)(_run_one)
        per_cell = threads or (_threads_per_worker(workers) if started_here else 1)
        pending = {remote.remote(cell, run, per_cell): cell for cell in cells}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for reference in ready:
                ray.get(reference)
                on_done(pending.pop(reference))
    finally:
        if started_here:
            ray.shutdown()
