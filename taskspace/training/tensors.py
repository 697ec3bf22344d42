"""Images to normalised tensors, and mini-batch index streams."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from taskspace.data import ImageSplit

__all__ = ["TensorSplit", "channel_statistics", "to_tensor_split", "minibatch_indices"]


@dataclass(frozen=True)
class TensorSplit:
    """Normalised images (float32, N×C×H×W, channels-last memory) and int64 labels."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])


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
    """Normalise a split with the given per-channel statistics."""
    images = torch.from_numpy(np.ascontiguousarray(split.images)).to(device)
    images = images.permute(0, 3, 1, 2).float().div_(255.0)
    mean_tensor = torch.tensor(mean, dtype=torch.float32, device=device).view(1, -1, 1, 1)
    std_tensor = torch.tensor(std, dtype=torch.float32, device=device).view(1, -1, 1, 1)
    images = ((images - mean_tensor) / std_tensor).contiguous(memory_format=torch.channels_last)
    labels = torch.from_numpy(np.asarray(split.labels, dtype=np.int64)).to(device)
    return TensorSplit(images, labels)


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
