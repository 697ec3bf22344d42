"""Is the output module or the trunk what limits a modular net? Refit the output module many ways.

On the frozen 10-class trunk of a recipe (trained here if missing, as in modular_vs_e2e.py), the output
module (one linear layer on φ, full-batch L-BFGS) is refitted on all training labels with several
weight decays and iteration caps; training and test accuracy of each fit are reported. If no fit moves
the test accuracy, and training accuracy stays close to it, the trunk's features are the limit.

    TASKSPACE_DATA=../shared/data python benchmarks/output_module.py --recipe supcon_t0.05_lr0.2
"""

from __future__ import annotations

import argparse
import time

import torch
from _common import print_table, require_cifar, run_folder, save
from recipes import RECIPES

from taskspace.config import TrainConfig
from taskspace.data import read_cifar10
from taskspace.training import extract_features, fit_linear, load_model, prepare_splits, train_task
from taskspace.training.tensors import to_tensor_split

FITS = ((1e-4, 200), (1e-4, 1000), (1e-5, 200), (1e-5, 1000), (0.0, 1000), (1e-3, 200))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="supcon_t0.05_lr0.2")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    arguments = parser.parse_args()
    if arguments.recipe not in RECIPES or RECIPES[arguments.recipe].get("mode", "modular") != "modular":
        parser.error(f"--recipe must be a modular recipe of: {', '.join(RECIPES)}")
    dataset = read_cifar10(require_cifar())
    config = TrainConfig(task="all", epochs=arguments.epochs, seed=arguments.seed, **RECIPES[arguments.recipe])
    folder = run_folder("cifar10", config)
    train_task(config, out_dir=folder, dataset=dataset)
    net, checkpoint = load_model(folder / "model.pt")
    splits = prepare_splits(config, dataset)
    train = to_tensor_split(splits.train, **checkpoint["normalization"])
    test = to_tensor_split(splits.test, **checkpoint["normalization"])
    train_features, test_features = extract_features(net, train.images), extract_features(net, test.images)
    records = []
    for weight_decay, steps in FITS:
        linear = torch.nn.Linear(train_features.shape[1], net.num_classes)
        started = time.perf_counter()
        loss = fit_linear(linear, features=train_features, labels=train.labels, steps=steps, weight_decay=weight_decay)
        seconds = time.perf_counter() - started
        with torch.no_grad():
            train_accuracy = float((linear(train_features).argmax(1) == train.labels).float().mean())
            test_accuracy = float((linear(test_features).argmax(1) == test.labels).float().mean())
        records.append({"weight_decay": weight_decay, "steps": steps, "train_accuracy": train_accuracy,
                        "test_accuracy": test_accuracy, "train_loss": loss, "seconds": seconds})
    path = save(f"output_module_{arguments.recipe}", {"recipe": arguments.recipe, "trunk_run": str(folder),
                                                      "records": records})
    print_table(["weight decay", "L-BFGS steps", "train %", "test %", "loss", "s"],
                [[f"{r['weight_decay']:g}", r["steps"], 100 * r["train_accuracy"], 100 * r["test_accuracy"],
                  r["train_loss"], r["seconds"]] for r in records])
    print(f"written {path}")


if __name__ == "__main__":
    main()
