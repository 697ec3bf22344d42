"""Model registry: ``list_models()`` and ``get_model(name, ...)`` are the only lookups."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from torch import nn

from taskspace.errors import ConfigError
from taskspace.models.architectures import (
    Stages,
    digits_cnn_stages,
    resnet18_stages,
    small_cnn_stages,
    uniform_cnn_stages,
)
from taskspace.models.modular import ChannelAdapter, FeatureMap, ModularNet, OutputModule
from taskspace.registry import Registry

__all__ = ["ModularNet", "OutputModule", "FeatureMap", "ChannelAdapter", "Stages", "list_models", "get_model",
           "stage_width", "MODELS"]

MODELS: Registry[Callable[..., Stages]] = Registry("architecture")
MODELS.register("small_cnn")(small_cnn_stages)
MODELS.register("resnet18")(resnet18_stages)
MODELS.register("digits_cnn")(digits_cnn_stages)
MODELS.register("uniform_cnn")(uniform_cnn_stages)


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
    depth: int | None = None,
    adapters: Mapping[int, int] | None = None,
    order: Sequence[int] | None = None,
) -> ModularNet:
    """Build architecture ``name`` as a :class:`ModularNet`.

    Args:
        name: a registered architecture (see :func:`list_models`).
        num_classes: outputs of the output module.
        in_channels: image channels (3 for CIFAR-10, 1 for the digits).
        width: channels of the first stage (each architecture has its own default).
        cut_points: stage boundaries where hidden modules are cut; ``()`` = one hidden module.
        depth: stages kept from the start (default all): a net cut short, whose output module reads the
            last kept stage (its width found from that stage's last convolution or normalisation).
        adapters: hidden module index -> channels of a :class:`~taskspace.models.modular.ChannelAdapter`
            placed before it (composed nets).
        order: the hidden modules (of the cut at ``cut_points``) in the order the net runs them, a module
            repeated where it is listed twice (an inverted net; see :class:`ModularNet`).
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
    stages, feature_dim = built.stages, built.feature_dim
    if depth is not None:
        if isinstance(depth, bool) or not 1 <= int(depth) <= len(stages):
            raise ConfigError(f"{name} has {len(stages)} stages; depth must be 1 to {len(stages)}, got {depth}")
        stages = stages[: int(depth)]
        feature_dim = stage_width(stages[-1]) if int(depth) < len(built.stages) else built.feature_dim
    spec: dict[str, Any] = {
        "architecture": name,
        "num_classes": num_classes,
        "in_channels": in_channels,
        "width": width,
        "cut_points": sorted(int(point) for point in cut_points),
    }
    if depth is not None and int(depth) < len(built.stages):
        spec["depth"] = int(depth)
    if adapters:
        spec["adapters"] = {str(int(index)): int(channels) for index, channels in sorted(adapters.items())}
    if order is not None:
        spec["order"] = [int(index) for index in order]
    return ModularNet(stages, feature_dim=feature_dim, num_classes=num_classes, cut_points=cut_points, spec=spec,
                      adapters=adapters, order=order)


def stage_width(stage: nn.Module) -> int:
    """Channels a stage outputs: those of its last convolution or normalisation layer."""
    width = None
    for module in stage.modules():
        if isinstance(module, (nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm)):
            width = getattr(module, "num_features", None) or getattr(module, "num_channels", None)
        elif isinstance(module, nn.Conv2d):
            width = module.out_channels
    if width is None:
        raise ConfigError("a stage with no convolution or normalisation layer has no known width")
    return int(width)
