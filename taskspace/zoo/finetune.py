"""The ``finetune`` ground truth of a zoo module: the network up to the layer, trained on the target.

The source's network is cut at the layer (``create_feature_extractor``), its output pooled as for
scoring, and a new linear head put on top; all of it is trained on ``finetune_samples`` of the
target's training images (class-stratified, seeded; random horizontal flips, no crops) with SGD (momentum 0.9,
one-cycle learning rate, weight decay 5e-4) for ``finetune_epochs``, then tested on every test image
of the target. Deterministic for a seed on one device.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np
import torch
from torch import nn

from taskspace.training.seeds import derive_seed
from taskspace.zoo.networks import pool_tensor
from taskspace.zoo.spec import OUTPUT_LAYER, SourceSpec, module_id

__all__ = ["finetune_module", "validation_accuracy"]


class _Cut(nn.Module):
    """The network up to ``layer``, pooled to one vector per image, and a linear head."""

    def __init__(self, body: nn.Module, layer: str, width: int, classes: int, tokens: str) -> None:
        super().__init__()
        self.body, self.layer, self.tokens = body, layer, tokens
        self.head = nn.Linear(width, classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """The layer's output, pooled as for scoring."""
        value = self.body(images)
        if isinstance(value, dict):
            value = value[self.layer]
        return pool_tensor(value, tokens=self.tokens, name=self.layer)


def _stratified(labels: np.ndarray, count: int | None, seed: int) -> np.ndarray:
    if count is None or count >= len(labels):
        return np.arange(len(labels))
    classes = np.unique(labels)
    chosen = []
    rng = np.random.default_rng(seed)
    for position, label in enumerate(classes):
        members = np.flatnonzero(labels == label)
        quota = count // len(classes) + (1 if position < count % len(classes) else 0)
        chosen.append(rng.permutation(members)[:quota])
    return np.sort(np.concatenate(chosen))


def finetune_module(spec: SourceSpec, layer: str, target: str, images: Any, *, dataset: Any, options: Any,
                    device: str = "cpu", batch_size: int = 64) -> dict[str, Any]:
    """Fine-tune (source, layer) on the target ``target`` (its id; ``images``: its
    :class:`~taskspace.zoo.targets.TargetImages` in ``dataset``) with a zoo run's ``options``; returns
    ``{"accuracy", "train_seconds", "train_images"}``."""
    from torchvision.models.feature_extraction import create_feature_extractor

    from taskspace.zoo.networks import _tracer, load_source

    loaded = load_source(spec)
    seed = derive_seed(options.seed, "zoo-finetune", module_id(spec.name, layer), target) % (2**31)
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    if layer == OUTPUT_LAYER:
        body: nn.Module = loaded.network
    else:
        body = create_feature_extractor(loaded.network, return_nodes={layer: layer}, tracer_kwargs=_tracer())
    positions = _stratified(images.train_labels, options.finetune_samples, seed)
    train_x = _prepare(dataset.train.images[images.train[positions]], loaded)
    train_y = torch.from_numpy(images.train_labels[positions].astype(np.int64))
    classes = int(images.train_labels.max()) + 1
    with torch.no_grad():
        body.eval()
        probe = body(train_x[:2])
        width = pool_tensor(probe[layer] if isinstance(probe, dict) else probe, tokens=spec.tokens,
                            name=layer).shape[1]
    model = _Cut(body, layer, int(width), classes, spec.tokens).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=options.finetune_lr, momentum=0.9, weight_decay=5e-4)
    steps = options.finetune_epochs * max(1, (len(train_x) + batch_size - 1) // batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=options.finetune_lr, total_steps=steps)
    began = time.perf_counter()
    model.train()
    for _ in range(options.finetune_epochs):
        order = torch.randperm(len(train_x), generator=generator)
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            batch = _flip(train_x[rows], generator).to(device)
            optimizer.zero_grad(set_to_none=True)
            loss = nn.functional.cross_entropy(model(batch), train_y[rows].to(device))
            loss.backward()
            optimizer.step()
            schedule.step()
    seconds = time.perf_counter() - began
    model.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, len(images.test), 256):
            batch = _prepare(dataset.test.images[images.test[start : start + 256]], loaded).to(device)
            predictions = model(batch).argmax(dim=1).cpu().numpy()
            correct += int((predictions == images.test_labels[start : start + 256]).sum())
    recipe = {"trains": "the network up to the layer, with a new linear head",
              "optimizer": "SGD, momentum 0.9, weight decay 5e-4, one-cycle", "lr": options.finetune_lr,
              "epochs": options.finetune_epochs, "samples": options.finetune_samples, "batch_size": batch_size,
              "augment": "horizontal flips"}
    return {"accuracy": correct / max(1, len(images.test)), "train_seconds": seconds,
            "train_images": int(len(train_x)), "recipe": recipe}


def validation_accuracy(spec: SourceSpec, layer: str, target: str, images: Any, *, dataset: Any, options: Any,
                        validation: int = 500, device: str = "cpu") -> dict[str, Any]:
    """:func:`finetune_module` with its test images replaced by a validation split: ``validation`` of the
    target's training images (class-stratified, seeded by the target), held out of the images it trains
    on. What a recipe (a learning rate from a grid, say) is chosen on, so that no test image chooses it;
    returns ``{"accuracy", "train_seconds", "train_images", "validation_images"}``."""
    seed = derive_seed(options.seed, "zoo-finetune-validation", target) % (2**31)
    held = _stratified(images.train_labels, validation, seed)
    if len(held) >= len(images.train_labels):
        raise ValueError(f"target {target} has {len(images.train_labels)} training images: too few to hold "
                         f"{validation} out for validation")
    kept = np.setdiff1d(np.arange(len(images.train)), held)
    split = dataclasses.replace(images, train=images.train[kept], train_labels=images.train_labels[kept],
                                test=images.train[held], test_labels=images.train_labels[held],
                                scored=np.arange(0))
    record = finetune_module(spec, layer, target, split, dataset=_TrainAsTest(dataset), options=options,
                             device=device)
    return {**record, "validation_images": int(len(held))}


@dataclasses.dataclass(frozen=True)
class _TrainAsTest:
    """A dataset whose test split is its training split (the validation images are training images)."""

    dataset: Any

    @property
    def train(self) -> Any:
        return self.dataset.train

    @property
    def test(self) -> Any:
        return self.dataset.train


def _prepare(images: np.ndarray, loaded: Any) -> torch.Tensor:
    batch = torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255.0)
    if loaded.size is not None and batch.shape[-1] != loaded.size:
        batch = nn.functional.interpolate(batch, size=(loaded.size, loaded.size), mode="bilinear", antialias=True,
                                          align_corners=False)
    mean = torch.tensor(loaded.mean).view(1, -1, 1, 1)
    std = torch.tensor(loaded.std).view(1, -1, 1, 1)
    return (batch - mean) / std


def _flip(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    flip = torch.rand(len(batch), generator=generator) < 0.5
    return torch.where(flip.view(-1, 1, 1, 1), batch.flip(3), batch)
