"""Images as tensors on the training device, normalised a batch at a time, and mini-batch index streams."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from taskspace.data import ImageSplit

__all__ = ["TensorSplit", "channel_statistics", "to_tensor_split", "minibatch_indices"]


@dataclass(frozen=True)
class TensorSplit:
    """A split kept as uint8 pixels on its device and normalised a batch at a time.

    The pixels take a quarter of the memory of float32 images, so a whole training split stays on
    the accelerator; :meth:`images_at` turns the rows a step needs into normalised float32
    (channels-last memory), with the same arithmetic, element by element, as normalising the whole
    split at once.

    Attributes:
        pixels: uint8 N×C×H×W (channels-last memory).
        labels: int64 N.
        mean, std: float32 1×C×1×1, on the pixels' device; values in [0, 1] units.
    """

    pixels: torch.Tensor
    labels: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def device(self) -> torch.device:
        return self.pixels.device

    def images_at(self, rows: torch.Tensor | slice) -> torch.Tensor:
        """Normalised float32 images (channels-last memory) of ``rows`` (an index tensor or a slice)."""
        images = self.pixels[rows].float().div_(255.0)
        return ((images - self.mean) / self.std).contiguous(memory_format=torch.channels_last)

    @property
    def images(self) -> torch.Tensor:
        """Every image normalised (a float32 copy: four times the pixels' memory)."""
        return self.images_at(slice(None))

    def subset(self, rows: torch.Tensor) -> TensorSplit:
        """The split's images and labels at ``rows``."""
        return TensorSplit(self.pixels[rows], self.labels[rows], self.mean, self.std)


def channel_statistics(images: np.ndarray) -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation of uint8 N×H×W×C images, scaled to [0, 1]."""
    if len(images) == 0:
        raise ValueError("cannot compute channel statistics of an empty split")
    flat = images.reshape(-1, images.shape[-1]).astype(np.float64) / 255.0
    mean = flat.mean(axis=0)
    std = np.maximum(flat.std(axis=0), 1e-6)
    return [float(value) for value in mean], [float(value) for value in std]


def to_tensor_split(
    split: ImageSplit, *, mean: list[float], std: list[float], device: torch.device | str = "cpu"
) -> TensorSplit:
    """A split's uint8 images (N×H×W×C) and labels moved to ``device``, to be normalised with ``mean``, ``std``."""
    pixels = torch.from_numpy(np.ascontiguousarray(split.images)).to(device).permute(0, 3, 1, 2)
    mean_tensor = torch.tensor(mean, dtype=torch.float32, device=device).view(1, -1, 1, 1)
    std_tensor = torch.tensor(std, dtype=torch.float32, device=device).view(1, -1, 1, 1)
    labels = torch.from_numpy(np.asarray(split.labels, dtype=np.int64)).to(device)
    return TensorSplit(pixels, labels, mean_tensor, std_tensor)


def minibatch_indices(
    count: int, batch_size: int, *, generator: torch.Generator | None = None, drop_last: bool = False
) -> list[torch.Tensor]:
    """Index tensors of consecutive mini-batches, shuffled by ``generator`` when given.

    With ``drop_last`` a final short batch is dropped, unless it would be the only batch.
    """
    order = torch.randperm(count, generator=generator) if generator is not None else torch.arange(count)
    batches = list(order.split(batch_size))
    if drop_last and len(batches) > 1 and len(batches[-1]) < batch_size:
        batches.pop()
    return batches
