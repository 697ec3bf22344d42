"""Augmentation on batches of image tensors, without a Python loop over images."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from taskspace.errors import ConfigError

__all__ = ["random_crop_flip", "CropFlipDraws", "draw_crop_flip", "apply_crop_flip"]


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
    draws = draw_crop_flip(len(images), generator=generator, padding=padding, flip=flip)
    return apply_crop_flip(images, draws.to(images.device))


@dataclass(frozen=True)
class CropFlipDraws:
    """The random choices of :func:`random_crop_flip` for a batch: offsets in ``0..2*padding`` and flips.

    Drawing them apart from the images lets a trainer draw a whole epoch's at once and move them to
    the images' device in one copy; equal draws give equal results on any device.
    """

    row_offsets: torch.Tensor
    column_offsets: torch.Tensor
    flips: torch.Tensor | None
    padding: int

    def to(self, device: torch.device | str) -> CropFlipDraws:
        return CropFlipDraws(self.row_offsets.to(device), self.column_offsets.to(device),
                             None if self.flips is None else self.flips.to(device), self.padding)

    @classmethod
    def concatenate(cls, parts: list[CropFlipDraws]) -> CropFlipDraws:
        """The draws of several batches (of one padding), end to end."""
        flips = [part.flips for part in parts if part.flips is not None]
        return cls(torch.cat([part.row_offsets for part in parts]), torch.cat([part.column_offsets for part in parts]),
                   torch.cat(flips) if flips else None, parts[0].padding)

    def __getitem__(self, rows: slice) -> CropFlipDraws:
        return CropFlipDraws(self.row_offsets[rows], self.column_offsets[rows],
                             None if self.flips is None else self.flips[rows], self.padding)


def draw_crop_flip(
    batch: int, *, generator: torch.Generator, padding: int = 4, flip: bool = True
) -> CropFlipDraws:
    """Draw a batch's crop offsets and flips from ``generator`` (row offsets, column offsets, flips).

    Raises:
        ConfigError: ``padding`` is negative.
    """
    if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
        raise ConfigError(f"padding must be a non-negative integer, got {padding!r}")
    device = generator.device
    row_offsets = torch.randint(0, 2 * padding + 1, (batch,), generator=generator, device=device)
    column_offsets = torch.randint(0, 2 * padding + 1, (batch,), generator=generator, device=device)
    flips = torch.randint(0, 2, (batch,), generator=generator, device=device).bool() if flip else None
    return CropFlipDraws(row_offsets, column_offsets, flips, padding)


def apply_crop_flip(images: torch.Tensor, draws: CropFlipDraws) -> torch.Tensor:
    """Crop and flip ``images`` (B, C, H, W) as ``draws`` (on the images' device) say; a new tensor."""
    batch, channels, height, width = images.shape
    padding = draws.padding
    padded_height, padded_width = height + 2 * padding, width + 2 * padding
    columns = torch.arange(width, device=images.device).expand(batch, width)
    if draws.flips is not None:
        columns = torch.where(draws.flips[:, None], width - 1 - columns, columns)
    rows = draws.row_offsets[:, None] + torch.arange(height, device=images.device)  # (B, H)
    columns = draws.column_offsets[:, None] + columns  # (B, W)

    # One gather over the flattened padded image is far faster than 4-way advanced indexing.
    padded = F.pad(images, (padding, padding, padding, padding)).reshape(batch, channels, padded_height * padded_width)
    flat_index = (rows[:, :, None] * padded_width + columns[:, None, :]).reshape(batch, 1, height * width)
    gathered = torch.gather(padded, 2, flat_index.expand(batch, channels, height * width))
    return gathered.reshape(batch, channels, height, width)
