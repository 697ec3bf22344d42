"""The paper's ResNet-18 on CIFAR-10 at scale: modular against end to end, few labels, speed, the transfer grid.

Written for one GPU (the paper's numbers need one) and runnable anywhere: the same code trains on
the CPU, where ``--width`` and ``--train-images`` make a run small enough to check the script.

Parts; each writes ``<out-dir>/paper_scale_<part>_<tag>.json`` after every finished run, so a run cut
short by a time limit keeps what it finished, and a rerun resumes from benchmarks/work/paper-scale/:

- ``speed``: images/s of an end-to-end step and of each modular step (2 and 3 modules), warm (the
  fastest epoch after the first, which pays for compilation), and the output module's fit.
- ``recipe``: 10-class test accuracy, modular (the paper's objective and supervised contrastive; 2
  and 3 modules) against end to end on the same net at equal epochs (each hidden module trains for
  as many epochs as the end-to-end net), per epoch budget and seed; the time to 94% of each.
- ``labels``: the output module of the modular trunk from 1, 10, 100 labels per class and all, with
  and without the unlabelled images (5 draws each).
- ``grid``: the default 15-task space with a zoo of this net: wall time of the zoo, the scores and the
  truth, and the verdict.

    python benchmarks/data_parts.py unpack --parts .gpu-data --to .gpu-data/data
    TASKSPACE_DATA=.gpu-data/data python benchmarks/paper_scale.py speed recipe --device cuda \\
        --precision bf16 --compile --epochs 10,20 --seeds 0 --budget-seconds 480 --out-dir "$OUT"
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _common import RESULTS, WORK, environment, print_table, require_cifar

from taskspace.config import TrainConfig
from taskspace.data import ImageDataset, read_cifar10
from taskspace.io import write_json
from taskspace.training import train_task
from taskspace.training.checkpoints import load_model
from taskspace.training.compute import Compute
from taskspace.training.run import build_model, fit_output_module, prepare_splits, resolve_device
from taskspace.training.tensors import channel_statistics, to_tensor_split
from taskspace.training.trainers import (
    OptimizerSettings,
    evaluate_accuracy,
    train_end_to_end,
    train_hidden_module,
)

PARTS = ("speed", "recipe", "labels", "grid")

#: Training options of each recipe, over TrainConfig's defaults. The paper's scripts: SGD with momentum,
#: batch 128, weight decay 6.25e-5, the upper-triangle alignment; supervised contrastive at the
#: temperature and rate objective_sweep.py chose on the small net; end to end at the usual ResNet rate;
#: the paper's objective at taskspace's default rate and weight decay.
RECIPES: dict[str, dict[str, Any]] = {
    "e2e": {"mode": "e2e", "lr": 0.1, "weight_decay": 5e-4},
    "paper": {"objective": "upper_tri_alignment", "lr": 0.1, "weight_decay": 6.25e-5},
    "supcon": {"objective": "supervised_contrastive", "objective_params": {"temperature": 0.05}, "lr": 0.2,
               "weight_decay": 5e-4},
    "paper_lr0.5": {"objective": "upper_tri_alignment", "lr": 0.5, "weight_decay": 5e-4},  # taskspace's defaults
}

#: Where the trunk is cut into hidden modules, by module count (the output module is one of them).
#: ResNet-18's stages are the stem and its four layers; three modules cut after the second layer.
CUTS = {2: (), 3: (3,)}

TARGET_ACCURACY = 0.94


class Budget:
    """Wall-clock seconds the script may spend; a run starts only while some are left."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds, self.started = seconds, time.perf_counter()

    def spent(self) -> float:
        return time.perf_counter() - self.started

    def allows(self) -> bool:
        return self.seconds is None or self.spent() < self.seconds


class Results:
    """One part's JSON, written again (atomically) after every record."""

    def __init__(self, out_dir: Path, part: str, tag: str, settings: dict[str, Any]) -> None:
        self.path = out_dir / f"paper_scale_{part}_{tag}.json"
        self.payload: dict[str, Any] = {"part": part, "settings": settings, "records": [], "skipped": []}

    def add(self, record: dict[str, Any]) -> None:
        self.payload["records"].append(record)
        self.write()

    def write(self) -> None:
        write_json(self.path, {"environment": _environment(), **self.payload})


def _environment() -> dict[str, Any]:
    record = environment()
    if torch.cuda.is_available():
        record["gpu"] = torch.cuda.get_device_name(0)
    return record


def _dataset(arguments: argparse.Namespace) -> ImageDataset:
    dataset = read_cifar10(require_cifar())
    if arguments.train_images is None:
        return dataset
    return ImageDataset(name=dataset.name, class_names=dataset.class_names,
                        train=dataset.train.take(range(arguments.train_images)),
                        test=dataset.test.take(range(arguments.test_images)))


def _config(arguments: argparse.Namespace, recipe: str, *, modules: int, epochs: int, seed: int,
            task: str = "all") -> TrainConfig:
    options = {**RECIPES[recipe], "task": task, "architecture": arguments.architecture, "width": arguments.width,
               "epochs": epochs, "seed": seed, "batch_size": arguments.batch_size, "device": arguments.device,
               "precision": arguments.precision, "compile": arguments.compile,
               "validation_fraction": arguments.validation_fraction}
    if RECIPES[recipe].get("mode", "modular") == "modular":
        options["cut_points"] = CUTS[modules]
    return TrainConfig(**options)


def _folder(config: TrainConfig, tag: str) -> Path:
    return WORK / "paper-scale" / tag / f"{config.task}-{config.mode}-e{config.epochs}-s{config.seed}-{config.hash()}"


# -- speed ---------------------------------------------------------------------------------------------


def speed(arguments: argparse.Namespace, dataset: ImageDataset, results: Results, budget: Budget) -> None:
    device = resolve_device(arguments.device)
    count = min(arguments.speed_images, len(dataset.train))
    images = dataset.train.take(range(count))
    mean, std = channel_statistics(images.images)
    train = to_tensor_split(images, mean=mean, std=std, device=device)
    compute = Compute(precision=arguments.precision, compile=arguments.compile)
    variants = [("e2e", "e2e", 2, None), ("paper, 2 modules: hidden 0", "paper", 2, 0),
                ("paper, 3 modules: hidden 0", "paper", 3, 0), ("paper, 3 modules: hidden 1", "paper", 3, 1),
                ("supcon, 2 modules: hidden 0", "supcon", 2, 0)]
    for name, recipe, modules, index in variants:
        if not budget.allows():
            results.payload["skipped"].append(name)
            continue
        config = _config(arguments, recipe, modules=modules, epochs=arguments.speed_epochs, seed=0)
        assert config.batch_size is not None
        net = build_model(config, num_classes=10, in_channels=3)
        net.to(device=device, memory_format=torch.channels_last)  # type: ignore[call-overload]
        settings = OptimizerSettings(epochs=arguments.speed_epochs, batch_size=config.batch_size, lr=config.lr,
                                     momentum=config.momentum, weight_decay=config.weight_decay, warmup_epochs=0.0,
                                     augment=True, compute=compute)
        if index is None:
            result = train_end_to_end(net, train=train, validation=None, settings=settings, seed=0, state_path=None,
                                      fingerprint="speed")
        else:
            from taskspace.kernels import get_kernel
            from taskspace.objectives import get_objective

            kernel = get_kernel(config.kernel)
            objective = get_objective(config.objective, **config.objective_params)
            result = train_hidden_module(net, index, train=train, validation=None, kernel=kernel, objective=objective,
                                         k_min=kernel.k_min, k_max=kernel.k_max, settings=settings, seed=0,
                                         state_path=None, fingerprint="speed")
        stepped = (count // config.batch_size) * config.batch_size
        seconds = [epoch["seconds"] for epoch in result.history]
        first, warm = seconds[0], min(seconds[1:])
        record = {"variant": name, "recipe": recipe, "modules": modules, "hidden_module": index,
                  "images_per_epoch": stepped, "epoch_seconds": seconds, "first_epoch_seconds": first,
                  "warm_epoch_seconds": warm, "images_per_second": stepped / warm}
        if index is None:
            results.payload["e2e_images_per_second"] = record["images_per_second"]
        else:
            record["e2e_over_this"] = results.payload.get("e2e_images_per_second", float("nan")) / (stepped / warm)
        results.add(record)
        print(f"{name}: {stepped / warm:.0f} images/s (first epoch {first:.1f} s)", flush=True)
    output_started = time.perf_counter()
    net = build_model(_config(arguments, "paper", modules=2, epochs=1, seed=0), num_classes=10, in_channels=3)
    net.to(device=device, memory_format=torch.channels_last)  # type: ignore[call-overload]
    fit_output_module(net, train, labels_per_class=None, seed=0, steps=200, weight_decay=1e-4, compute=compute)
    results.payload["output_module_seconds"] = time.perf_counter() - output_started
    results.write()


# -- recipe --------------------------------------------------------------------------------------------


def recipe(arguments: argparse.Namespace, dataset: ImageDataset, results: Results, budget: Budget) -> None:
    plan = [(epochs, seed, name, modules) for epochs in arguments.epochs for seed in arguments.seeds
            for name in arguments.recipes for modules in (arguments.modules if name != "e2e" else [2])]
    for epochs, seed, name, modules in plan:
        label = f"{name} m{modules} e{epochs} s{seed}"
        if not budget.allows():
            results.payload["skipped"].append(label)
            results.write()
            continue
        config = _config(arguments, name, modules=modules, epochs=epochs, seed=seed)
        folder = _folder(config, arguments.tag)
        metrics = train_task(config, out_dir=folder, dataset=dataset, show_progress=arguments.progress)
        histories = ([metrics["history"]] if "history" in metrics
                     else [module["history"] for module in metrics["hidden_modules"]])
        record = {"recipe": name, "modules": modules if name != "e2e" else None, "epochs": epochs, "seed": seed,
                  "test_accuracy": metrics["test_accuracy"], "validation_accuracy": metrics["validation_accuracy"],
                  "train_seconds": metrics["train_seconds"], "epoch_passes": epochs * len(histories),
                  "epoch_seconds": [[epoch.get("seconds") for epoch in history] for history in histories],
                  "validation_curve": [[epoch["validation_score"] for epoch in history] for history in histories],
                  "config": config.to_dict(), "run": folder.name}
        results.add(record)
        print(f"{label}: {100 * metrics['test_accuracy']:.2f}% in {metrics['train_seconds']:.0f} s", flush=True)
    results.payload["summary"] = _recipe_summary(results.payload["records"])
    results.write()


def _recipe_summary(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean test accuracy per (recipe, modules, epochs) over seeds, the gap to end to end, time to 94%."""
    groups: dict[tuple[str, Any, int], list[dict[str, Any]]] = {}
    for record in records:
        groups.setdefault((record["recipe"], record["modules"], record["epochs"]), []).append(record)
    e2e = {epochs: float(np.mean([r["test_accuracy"] for r in rows]))
           for (name, _, epochs), rows in groups.items() if name == "e2e"}
    summary = []
    for (name, modules, epochs), rows in sorted(groups.items(), key=lambda item: (item[0][2], item[0][0])):
        accuracies = [row["test_accuracy"] for row in rows]
        mean = float(np.mean(accuracies))
        summary.append({"recipe": name, "modules": modules, "epochs": epochs, "seeds": len(rows),
                        "mean_test_accuracy": mean, "min": min(accuracies), "max": max(accuracies),
                        "mean_train_seconds": float(np.mean([row["train_seconds"] for row in rows])),
                        "points_below_e2e": 100 * (e2e[epochs] - mean) if epochs in e2e else None,
                        "reaches_94": mean >= TARGET_ACCURACY})
    for entry in summary:
        reached = [other for other in summary if other["recipe"] == entry["recipe"]
                   and other["modules"] == entry["modules"] and other["reaches_94"]]
        fastest = min(reached, key=lambda other: other["mean_train_seconds"]) if reached else None
        entry["seconds_to_94"] = fastest["mean_train_seconds"] if fastest else None
    return summary


# -- labels --------------------------------------------------------------------------------------------


def labels(arguments: argparse.Namespace, dataset: ImageDataset, results: Results, budget: Budget) -> None:
    name = arguments.label_recipe
    config = _config(arguments, name, modules=2, epochs=max(arguments.epochs), seed=arguments.seeds[0])
    folder = _folder(config, arguments.tag)
    trained = train_task(config, out_dir=folder, dataset=dataset, show_progress=arguments.progress)
    device = resolve_device(arguments.device)
    net, checkpoint = load_model(folder / "model.pt")
    net.to(device=device, memory_format=torch.channels_last)  # type: ignore[call-overload]
    splits = prepare_splits(config, dataset)
    train = to_tensor_split(splits.train, **checkpoint["normalization"], device=device)
    test = to_tensor_split(splits.test, **checkpoint["normalization"], device=device)
    compute = Compute(precision=arguments.precision)
    results.payload["trunk"] = {"recipe": name, "run": folder.name, "test_accuracy": trained["test_accuracy"]}
    for labels_per_class in [*arguments.labels, None]:
        for unlabeled in (False, True) if labels_per_class is not None else (False,):
            if not budget.allows():
                results.payload["skipped"].append(f"k={labels_per_class} unlabeled={unlabeled}")
                continue
            draws = range(arguments.draws) if labels_per_class is not None else range(1)
            accuracies = []
            for draw in draws:
                fit_output_module(net, train, labels_per_class=labels_per_class, seed=1000 + draw,
                                  steps=config.output_steps, weight_decay=config.output_weight_decay,
                                  unlabeled=unlabeled, compute=compute)
                accuracies.append(evaluate_accuracy(net, test, compute=compute))
            results.add({"labels_per_class": labels_per_class or "all", "unlabeled": unlabeled,
                         "accuracies": accuracies, "mean": float(np.mean(accuracies)),
                         "std": float(np.std(accuracies))})
            print(f"k={labels_per_class or 'all'} unlabeled={unlabeled}: {100 * np.mean(accuracies):.2f}%", flush=True)
    full = next(r["mean"] for r in results.payload["records"] if r["labels_per_class"] == "all")
    for record in results.payload["records"]:
        record["points_below_all_labels"] = 100 * (full - record["mean"])
    results.write()


# -- grid ----------------------------------------------------------------------------------------------


def grid(arguments: argparse.Namespace, results: Results, budget: Budget) -> None:
    from taskspace.analysis import evaluate
    from taskspace.runner import GridConfig, Run

    name = arguments.label_recipe
    train_options = {key: value for key, value in _config(arguments, name, modules=2, epochs=arguments.grid_epochs,
                                                          seed=0, task="all").to_dict().items()
                     if key not in ("task", "dataset", "mode", "init_from", "labels_per_class")}
    configuration = GridConfig(space=arguments.space, train=train_options, seed=0,
                               finetune_epochs=arguments.finetune_epochs, finetune_lr=arguments.finetune_lr)
    run = Run.create(WORK / "paper-scale" / arguments.tag / f"grid-{Path(arguments.space).stem}", configuration,
                     data_root=require_cifar())
    stages: dict[str, float] = {}
    started = time.perf_counter()
    run.train_zoo(show_progress=arguments.progress)
    stages["zoo_seconds"] = time.perf_counter() - started
    results.payload["stages"] = stages
    results.write()
    started = time.perf_counter()
    matrices = run.score(arguments.estimators, show_progress=arguments.progress)
    stages["score_seconds"] = time.perf_counter() - started
    results.write()
    for protocol in arguments.protocols:
        if not budget.allows():
            results.payload["skipped"].append(protocol)
            continue
        started = time.perf_counter()
        run.measure([protocol], show_progress=arguments.progress)
        stages[f"{protocol}_seconds"] = time.perf_counter() - started
        results.write()
    rows = evaluate(matrices, run.truths(), resamples=2000, seed=0)
    run.write_verdict(rows)
    results.payload["verdict"] = [dict(row) for row in rows]
    results.payload["zoo_test_accuracy"] = {task: run.source_metrics(task)["test_accuracy"] for task in run.space.ids}
    results.payload["run"] = str(run.folder)
    results.write()


# -- entry ---------------------------------------------------------------------------------------------


def _ints(text: str) -> list[int]:
    return [int(value) for value in text.split(",") if value]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("parts", nargs="+", choices=PARTS, metavar="PART", help=", ".join(PARTS))
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto (default)")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16"))
    parser.add_argument("--compile", action="store_true", help="torch.compile the training step's forward pass")
    parser.add_argument("--architecture", default="resnet18")
    parser.add_argument("--width", type=int, default=None, help="first stage's channels (default: the net's own)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--validation-fraction", type=float, default=0.1)
    parser.add_argument("--epochs", type=_ints, default=[30], help="epoch budgets, e.g. 10,20,30")
    parser.add_argument("--seeds", type=_ints, default=[0, 1, 2])
    parser.add_argument("--recipes", default="e2e,paper,supcon", help=f"of: {', '.join(RECIPES)}")
    parser.add_argument("--modules", type=_ints, default=[2, 3], help="module counts of the modular recipes")
    parser.add_argument("--label-recipe", default="supcon", help="the trunk of 'labels' and the zoo of 'grid'")
    parser.add_argument("--labels", type=_ints, default=[1, 10, 100])
    parser.add_argument("--draws", type=int, default=5)
    parser.add_argument("--speed-images", type=int, default=12800)
    parser.add_argument("--speed-epochs", type=int, default=3, help="epochs per speed variant (the first is not timed)")
    parser.add_argument("--space", default="default")
    parser.add_argument("--grid-epochs", type=int, default=15)
    parser.add_argument("--estimators", default="kernel_ridge_r2,logme,alignment,alignment_whitened,leep,hscore")
    parser.add_argument("--protocols", default="frozen_k10,frozen_all,finetune")
    parser.add_argument("--finetune-epochs", type=int, default=2)
    parser.add_argument("--finetune-lr", type=float, default=0.01)
    parser.add_argument("--train-images", type=int, default=None, help="use the first N training images (a check)")
    parser.add_argument("--test-images", type=int, default=2000)
    parser.add_argument("--budget-seconds", type=float, default=None, help="start no run after this many seconds")
    parser.add_argument("--tag", default=None, help="names the result files (default: the device, e.g. cuda)")
    parser.add_argument("--out-dir", type=Path, default=RESULTS)
    parser.add_argument("--progress", action="store_true")
    arguments = parser.parse_args()
    arguments.recipes = [name for name in arguments.recipes.split(",") if name]
    unknown = [name for name in [*arguments.recipes, arguments.label_recipe] if name not in RECIPES]
    if unknown:
        parser.error(f"unknown recipe {', '.join(unknown)}; choose from {', '.join(RECIPES)}")
    if any(modules not in CUTS for modules in arguments.modules):
        parser.error(f"--modules takes {', '.join(map(str, CUTS))}")
    arguments.estimators = arguments.estimators.split(",")
    arguments.protocols = arguments.protocols.split(",")
    arguments.tag = arguments.tag or resolve_device(arguments.device).type
    settings = {key: value for key, value in vars(arguments).items() if key != "out_dir"}
    budget = Budget(arguments.budget_seconds)
    dataset = _dataset(arguments) if {"speed", "recipe", "labels"} & set(arguments.parts) else None
    for part in arguments.parts:
        results = Results(arguments.out_dir, part, arguments.tag, settings)
        if part == "grid":
            grid(arguments, results, budget)
        else:
            assert dataset is not None
            {"speed": speed, "recipe": recipe, "labels": labels}[part](arguments, dataset, results, budget)
        print(f"written {results.path}", flush=True)
        if part == "grid" and "verdict" in results.payload:
            print_table(["estimator", "protocol", "mean Kendall tau", "95% interval", "top-1 regret"],
                        [[row["estimator"], row["protocol"], row["kendall_tau"],
                          f"[{row['kendall_tau_low']:.3f}, {row['kendall_tau_high']:.3f}]", row["top1_regret"]]
                         for row in results.payload["verdict"]])
        if part == "recipe":
            print_table(["recipe", "modules", "epochs", "seeds", "test %", "below e2e (points)", "seconds", "s to 94%"],
                        [[s["recipe"], s["modules"], s["epochs"], s["seeds"], 100 * s["mean_test_accuracy"],
                          s["points_below_e2e"], s["mean_train_seconds"], s["seconds_to_94"]]
                         for s in results.payload["summary"]])
        print(json.dumps({"part": part, "seconds_so_far": round(budget.spent(), 1)}), flush=True)


if __name__ == "__main__":
    main()
