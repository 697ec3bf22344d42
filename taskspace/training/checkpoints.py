"""Model checkpoints: the net's spec, weights, input normalisation and task, saved atomically."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from taskspace._version import __version__
from taskspace.errors import CheckpointError
from taskspace.io import load_checkpoint, save_checkpoint
from taskspace.models import ModularNet, get_model

__all__ = ["CHECKPOINT_SCHEMA", "save_model", "load_model", "load_hidden_from"]

CHECKPOINT_SCHEMA = 1


def save_model(
    path: str | os.PathLike[str],
    net: ModularNet,
    *,
    normalization: dict[str, list[float]],
    task_classes: tuple[str, ...],
    config_hash: str,
    composition: dict[str, Any] | None = None,
) -> None:
    """Save ``net`` with everything needed to rebuild it and feed it data (and, for a composed net, which
    module came from where: ``taskspace.compose``)."""
    extra = {"composition": composition} if composition is not None else {}
    save_checkpoint(
        path,
        {
            **extra,
            "schema": CHECKPOINT_SCHEMA,
            "taskspace_version": __version__,
            "spec": dict(net.spec),
            "state_dict": net.state_dict(),
            "normalization": normalization,
            "task_classes": list(task_classes),
            "config_hash": config_hash,
        },
    )


def _read(path: str | os.PathLike[str]) -> dict[str, Any]:
    checkpoint = load_checkpoint(path)
    if checkpoint.get("schema") != CHECKPOINT_SCHEMA or "spec" not in checkpoint:
        raise CheckpointError(
            f"'{path}' is not a taskspace model checkpoint (schema {checkpoint.get('schema')!r}, "
            f"expected {CHECKPOINT_SCHEMA}); train it again with this version"
        )
    return checkpoint


def load_model(path: str | os.PathLike[str]) -> tuple[ModularNet, dict[str, Any]]:
    """Rebuild the saved net (eval mode) and return it with the checkpoint's metadata."""
    checkpoint = _read(path)
    spec = checkpoint["spec"]
    net = get_model(
        spec["architecture"],
        num_classes=spec["num_classes"],
        in_channels=spec["in_channels"],
        width=spec["width"],
        cut_points=spec["cut_points"],
        depth=spec.get("depth"),
        adapters={int(index): int(channels) for index, channels in spec.get("adapters", {}).items()},
        order=spec.get("order"),
    )
    try:
        net.load_state_dict(checkpoint["state_dict"])
    except RuntimeError:
        raise CheckpointError(f"weights in '{path}' do not fit their own spec {spec}; the file is damaged") from None
    net.eval()
    return net, checkpoint


def load_hidden_from(net: ModularNet, path: str | os.PathLike[str]) -> dict[str, Any]:
    """Copy the hidden modules (and adapters) of checkpoint ``path`` into ``net`` (its output module stays new).

    Raises:
        CheckpointError: the checkpoint was saved from another architecture, width, input or cut.
    """
    checkpoint = _read(path)
    saved, wanted = checkpoint["spec"], net.spec
    if saved.get("in_channels") != wanted.get("in_channels"):
        raise CheckpointError(
            f"checkpoint '{Path(path)}' takes images with {saved.get('in_channels')} channels, this dataset has "
            f"{wanted.get('in_channels')}; fine-tune from a checkpoint trained on the same kind of images"
        )
    for key in ("architecture", "width", "cut_points"):
        if saved.get(key) != wanted.get(key):
            raise CheckpointError(
                f"checkpoint '{Path(path)}' was saved from {key}={saved.get(key)!r}, but this run uses "
                f"{key}={wanted.get(key)!r}; pass --{key.replace('_', '-')} {saved.get(key)} or another checkpoint"
            )
    if any(saved.get(key) != wanted.get(key) for key in ("depth", "adapters")):
        raise CheckpointError(f"checkpoint '{Path(path)}' is a composed net (depth {saved.get('depth')}, adapters "
                              f"{saved.get('adapters')}) and the net built here is not; build it with "
                              "taskspace.training.build_model from a config whose init_from names that checkpoint")
    hidden_state = {
        name.removeprefix("hidden."): tensor
        for name, tensor in checkpoint["state_dict"].items()
        if name.startswith("hidden.")
    }
    adapter_state = {name.removeprefix("adapters."): tensor for name, tensor in checkpoint["state_dict"].items()
                     if name.startswith("adapters.")}
    try:
        net.adapters.load_state_dict(adapter_state)
        net.hidden.load_state_dict(hidden_state)
    except RuntimeError:
        raise CheckpointError(f"hidden weights in '{path}' do not fit this architecture; the file is damaged") from None
    return checkpoint

