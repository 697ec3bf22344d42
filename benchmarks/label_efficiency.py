"""Label efficiency: the output module on 1, 10, 100 labels per class and on all labels.

The trunk is the frozen 10-class modular net of benchmarks/modular_vs_e2e.py (trained here if it is
missing). For each k the few labels are drawn from the training split only, with several seeds, and
the output module is refitted on frozen features; test accuracy is reported as mean, std, min, max.

    TASKSPACE_DATA=../shared/data python benchmarks/label_efficiency.py
"""

from __future__ import annotations

import argparse
import statistics

import torch

from _common import print_table, require_cifar, run_folder, save
from recipes import RECIPES, load_arrays

from taskspace.config import TrainConfig
from taskspace.data import read_cifar10
from taskspace.training import evaluate_accuracy, fit_output_module, load_model, prepare_splits, train_task
from taskspace.training.tensors import to_tensor_split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--labels", default="1,10,100", help="labels per class to try")
    parser.add_argument("--draws", type=int, default=5, help="few-label subsets drawn per k")
    parser.add_argument("--recipe", default="upper_tri_alignment", help=f"one of: {', '.join(RECIPES)}")
    parser.add_argument("--experiment", default="cifar10", help="folder under benchmarks/work/ for the trunk")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--arrays", default=None, help="a taskspace CIFAR-10 array cache (.npz)")
    parser.add_argument("--name", default="label_efficiency", help="results/<name>.json")
    parser.add_argument("--unlabeled", action="store_true",
                        help="also fit each k with the rest of the training images, unlabeled (semi-supervised)")
    arguments = parser.parse_args()
    if arguments.recipe not in RECIPES or RECIPES[arguments.recipe].get("mode", "modular") != "modular":
        parser.error(f"--recipe must be a modular recipe of: {', '.join(RECIPES)}")
    dataset = load_arrays(arguments.arrays) if arguments.arrays else read_cifar10(require_cifar())
    options = {"task": "all", "mode": "modular", "epochs": arguments.epochs, "seed": arguments.seed,
               "device": arguments.device, **RECIPES[arguments.recipe]}
    config = TrainConfig(**options)
    folder = run_folder(arguments.experiment, config)
    train_task(config, out_dir=folder, dataset=dataset)
    device = torch.device(arguments.device)
    net, checkpoint = load_model(folder / "model.pt")
    net.to(device)
    splits = prepare_splits(config, dataset)
    train = to_tensor_split(splits.train, **checkpoint["normalization"], device=device)
    test = to_tensor_split(splits.test, **checkpoint["normalization"], device=device)

    def accuracy(labels_per_class: int | None, seed: int, unlabeled: bool = False) -> float:
        fit_output_module(net, train, labels_per_class=labels_per_class, seed=seed, steps=config.output_steps,
                          weight_decay=config.output_weight_decay, unlabeled=unlabeled)
        return evaluate_accuracy(net, test)

    full = accuracy(None, arguments.seed)
    records = [{"labels_per_class": "all", "unlabeled_images": False, "accuracies": [full],
                "draw_seeds": [arguments.seed]}]
    rows = [["all", len(train), "no", 100 * full, 0.0, 100 * full, 100 * full, 0.0]]
    variants = (False, True) if arguments.unlabeled else (False,)
    for k in (int(value) for value in arguments.labels.split(",")):
        for unlabeled in variants:
            seeds = list(range(1000, 1000 + arguments.draws))
            accuracies = [accuracy(k, seed, unlabeled) for seed in seeds]
            mean = statistics.mean(accuracies)
            records.append({"labels_per_class": k, "unlabeled_images": unlabeled, "accuracies": accuracies,
                            "draw_seeds": seeds, "mean": mean,
                            "std": statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0,
                            "gap_to_all_points": 100 * (full - mean)})
            rows.append([k, k * train.labels.unique().numel(), "yes" if unlabeled else "no", 100 * mean,
                         100 * records[-1]["std"], 100 * min(accuracies), 100 * max(accuracies), 100 * (full - mean)])
    path = save(arguments.name, {"recipe": arguments.recipe, "trunk_run": str(folder), "trunk_config": config.to_dict(),
                                 "all_labels_accuracy": full, "records": records})
    print_table(["labels/class", "labels", "+ unlabeled images", "mean %", "std", "min %", "max %",
                 "gap to all (points)"], rows)
    print(f"written {path}")


if __name__ == "__main__":
    main()
