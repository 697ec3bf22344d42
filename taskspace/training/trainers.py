"""The three trainers: hidden modules (pairwise kernel objective), output module, end to end.

No gradient crosses a module boundary in modular training: module i's input comes from the frozen
modules before it, computed under ``torch.no_grad()`` and detached.

A step does no host work that waits on the device: the split's pixels live where the net does, each
epoch's order and crops are drawn on the host at its start and moved in one copy, images are
normalised and augmented on the device, and the loss is summed there and read once an epoch.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional

from taskspace.data.augment import CropFlipDraws, apply_crop_flip, draw_crop_flip
from taskspace.models import ModularNet
from taskspace.training.compute import FLOAT32, Compute, full_precision
from taskspace.training.loop import LoopResult, run_epochs
from taskspace.training.progress import ProgressBar
from taskspace.training.schedule import warmup_cosine
from taskspace.training.tensors import TensorSplit, minibatch_indices

__all__ = [
    "OptimizerSettings",
    "EpochPlan",
    "plan_epoch",
    "train_hidden_module",
    "train_end_to_end",
    "train_output_module",
    "fit_linear",
    "extract_features",
    "evaluate_accuracy",
    "mean_objective",
]


@dataclass(frozen=True)
class OptimizerSettings:
    """SGD with momentum under a warm-up + cosine schedule, and how each step is computed."""

    epochs: int
    batch_size: int
    lr: float
    momentum: float
    weight_decay: float
    warmup_epochs: float
    augment: bool
    compute: Compute = FLOAT32


def _sgd(module: nn.Module, settings: OptimizerSettings) -> torch.optim.SGD:
    parameters = [parameter for parameter in module.parameters() if parameter.requires_grad]
    return torch.optim.SGD(
        parameters, lr=settings.lr, momentum=settings.momentum, weight_decay=settings.weight_decay, nesterov=True
    )


@dataclass(frozen=True)
class EpochPlan:
    """An epoch's mini-batches (row indices) and their crops, on the split's device."""

    batches: list[torch.Tensor]
    crops: list[CropFlipDraws | None]


def plan_epoch(count: int, batch_size: int, *, generator: torch.Generator, augment: bool,
               device: torch.device) -> EpochPlan:
    """Draw an epoch's shuffled mini-batches, then each batch's crops, and move them in one copy each.

    The draws are those of shuffling and then cropping batch by batch, in that order, so a plan is
    the same whatever the device.
    """
    batches = minibatch_indices(count, batch_size, generator=generator, drop_last=True)
    sizes = [len(batch) for batch in batches]
    rows = list(torch.cat(batches).to(device).split(sizes))
    if not augment:
        return EpochPlan(rows, [None] * len(rows))
    crops = CropFlipDraws.concatenate([draw_crop_flip(size, generator=generator) for size in sizes]).to(device)
    starts = [0, *itertools.accumulate(sizes)]
    return EpochPlan(rows, [crops[start : start + size] for start, size in zip(starts, sizes, strict=False)])


def _epoch_runner(
    *,
    split: TensorSplit,
    settings: OptimizerSettings,
    optimizer: torch.optim.Optimizer,
    loss_of_batch: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    bar: ProgressBar,
) -> Callable[[int, torch.Generator], dict[str, float]]:
    steps_per_epoch = len(minibatch_indices(len(split), settings.batch_size, drop_last=True))
    total_steps = steps_per_epoch * settings.epochs
    warmup_steps = int(round(settings.warmup_epochs * steps_per_epoch))

    def train_one_epoch(epoch: int, generator: torch.Generator) -> dict[str, float]:
        plan = plan_epoch(len(split), settings.batch_size, generator=generator, augment=settings.augment,
                          device=split.device)
        total_loss = torch.zeros((), dtype=torch.float64, device=split.device)
        for step, (rows, crops) in enumerate(zip(plan.batches, plan.crops, strict=True)):
            learning_rate = warmup_cosine(
                epoch * steps_per_epoch + step, total_steps=total_steps, peak=settings.lr, warmup_steps=warmup_steps
            )
            for group in optimizer.param_groups:
                group["lr"] = learning_rate
            images = split.images_at(rows)
            if crops is not None:
                images = apply_crop_flip(images, crops).contiguous(memory_format=torch.channels_last)
            with settings.compute.autocast(split.device):
                loss = loss_of_batch(images, split.labels[rows])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total_loss += loss.detach()
            bar.update(loss=loss.detach())
        return {"train_loss": float(total_loss) / max(len(plan.batches), 1)}

    bar.total_steps = total_steps
    return train_one_epoch


def _fit_with_sgd(
    *,
    trainable: nn.Module,
    loss_of_batch: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    validate: Callable[[], float] | None,
    train: TensorSplit,
    settings: OptimizerSettings,
    seed: int,
    phase: str,
    state_path: Path | None,
    fingerprint: str,
    description: str,
    show_progress: bool,
) -> LoopResult:
    optimizer = _sgd(trainable, settings)
    with ProgressBar(description, enabled=show_progress) as bar:
        return run_epochs(
            trainable=trainable,
            optimizer=optimizer,
            epochs=settings.epochs,
            train_one_epoch=_epoch_runner(
                split=train, settings=settings, optimizer=optimizer, loss_of_batch=loss_of_batch, bar=bar
            ),
            validate=validate,
            seed=seed,
            phase=phase,
            state_path=state_path,
            fingerprint=fingerprint,
            progress=bar.epoch_done,
        )


def train_hidden_module(
    net: ModularNet,
    index: int,
    *,
    train: TensorSplit,
    validation: TensorSplit | None,
    kernel: Callable[..., torch.Tensor],
    objective: Callable[..., torch.Tensor],
    k_min: float,
    k_max: float,
    settings: OptimizerSettings,
    seed: int,
    state_path: Path | None,
    fingerprint: str,
    show_progress: bool = False,
) -> LoopResult:
    """Train hidden module ``index`` to maximise ``objective(kernel(module output), labels)``.

    Modules ``0..index-1`` are frozen first; the trained module is left frozen at its best
    validation objective. Only "same class or not" of the labels enters the objective.
    """
    net.freeze_hidden(index)
    module = net.hidden[index]
    module.requires_grad_(True)
    forward = settings.compute.compiled(lambda images: module(net.hidden_input(images, index)))

    def negative_objective(images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        outputs = forward(images)
        with full_precision(images.device):
            return -objective(kernel(outputs.float()), labels, k_min=k_min, k_max=k_max)

    def validate() -> float:
        assert validation is not None  # only called when there is a validation split
        return mean_objective(
            net, index, validation, kernel=kernel, objective=objective, k_min=k_min, k_max=k_max,
            batch_size=settings.batch_size, compute=settings.compute,
        )

    result = _fit_with_sgd(
        trainable=module, loss_of_batch=negative_objective,
        validate=validate if validation is not None and len(validation) > 1 else None,
        train=train, settings=settings, seed=seed, phase=f"hidden{index}", state_path=state_path,
        fingerprint=fingerprint, description=f"hidden module {index}", show_progress=show_progress,
    )
    net.freeze_hidden(index + 1)
    return result


def train_end_to_end(
    net: ModularNet,
    *,
    train: TensorSplit,
    validation: TensorSplit | None,
    settings: OptimizerSettings,
    seed: int,
    state_path: Path | None,
    fingerprint: str,
    phase: str = "e2e",
    show_progress: bool = False,
) -> LoopResult:
    """Train the whole net with cross-entropy; keep the epoch with the best validation accuracy."""
    net.requires_grad_(True)
    forward = settings.compute.compiled(net)

    def cross_entropy(images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return functional.cross_entropy(forward(images), labels)

    def validate() -> float:
        assert validation is not None  # only called when there is a validation split
        return evaluate_accuracy(net, validation, compute=settings.compute)

    result = _fit_with_sgd(
        trainable=net, loss_of_batch=cross_entropy,
        validate=validate if validation is not None and len(validation) else None,
        train=train, settings=settings, seed=seed, phase=phase, state_path=state_path,
        fingerprint=fingerprint, description="end to end", show_progress=show_progress,
    )
    net.eval()
    return result


@torch.no_grad()
def extract_features(
    net: ModularNet, split: TensorSplit, *, batch_size: int = 500, compute: Compute = FLOAT32
) -> torch.Tensor:
    """φ of the trunk for every image of ``split`` (eval mode, forward passes only): N × feature_dim, float32."""
    net.eval()
    features = []
    for start in range(0, len(split), batch_size):
        with compute.autocast(split.device):
            features.append(net.features(split.images_at(slice(start, start + batch_size))).float())
    return torch.cat(features) if features else torch.zeros((0, net.feature_dim), device=split.device)


def train_output_module(
    net: ModularNet,
    *,
    features: torch.Tensor,
    labels: torch.Tensor,
    steps: int,
    weight_decay: float,
) -> float:
    """Fit the output module's linear layer on frozen features (see :func:`fit_linear`)."""
    return fit_linear(net.output.linear, features=features, labels=labels, steps=steps, weight_decay=weight_decay)


def fit_linear(
    linear: nn.Linear, *, features: torch.Tensor, labels: torch.Tensor, steps: int, weight_decay: float
) -> float:
    """Fit ``linear`` on fixed features with full-batch L-BFGS.

    Minimises mean cross-entropy + ``weight_decay``·‖W‖². Deterministic: it starts from zero weights
    and uses no randomness. Returns the final training loss.
    """
    with torch.no_grad():
        linear.weight.zero_()
        linear.bias.zero_()
    linear.requires_grad_(True)
    optimizer = torch.optim.LBFGS(
        linear.parameters(), lr=1.0, max_iter=steps, history_size=20, line_search_fn="strong_wolfe",
        tolerance_grad=1e-9, tolerance_change=1e-12,
    )
    features = features.detach()

    def objective() -> torch.Tensor:
        return functional.cross_entropy(linear(features), labels) + weight_decay * linear.weight.pow(2).sum()

    def closure() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        loss = objective()
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        return float(objective())


@torch.no_grad()
def evaluate_accuracy(net: ModularNet, split: TensorSplit, *, batch_size: int = 500,
                      compute: Compute = FLOAT32) -> float:
    """Share of ``split`` the net classifies correctly (eval mode; one read from the device)."""
    net.eval()
    correct = torch.zeros((), dtype=torch.int64, device=split.device)
    for start in range(0, len(split), batch_size):
        with compute.autocast(split.device):
            predictions = net(split.images_at(slice(start, start + batch_size))).argmax(dim=1)
        correct += (predictions == split.labels[start : start + batch_size]).sum()
    return int(correct) / max(len(split), 1)


@torch.no_grad()
def mean_objective(
    net: ModularNet,
    index: int,
    split: TensorSplit,
    *,
    kernel: Callable[..., torch.Tensor],
    objective: Callable[..., torch.Tensor],
    k_min: float,
    k_max: float,
    batch_size: int,
    compute: Compute = FLOAT32,
) -> float:
    """Average of the hidden objective over consecutive mini-batches of ``split`` (eval mode)."""
    module = net.hidden[index]
    was_training = module.training
    module.eval()
    total = torch.zeros((), dtype=torch.float64, device=split.device)
    batches = minibatch_indices(len(split), batch_size, drop_last=True)
    for indices in batches:
        rows = indices.to(split.device)
        with compute.autocast(split.device):
            outputs = module(net.hidden_input(split.images_at(rows), index))
        with full_precision(split.device):
            total += objective(kernel(outputs.float()), split.labels[rows], k_min=k_min, k_max=k_max)
    module.train(was_training)
    return float(total) / max(len(batches), 1)
