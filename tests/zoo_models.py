"""Networks named by the zoo tests' factory sources (``zoo_models:small_cnn``): a user's own module."""

from __future__ import annotations

from torch import nn


def small_cnn(num_classes: int = 3, width: int = 8, in_channels: int = 1) -> nn.Module:
    """Two conv blocks and a linear classifier; node names ``features.2`` and ``features.5``."""
    return nn.Sequential(
        nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
                      nn.Conv2d(width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU()),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2 * width, num_classes),
    )


def broken(**options: object) -> nn.Module:
    raise RuntimeError("this factory always fails")
