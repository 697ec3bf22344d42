"""Modular vs end-to-end test accuracy at equal epochs on the real CIFAR-10.

Trains the default CPU architecture on 10-class CIFAR-10 and three binary tasks, once with the
pairwise kernel objective (hidden module, then the output module on frozen features) and once end
to end with cross-entropy, for the same number of epochs. Runs are resumable: they live under
benchmarks/work/ and a rerun skips what is finished.

    TASKSPACE_DATA=../shared/data python benchmarks/modular_vs_e2e.py
"""

from __future__ import annotations

import argparse

from _common import WORK, print_table, require_cifar, run_folder, save

from taskspace.config import TrainConfig
from taskspace.data import read_cifar10
from taskspace.training import train_task

DEFAULT_TASKS = "all,cat_vs_dog,automobile_vs_truck,deer_vs_horse"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default=DEFAULT_TASKS)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--modular-lr", type=float, default=None, help="default: TrainConfig's default")
    parser.add_argument("--e2e-lr", type=float, default=None, help="default: TrainConfig's default")
    parser.add_argument("--progress", action="store_true")
    arguments = parser.parse_args()
    data_root = require_cifar()
    dataset = read_cifar10(data_root)
    rows, records = [], []
    for task in arguments.tasks.split(","):
        record = {"task": task, "epochs": arguments.epochs, "seed": arguments.seed}
        for mode, lr in (("modular", arguments.modular_lr), ("e2e", arguments.e2e_lr)):
            options = {"task": task, "mode": mode, "epochs": arguments.epochs, "seed": arguments.seed}
            if lr is not None:
                options["lr"] = lr
            config = TrainConfig(**options)
            folder = run_folder("cifar10", config)
            metrics = train_task(config, out_dir=folder, dataset=dataset, show_progress=arguments.progress)
            record[mode] = {
                "test_accuracy": metrics["test_accuracy"],
                "validation_accuracy": metrics["validation_accuracy"],
                "train_seconds": metrics["train_seconds"],
                "config": config.to_dict(),
                "run": str(folder.relative_to(WORK.parent)),
            }
        record["gap_points"] = 100 * (record["e2e"]["test_accuracy"] - record["modular"]["test_accuracy"])
        records.append(record)
        rows.append([
            task, 100 * record["modular"]["test_accuracy"], 100 * record["e2e"]["test_accuracy"],
            record["gap_points"], record["modular"]["train_seconds"], record["e2e"]["train_seconds"],
        ])
        print(f"done {task}", flush=True)
    path = save("modular_vs_e2e", {"records": records})
    print_table(["task", "modular %", "e2e %", "gap (points)", "modular s", "e2e s"], rows)
    print(f"written {path}")


if __name__ == "__main__":
    main()
