"""The three trainers: hidden modules (pairwise kernel objective), output module, end to end.

No gradient crosses a module boundary in modular training: module i's input comes from the frozen
modules before it, computed under ``torch.no_grad()`` and detached.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional

from taskspace.data import random_crop_flip
from taskspace.models import ModularNet
from taskspace.training.loop import LoopResult, run_epochs
from taskspace.training.progress import ProgressBar
from taskspace.training.schedule import warmup_cosine
from taskspace.training.tensors import TensorSplit, minibatch_indices

__all__ = [
    "OptimizerSettings",
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
    """SGD with momentum under a warm-up + cosine schedule."""

    epochs: int
    batch_size: int
    lr: float
    momentum: float
    weight_decay: float
    warmup_epochs: float
    augment: bool


def _sgd(module: nn.Module, settings: OptimizerSettings) -> torch.optim.SGD:
    parameters = [parameter for parameter in module.parameters() if parameter.requires_grad]
    return torch.optim.SGD(
        parameters, lr=settings.lr, momentum=settings.momentum, weight_decay=settings.weight_decay, nesterov=True
    )


def _batch_images(split: TensorSplit, indices: torch.Tensor, *, augment: bool, generator: torch.Generator):
    images = split.images[indices]
    if augment:
        images = random_crop_flip(images, generator=generator).contiguous(memory_format=torch.channels_last)
    return images


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
        total_loss, batches = 0.0, 0
        for step, indices in enumerate(
            minibatch_indices(len(split), settings.batch_size, generator=generator, drop_last=True)
        ):
            learning_rate = warmup_cosine(
                epoch * steps_per_epoch + step, total_steps=total_steps, peak=settings.lr, warmup_steps=warmup_steps
            )
            for group in optimizer.param_groups:
                group["lr"] = learning_rate
            images = _batch_images(split, indices, augment=settings.augment, generator=generator)
            loss = loss_of_batch(images, split.labels[indices])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total_loss += float(loss.detach())
            batches += 1
            bar.update(loss=float(loss.detach()))
        return {"train_loss": total_loss / max(batches, 1)}

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

    def negative_objective(images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        outputs = module(net.hidden_input(images, index))
        return -objective(kernel(outputs), labels, k_min=k_min, k_max=k_max)

    def validate() -> float:
        assert validation is not None  # only called when there is a validation split
        return mean_objective(
            net, index, validation, kernel=kernel, objective=objective, k_min=k_min, k_max=k_max,
            batch_size=settings.batch_size,
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

    def cross_entropy(images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return functional.cross_entropy(net(images), labels)

    result = _fit_with_sgd(
        trainable=net, loss_of_batch=cross_entropy,
        validate=(lambda: evaluate_accuracy(net, validation)) if validation is not None and len(validation) else None,
        train=train, settings=settings, seed=seed, phase=phase, state_path=state_path,
        fingerprint=fingerprint, description="end to end", show_progress=show_progress,
    )
    net.eval()
    return result


@torch.no_grad()
def extract_features(net: ModularNet, images: torch.Tensor, *, batch_size: int = 500) -> torch.Tensor:
    """φ of the trunk for every image (eval mode, forward passes only): N × feature_dim."""
    net.eval()
    return torch.cat([net.features(images[start : start + batch_size]) for start in range(0, len(images), batch_size)])


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
def evaluate_accuracy(net: ModularNet, split: TensorSplit, *, batch_size: int = 500) -> float:
    """Share of ``split`` the net classifies correctly (eval mode)."""
    net.eval()
    correct = 0
    for start in range(0, len(split), batch_size):
        predictions = net(split.images[start : start + batch_size]).argmax(dim=1)
        correct += int((predictions == split.labels[start : start + batch_size]).sum())
    return correct / max(len(split), 1)


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
) -> float:
    """Average of the hidden objective over consecutive mini-batches of ``split`` (eval mode)."""
    module = net.hidden[index]
    was_training = module.training
    module.eval()
    values = []
    for indices in minibatch_indices(len(split), batch_size, drop_last=True):
        outputs = module(net.hidden_input(split.images[indices], index))
        values.append(float(objective(kernel(outputs), split.labels[indices], k_min=k_min, k_max=k_max)))
    module.train(was_training)
    return sum(values) / max(len(values), 1)
