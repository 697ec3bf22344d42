"""The scoring stage of the default space on a two-node Ray cluster against the local process pool.

    TASKSPACE_DATA=../shared/data python benchmarks/ray_cluster.py

Trains the default space's zoo once (10 epochs, seed 0, as transfer_grid.py does; reused from
benchmarks/work/grid-default when it is there), then scores every source on every target with every
estimator from scratch (forward passes into the feature banks, then the score cells: one per source, 15;
results/ray_cluster.json was measured with one per (source, target), 225) in a fresh copy
of the run for each way of running the cells, in one process and one run of this script:

- ``process``: the local process pool, 2 workers of 1 torch thread;
- ``ray, 2 nodes``: a Ray cluster of two ``ray start`` nodes of 1 CPU each on this machine, joined with
  ``--ray-address`` (cells prepared by the driver, inputs through the object store, results written by
  the driver alone).

Both run with 1 torch thread per cell, so their matrices must be equal bit for bit; the script checks it.
Writes results/ray_cluster.json and prints a table.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path

from _common import WORK, print_table, require_cifar, save

from taskspace.config import GridConfig
from taskspace.runner import Run
from taskspace.runner.local_cluster import local_ray_cluster
from taskspace.scoring import list_estimators


def scoring_seconds(source: Run, folder: Path, **execution: object) -> tuple[float, dict]:
    """Wall time of the scoring stage in a copy of ``source`` holding only its zoo."""
    shutil.rmtree(folder, ignore_errors=True)
    run = Run.create(folder, source.grid, space=source.space, data_root=source.data_root)
    shutil.copytree(source.path("zoo"), run.path("zoo"), dirs_exist_ok=True)
    started = time.perf_counter()
    matrices = run.score(list_estimators(), threads=1, **execution)
    return time.perf_counter() - started, matrices


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=WORK / "grid-default", help="a run of the default space")
    parser.add_argument("--workers", type=int, default=2)
    arguments = parser.parse_args()
    data_root = require_cifar()
    grid = GridConfig(space="default", train={"epochs": 10, "seed": 0}, seed=0, finetune_epochs=2)
    source = Run.create(arguments.run, grid, data_root=data_root)
    zoo_started = time.perf_counter()
    source.train_zoo(show_progress=True)
    zoo_seconds = time.perf_counter() - zoo_started

    process_seconds, process = scoring_seconds(source, WORK / "ray-bench-process", executor="process",
                                               workers=arguments.workers)
    with local_ray_cluster(nodes=2, cpus_per_node=1) as cluster:
        os.environ.update(cluster.environment)  # the token the driver joins with
        ray_seconds, clustered = scoring_seconds(source, WORK / "ray-bench-cluster", executor="ray",
                                                 workers=arguments.workers, ray_address=cluster.address)
    equal = {name: clustered[name].equals(process[name]) for name in process}
    rows = [["process pool", f"{arguments.workers} workers x 1 thread", process_seconds, 1.0],
            ["Ray cluster", "2 nodes x 1 CPU", ray_seconds, ray_seconds / process_seconds]]
    save("ray_cluster", {
        "space": "default", "tasks": len(source.space.ids), "cells": len(source.space.ids) ** 2,
        "estimators": list_estimators(), "score_samples": grid.score_samples,
        "zoo_seconds_this_call": zoo_seconds,
        "scoring_seconds": {"process": process_seconds, "ray_two_nodes": ray_seconds},
        "ray_over_process": ray_seconds / process_seconds,
        "matrices_equal": equal,
    })
    print_table(["executor", "resources", "scoring stage (s)", "ratio to process pool"], rows)
    print(f"matrices equal bit for bit: {all(equal.values())} ({sum(equal.values())} of {len(equal)} estimators)")


if __name__ == "__main__":
    main()
