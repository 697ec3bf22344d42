"""Which hidden-module recipe closes the modular gap on 10-class CIFAR-10? A sweep at equal epochs.

Each recipe is a set of TrainConfig options on top of ``task=all, epochs=E, seed=S`` (modular unless it
says ``mode=e2e``, which gives the end-to-end reference of the same sweep). Recipes run in parallel
worker processes (useful on a GPU, where one small net leaves the card mostly idle); each run lives
under benchmarks/work/sweep/ and a rerun skips what is finished.

    TASKSPACE_DATA=../shared/data python benchmarks/objective_sweep.py --recipes alignment,supcon_t0.1
    python benchmarks/objective_sweep.py --device cuda --parallel 8 --arrays cifar10.npz   # on a GPU

``--arrays`` reads the taskspace array cache (.npz, no pickle) instead of the python batches.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import multiprocessing
import time
from typing import Any

from _common import WORK, print_table, require_cifar, run_folder, save
from recipes import RECIPES, load_arrays

from taskspace.config import TrainConfig

def run_recipe(name: str, options: dict[str, Any], *, arrays: str | None, data_root: str | None,
               threads: int) -> dict[str, Any]:
    import torch

    from taskspace.data import read_cifar10
    from taskspace.training import train_task

    torch.set_num_threads(threads)
    dataset = load_arrays(arrays) if arrays else read_cifar10(data_root)
    config = TrainConfig(**options)
    folder = run_folder("sweep", config)
    started = time.perf_counter()
    metrics = train_task(config, out_dir=folder, dataset=dataset)
    return {
        "recipe": name,
        "task": config.task,
        "seed": config.seed,
        "options": {key: value for key, value in options.items() if key not in ("task", "device", "seed")},
        "test_accuracy": metrics["test_accuracy"],
        "validation_accuracy": metrics["validation_accuracy"],
        "train_seconds": metrics["train_seconds"],
        "wall_seconds": time.perf_counter() - started,
        "run": str(folder.relative_to(WORK.parent)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", default=",".join(RECIPES), help=f"comma list of: {', '.join(RECIPES)}")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--tasks", default="all", help="comma list of task ids (all = 10-class)")
    parser.add_argument("--seeds", default="0", help="comma list; every recipe runs once per seed")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--parallel", type=int, default=1, help="worker processes")
    parser.add_argument("--threads", type=int, default=2, help="torch threads per worker")
    parser.add_argument("--arrays", default=None, help="a taskspace CIFAR-10 array cache (.npz)")
    parser.add_argument("--name", default=None, help="results/<name>.json (default objective_sweep_<device>)")
    arguments = parser.parse_args()
    names = [name for name in arguments.recipes.split(",") if name]
    unknown = [name for name in names if name not in RECIPES]
    if unknown:
        parser.error(f"unknown recipe(s) {unknown}; choose from {', '.join(RECIPES)}")
    data_root = None if arguments.arrays else require_cifar()
    seeds = [int(seed) for seed in arguments.seeds.split(",")]
    tasks = arguments.tasks.split(",")
    base = {"epochs": arguments.epochs, "device": arguments.device}
    jobs = {
        (task, name, seed): {**base, "task": task, "seed": seed, **RECIPES[name]}
        for task in tasks for name in names for seed in seeds
    }
    for options in jobs.values():
        TrainConfig(**options)  # a bad recipe fails before any worker starts
    records: list[dict[str, Any]] = []
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(arguments.parallel, mp_context=context) as pool:
        futures = {
            pool.submit(run_recipe, name, options, arrays=arguments.arrays, data_root=data_root,
                        threads=arguments.threads): name
            for (_, name, _), options in jobs.items()
        }
        for future in concurrent.futures.as_completed(futures):
            record = future.result()
            records.append(record)
            print(f"done {record['task']} {record['recipe']} seed {record['seed']}: {100 * record['test_accuracy']:.2f}%", flush=True)
    records.sort(key=lambda record: (tasks.index(record["task"]), names.index(record["recipe"]), record["seed"]))
    path = save(arguments.name or f"objective_sweep_{arguments.device}",
                {"epochs": arguments.epochs, "tasks": tasks, "seeds": seeds, "device": arguments.device,
                 "parallel": arguments.parallel, "records": records})
    print_table(
        ["task", "recipe", "seed", "test %", "validation %", "train s"],
        [[r["task"], r["recipe"], r["seed"], 100 * r["test_accuracy"], 100 * r["validation_accuracy"], r["train_seconds"]]
         for r in records],
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
