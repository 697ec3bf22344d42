"""Train the open zoo of ``benchmarks/zoos/open_zoo.toml`` from scratch, as a user trains their own networks.

Each architecture is trained on its own subset of CIFAR-10's classes with a plain torch loop (SGD with
momentum, random crops and flips, one-cycle learning rate) and saved as a plain ``state_dict`` under
``benchmarks/zoos/weights/``: taskspace then reads them only through the zoo file, as it would read
anyone's weights. Writes ``results/open_zoo_training.json`` (classes, epochs, seconds, test accuracy).

    TASKSPACE_DATA=../shared/data python benchmarks/train_open_zoo.py
"""

from __future__ import annotations

import argparse
import importlib
import io
import json
import time
import tomllib
from pathlib import Path

import numpy as np
import torch
import torchvision
from _common import print_table, require_cifar, save

from taskspace.data import load_dataset
from taskspace.io import write_bytes

ZOO_FILE = Path(__file__).resolve().parent / "zoos" / "open_zoo.toml"
RESULTS_FILE = Path(__file__).resolve().parent / "results" / "open_zoo_training.json"

#: The classes each source network is trained on, its epochs (set so each takes a few minutes on 2 cores)
#: and its peak learning rate (0.05 left MobileNetV3, SqueezeNet and EfficientNet at chance: 0.01 for them).
PLAN = {
    "resnet18_vehicles": (("airplane", "automobile", "ship", "truck"), 3, 0.05),
    "mobilenet_pets": (("cat", "deer", "dog", "horse"), 3, 0.01),
    "shufflenet_small_animals": (("bird", "cat", "deer", "frog"), 3, 0.05),
    "efficientnet_road": (("automobile", "dog", "horse", "truck"), 2, 0.01),
    "regnet_sky_sea": (("airplane", "bird", "frog", "ship"), 3, 0.05),
    "squeezenet_mixed": (("frog", "horse", "ship", "truck"), 4, 0.01),
    "vit_six": (("airplane", "automobile", "bird", "cat", "deer", "dog"), 3, 0.05),
}


def build(entry: dict) -> torch.nn.Module:
    if "torchvision" in entry:
        return torchvision.models.get_model(entry["torchvision"], weights=None, **entry.get("options", {}))
    module, _, name = entry["factory"].partition(":")
    return getattr(importlib.import_module(module), name)(**entry.get("options", {}))


def tensors(images: np.ndarray, mean: list[float], std: list[float]) -> torch.Tensor:
    array = torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255)
    return (array - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


def augment(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    padded = torch.nn.functional.pad(batch, (4, 4, 4, 4), mode="reflect")
    dx, dy = (int(v) for v in torch.randint(0, 9, (2,), generator=generator))
    cropped = padded[:, :, dy : dy + 32, dx : dx + 32]
    flip = torch.rand(len(batch), generator=generator) < 0.5
    return torch.where(flip.view(-1, 1, 1, 1), cropped.flip(3), cropped)


@torch.no_grad()
def recalibrate_batchnorm(model: torch.nn.Module, images: torch.Tensor, batch: int = 500) -> None:
    """Set every BatchNorm's running statistics to their average over the training images.

    MobileNetV3 and EfficientNet keep running statistics with momentum 0.01; a few hundred steps leave
    them far from the data, and the network in eval mode predicts one class. One pass in train mode with
    a cumulative average (momentum None) fixes that without changing a weight.
    """
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None
    model.train()
    for start in range(0, len(images), batch):
        model(images[start : start + batch])


def train_one(entry: dict, classes: tuple[str, ...], epochs: int, lr: float, dataset, seed: int = 0) -> dict:
    torch.manual_seed(seed)
    names = dataset.class_names
    wanted = [names.index(name) for name in classes]
    mean, std = entry["input"]["mean"], entry["input"]["std"]

    lookup = np.full(len(names), -1, dtype=np.int64)
    lookup[wanted] = np.arange(len(wanted))  # labels follow the order the classes are listed in

    def split(part):
        keep = np.isin(part.labels, wanted)
        return tensors(part.images[keep], mean, std), torch.from_numpy(lookup[part.labels[keep]])

    x_train, y_train = split(dataset.train)
    x_test, y_test = split(dataset.test)
    model = build(entry)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4, nesterov=True)
    batch = 128
    steps = epochs * ((len(x_train) + batch - 1) // batch)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps)
    generator = torch.Generator().manual_seed(seed)
    began = time.perf_counter()
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(x_train), generator=generator)
        for start in range(0, len(order), batch):
            rows = order[start : start + batch]
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(augment(x_train[rows], generator)), y_train[rows])
            loss.backward()
            optimizer.step()
            schedule.step()
    recalibrate_batchnorm(model, x_train)
    seconds = time.perf_counter() - began
    model.eval()
    with torch.no_grad():
        predictions = torch.cat([model(x_test[i : i + 500]).argmax(1) for i in range(0, len(x_test), 500)])
    accuracy = float((predictions == y_test).float().mean())
    return {"model": model, "seconds": seconds, "test_accuracy": accuracy, "train_images": len(x_train)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="train only these sources")
    arguments = parser.parse_args()
    dataset = load_dataset("cifar10", data_root=require_cifar())
    entries = {entry["name"]: entry for entry in tomllib.loads(ZOO_FILE.read_text())["source"]}
    previous = RESULTS_FILE.is_file() and json.loads(RESULTS_FILE.read_text()).get("sources") or {}
    rows, record = [], dict(previous)
    for name, (classes, epochs, lr) in PLAN.items():
        if arguments.only and name not in arguments.only:
            continue
        entry = entries[name]
        result = train_one(entry, classes, epochs, lr, dataset)
        target = ZOO_FILE.parent / entry["weights"]
        buffer = io.BytesIO()
        torch.save(result["model"].state_dict(), buffer)
        write_bytes(target, buffer.getvalue())
        record[name] = {"architecture": entry.get("torchvision") or entry.get("factory"), "classes": list(classes),
                        "epochs": epochs, "lr": lr, "batchnorm_recalibrated": True, "train_images": result["train_images"], "seconds": result["seconds"],
                        "test_accuracy": result["test_accuracy"]}
        rows.append((name, record[name]["architecture"], ", ".join(classes), epochs, result["seconds"],
                     result["test_accuracy"]))
        print(f"{name}: {result['test_accuracy']:.4f} in {result['seconds']:.0f} s", flush=True)
    save("open_zoo_training", {"command": "python benchmarks/train_open_zoo.py", "sources": record})
    print_table(["source", "architecture", "classes", "epochs", "seconds", "test accuracy"], rows)


if __name__ == "__main__":
    main()
