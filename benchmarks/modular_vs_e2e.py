"""Modular vs end-to-end test accuracy at equal epochs on the real CIFAR-10.

Trains the default CPU architecture on 10-class CIFAR-10 and three binary tasks with each modular
recipe (pairwise objective for the hidden module, then the output module on frozen features) and each
end-to-end recipe (cross-entropy through the whole net), all for the same number of epochs. Recipes
are named in benchmarks/recipes.py; the sweep that chose them is benchmarks/objective_sweep.py.
Runs are resumable: they live under benchmarks/work/ and a rerun skips what is finished.

    TASKSPACE_DATA=../shared/data python benchmarks/modular_vs_e2e.py
"""

from __future__ import annotations

import argparse

from _common import WORK, print_table, require_cifar, run_folder, save
from recipes import RECIPES, load_arrays

from taskspace.config import TrainConfig
from taskspace.data import read_cifar10
from taskspace.training import train_task

DEFAULT_TASKS = "all,cat_vs_dog,automobile_vs_truck,deer_vs_horse"
DEFAULT_MODULAR = "upper_tri_alignment,supcon_t0.05_lr0.2"
DEFAULT_E2E = "e2e,e2e_wd5e-5"


def _recipes(names: str, mode: str, parser: argparse.ArgumentParser) -> list[str]:
    chosen = [name for name in names.split(",") if name]
    for name in chosen:
        if name not in RECIPES or RECIPES[name].get("mode", "modular") != mode:
            parser.error(f"'{name}' is not a {mode} recipe of benchmarks/recipes.py")
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default=DEFAULT_TASKS)
    parser.add_argument("--modular-recipes", default=DEFAULT_MODULAR)
    parser.add_argument("--e2e-recipes", default=DEFAULT_E2E)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--arrays", default=None, help="a taskspace CIFAR-10 array cache (.npz)")
    parser.add_argument("--name", default="modular_vs_e2e", help="results/<name>.json")
    parser.add_argument("--progress", action="store_true")
    arguments = parser.parse_args()
    modular = _recipes(arguments.modular_recipes, "modular", parser)
    end_to_end = _recipes(arguments.e2e_recipes, "e2e", parser)
    dataset = load_arrays(arguments.arrays) if arguments.arrays else read_cifar10(require_cifar())
    rows, records, gaps = [], [], []
    for task in arguments.tasks.split(","):
        results = {}
        for recipe in [*modular, *end_to_end]:
            options = {"task": task, "epochs": arguments.epochs, "seed": arguments.seed,
                       "device": arguments.device, **RECIPES[recipe]}
            config = TrainConfig(**options)
            folder = run_folder("cifar10", config)
            metrics = train_task(config, out_dir=folder, dataset=dataset, show_progress=arguments.progress)
            results[recipe] = metrics["test_accuracy"]
            records.append({
                "task": task, "recipe": recipe, "mode": config.mode, "epochs": arguments.epochs,
                "seed": arguments.seed, "test_accuracy": metrics["test_accuracy"],
                "validation_accuracy": metrics["validation_accuracy"], "train_seconds": metrics["train_seconds"],
                "config": config.to_dict(), "run": str(folder.relative_to(WORK.parent)),
            })
            rows.append([task, recipe, config.mode, 100 * metrics["test_accuracy"], metrics["train_seconds"]])
            print(f"done {task} {recipe}: {100 * metrics['test_accuracy']:.2f}%", flush=True)
        best_modular = max(modular, key=results.__getitem__)
        best_e2e = max(end_to_end, key=results.__getitem__)
        gaps.append({
            "task": task, "best_modular": best_modular, "best_e2e": best_e2e,
            "gap_points": 100 * (results[best_e2e] - results[best_modular]),
        })
    path = save(arguments.name, {"device": arguments.device, "records": records, "gaps": gaps})
    print_table(["task", "recipe", "mode", "test %", "train s"], rows)
    print()
    print_table(["task", "best modular", "best end to end", "gap (points)"],
                [[g["task"], g["best_modular"], g["best_e2e"], g["gap_points"]] for g in gaps])
    print(f"written {path}")


if __name__ == "__main__":
    main()
