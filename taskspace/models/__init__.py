"""Model registry: ``list_models()`` and ``get_model(name, ...)`` are the only lookups."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from taskspace.errors import ConfigError
from taskspace.models.architectures import (
    Stages,
    digits_cnn_stages,
    resnet18_stages,
    small_cnn_stages,
)
from taskspace.models.modular import FeatureMap, ModularNet, OutputModule
from taskspace.registry import Registry

__all__ = ["ModularNet", "OutputModule", "FeatureMap", "Stages", "list_models", "get_model", "MODELS"]

MODELS: Registry[Callable[..., Stages]] = Registry("architecture")
MODELS.register("small_cnn")(small_cnn_stages)
MODELS.register("resnet18")(resnet18_stages)
MODELS.register("digits_cnn")(digits_cnn_stages)


def list_models() -> list[str]:
    """Names of every registered architecture."""
    return MODELS.names()


def get_model(
    name: str,
    *,
    num_classes: int,
    in_channels: int = 3,
    width: int | None = None,
    cut_points: Sequence[int] = (),
) -> ModularNet:
    """Build architecture ``name`` as a :class:`ModularNet`.

    Args:
        name: a registered architecture (see :func:`list_models`).
        num_classes: outputs of the output module.
        in_channels: image channels (3 for CIFAR-10, 1 for the digits).
        width: channels of the first stage (each architecture has its own default).
        cut_points: stage boundaries where hidden modules are cut; ``()`` = one hidden module.
    """
    builder = MODELS.get(name)
    if num_classes < 2:
        raise ConfigError(f"num_classes must be at least 2, got {num_classes}")
    if width is not None and width < 1:
        raise ConfigError(f"width must be a positive number of channels, got {width}")
    arguments: dict[str, Any] = {"in_channels": in_channels}
    if width is not None:
        arguments["width"] = width
    built = builder(**arguments)
    spec = {
        "architecture": name,
        "num_classes": num_classes,
        "in_channels": in_channels,
        "width": width,
        "cut_points": sorted(int(point) for point in cut_points),
    }
    return ModularNet(
        built.stages, feature_dim=built.feature_dim, num_classes=num_classes, cut_points=cut_points, spec=spec
    )
