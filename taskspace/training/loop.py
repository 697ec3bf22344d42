"""The resumable epoch loop shared by every trainer.

After each epoch the trainable module, the optimiser, the best state so far and the history are saved
atomically. A rerun with the same fingerprint continues after the last saved epoch; since every epoch
draws its randomness from a generator derived from (seed, phase, epoch), the resumed run ends with the
same weights as an uninterrupted one.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from taskspace.errors import CheckpointError
from taskspace.io import load_checkpoint, save_checkpoint
from taskspace.training.seeds import torch_generator

__all__ = ["LoopResult", "run_epochs"]


@dataclass
class LoopResult:
    """What the loop chose: the best epoch (by validation score, higher is better) and the history."""

    best_epoch: int
    best_score: float
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0  # wall time of all epochs, earlier interrupted sessions included


def run_epochs(
    *,
    trainable: nn.Module,
    optimizer: torch.optim.Optimizer,
    epochs: int,
    train_one_epoch: Callable[[int, torch.Generator], dict[str, float]],
    validate: Callable[[], float] | None,
    seed: int,
    phase: str,
    state_path: Path | None,
    fingerprint: str,
    progress: Callable[[int, dict[str, float]], None] | None = None,
) -> LoopResult:
    """Train ``trainable`` for ``epochs`` epochs and leave it holding its best state.

    Args:
        trainable: the module whose weights are trained, saved and chosen.
        optimizer: optimiser over ``trainable``'s parameters.
        epochs: number of epochs.
        train_one_epoch: ``(epoch, generator) -> metrics``; must draw all randomness from ``generator``.
            The history adds each epoch's ``seconds`` (its training, without validation).
        validate: returns the validation score (higher is better); ``None`` keeps the last epoch.
        seed: root seed; each epoch's generator is derived from (seed, phase, epoch).
        phase: name of this training phase (``hidden0``, ``e2e``, ...).
        state_path: where the resume state lives; ``None`` disables resuming.
        fingerprint: identifies the configuration; a saved state with another one is refused.
        progress: called after each epoch with (epoch, metrics).
    """
    start_epoch = 0
    best_score = float("-inf")
    best_epoch = -1
    best_state: dict[str, Any] | None = None
    history: list[dict[str, float]] = []
    earlier_seconds = 0.0
    if state_path is not None and state_path.is_file():
        saved = load_checkpoint(state_path)
        if saved.get("fingerprint") != fingerprint or saved.get("phase") != phase:
            raise CheckpointError(
                f"resume state '{state_path}' belongs to another configuration; "
                "delete it or choose another --out folder"
            )
        trainable.load_state_dict(saved["trainable"])
        optimizer.load_state_dict(saved["optimizer"])
        start_epoch = int(saved["epoch"]) + 1
        best_score = float(saved["best_score"])
        best_epoch = int(saved["best_epoch"])
        best_state = saved["best_state"]
        history = list(saved["history"])
        earlier_seconds = float(saved.get("seconds", 0.0))
    started = time.perf_counter()

    for epoch in range(start_epoch, epochs):
        trainable.train()
        epoch_started = time.perf_counter()
        metrics = dict(train_one_epoch(epoch, torch_generator(seed, phase, epoch)))
        metrics["seconds"] = time.perf_counter() - epoch_started
        score = validate() if validate is not None else float(epoch)
        metrics["epoch"] = float(epoch)
        metrics["validation_score"] = float(score)
        history.append(metrics)
        if score > best_score or best_state is None:
            best_score, best_epoch = float(score), epoch
            best_state = copy.deepcopy(trainable.state_dict())
        if state_path is not None:
            save_checkpoint(
                state_path,
                {
                    "fingerprint": fingerprint,
                    "phase": phase,
                    "epoch": epoch,
                    "trainable": trainable.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "best_score": best_score,
                    "best_epoch": best_epoch,
                    "best_state": best_state,
                    "history": history,
                    "seconds": earlier_seconds + time.perf_counter() - started,
                },
            )
        if progress is not None:
            progress(epoch, metrics)

    if best_state is not None:
        trainable.load_state_dict(best_state)
    return LoopResult(best_epoch=best_epoch, best_score=best_score, history=history,
                      seconds=earlier_seconds + time.perf_counter() - started)
