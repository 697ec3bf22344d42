"""Augmentation on batches of image tensors, without a Python loop over images."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from taskspace.errors import ConfigError

__all__ = ["random_crop_flip"]


def random_crop_flip(
    images: torch.Tensor,
    *,
    generator: torch.Generator,
    padding: int = 4,
    flip: bool = True,
) -> torch.Tensor:
    """Random crop after zero padding, and random horizontal flip, drawn per image.

    Each image is zero-padded by ``padding`` pixels on every side, an ``H x W`` window is cut at a
    uniformly drawn offset in ``0..2*padding`` (rows and columns drawn independently), and with
    ``flip`` the window is mirrored left-right with probability 1/2. The whole batch is done with
    one pad and one gather. The random draws come from ``generator`` in a fixed order (row
    offsets, column offsets, flips), so equal generator states give equal results; the generator
    may live on another device than ``images``.

    Shape:
        - images: ``(B, C, H, W)``, floating point.
        - output: ``(B, C, H, W)``, same dtype and device; a new tensor (the input is not modified).

    Args:
        images: the batch.
        generator: source of randomness.
        padding: zero padding on each side, in pixels (0 disables the crop).
        flip: also flip horizontally at random.

    Returns:
        The augmented batch.

    Raises:
        ValueError: ``images`` is not a 4-D floating point tensor.
        ConfigError: ``padding`` is negative.
    """
    if images.ndim != 4 or not images.is_floating_point():
        raise ValueError(
            f"images must be a float tensor of shape (B, C, H, W), got {images.dtype} {tuple(images.shape)}"
        )
    if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
        raise ConfigError(f"padding must be a non-negative integer, got {padding!r}")
    batch, channels, height, width = images.shape
    padded_height, padded_width = height + 2 * padding, width + 2 * padding

    draw_device = generator.device
    row_offsets = torch.randint(0, 2 * padding + 1, (batch,), generator=generator, device=draw_device)
    column_offsets = torch.randint(0, 2 * padding + 1, (batch,), generator=generator, device=draw_device)
    row_offsets, column_offsets = row_offsets.to(images.device), column_offsets.to(images.device)

    columns = torch.arange(width, device=images.device).expand(batch, width)
    if flip:
        flipped = torch.randint(0, 2, (batch,), generator=generator, device=draw_device).to(images.device).bool()
        columns = torch.where(flipped[:, None], width - 1 - columns, columns)
    rows = row_offsets[:, None] + torch.arange(height, device=images.device)  # (B, H)
    columns = column_offsets[:, None] + columns  # (B, W)

    # One gather over the flattened padded image is far faster than 4-way advanced indexing.
    padded = F.pad(images, (padding, padding, padding, padding)).reshape(batch, channels, padded_height * padded_width)
    flat_index = (rows[:, :, None] * padded_width + columns[:, None, :]).reshape(batch, 1, height * width)
    gathered = torch.gather(padded, 2, flat_index.expand(batch, channels, height * width))
    return gathered.reshape(batch, channels, height, width)
