"""Forward passes of a frozen source network over target data, cached by content hash.

For one (source checkpoint, target images) pair this computes, with forward passes only, the
source trunk's features φ (unit norm, what the kernel scores see) and the source classifier's logits
(what LEEP and NCE need). The cache key hashes the checkpoint file, the target's image bytes and
labels, and the input normalisation, so a cached entry can never be stale.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy.special import softmax

from taskspace.data import ImageSplit
from taskspace.errors import DataError
from taskspace.io import read_npz, sha256_of_file, write_npz
from taskspace.models import ModularNet
from taskspace.training.tensors import to_tensor_split

__all__ = ["SourceOutputs", "source_outputs", "outputs_cache_key", "cached_source_outputs"]

_CACHE_FORMAT = 2


@dataclass(frozen=True)
class SourceOutputs:
    """What a frozen source network says about target images.

    Attributes:
        features: float32 (n, d), φ of the trunk's output (rows of unit norm, or zero).
        logits: float32 (n, c_source), the source classifier's outputs.
        labels: int64 (n,), the target labels.
        pre_activations: float32 (n, d), the trunk's output globally average-pooled, before φ's ReLU
            and normalisation (signed: it keeps what the ReLU discards); None where read from the store,
            which keeps φ and the logits only.
    """

    features: np.ndarray
    logits: np.ndarray
    labels: np.ndarray
    pre_activations: np.ndarray | None = None

    def probabilities(self) -> np.ndarray:
        """Softmax of the logits, float64 (n, c_source)."""
        return np.asarray(softmax(self.logits.astype(np.float64), axis=1))

    def subset(self, positions: np.ndarray) -> SourceOutputs:
        return SourceOutputs(self.features[positions], self.logits[positions], self.labels[positions],
                             None if self.pre_activations is None else self.pre_activations[positions])


@torch.no_grad()
def source_outputs(
    net: ModularNet, split: ImageSplit, *, normalization: dict[str, list[float]], batch_size: int = 500,
    device: torch.device | str = "cpu",
) -> SourceOutputs:
    """Features and logits of ``net`` (eval mode, float32, on ``device``) on every image of ``split``."""
    net.eval().to(device)
    tensors = to_tensor_split(split, mean=normalization["mean"], std=normalization["std"], device=device)
    features, logits, pooled = [], [], []
    for start in range(0, len(tensors), batch_size):
        trunk = net.trunk(tensors.images_at(slice(start, start + batch_size)))
        features.append(net.output.feature_map(trunk))
        logits.append(net.output.linear(features[-1]))
        pooled.append(trunk.mean(dim=(2, 3)) if trunk.dim() == 4 else trunk.flatten(1))
    empty = torch.zeros((0, net.feature_dim), device=device)
    return SourceOutputs(
        features=torch.cat(features or [empty]).cpu().numpy().astype(np.float32),
        logits=torch.cat(logits or [torch.zeros((0, net.num_classes), device=device)]).cpu().numpy()
        .astype(np.float32),
        labels=np.asarray(split.labels, dtype=np.int64),
        pre_activations=torch.cat(pooled or [empty]).cpu().numpy().astype(np.float32),
    )


def outputs_cache_key(*, checkpoint_digest: str, split: ImageSplit, normalization: dict[str, list[float]]) -> str:
    """SHA-256 over the checkpoint's digest, the target images and labels, and the normalisation."""
    digest = hashlib.sha256()
    digest.update(f"format={_CACHE_FORMAT};checkpoint={checkpoint_digest};".encode())
    digest.update(repr(split.images.shape).encode())
    digest.update(np.ascontiguousarray(split.images).tobytes())
    digest.update(np.ascontiguousarray(split.labels, dtype=np.int64).tobytes())
    digest.update(repr((normalization["mean"], normalization["std"])).encode())
    return digest.hexdigest()


def cached_source_outputs(
    checkpoint: str | os.PathLike[str], split: ImageSplit, *, cache_dir: str | os.PathLike[str],
    device: torch.device | str = "cpu",
) -> SourceOutputs:
    """:func:`source_outputs` of the checkpoint's net on ``split``, read from or written to ``cache_dir``.

    The forward passes run on ``device``; the key leaves the device out, since the outputs are the
    same function of the same content wherever they are computed.
    """
    from taskspace.training.checkpoints import load_model

    net, saved = load_model(checkpoint)
    normalization = saved["normalization"]
    key = outputs_cache_key(checkpoint_digest=sha256_of_file(checkpoint), split=split, normalization=normalization)
    path = Path(cache_dir) / f"{key}.npz"
    if path.is_file():
        try:
            arrays = read_npz(path)
            cached = SourceOutputs(arrays["features"], arrays["logits"], arrays["labels"], arrays["pre_activations"])
        except (DataError, KeyError):
            cached = None  # a damaged cache entry is recomputed and overwritten
        if cached is not None and _fits(cached, net, split):
            return cached
    outputs = source_outputs(net, split, normalization=normalization, device=device)
    assert outputs.pre_activations is not None
    write_npz(path, {"features": outputs.features, "logits": outputs.logits, "labels": outputs.labels,
                     "pre_activations": outputs.pre_activations})
    return outputs


def _fits(outputs: SourceOutputs, net: ModularNet, split: ImageSplit) -> bool:
    """Whether cached outputs have the shapes this net gives on this split (else they are recomputed)."""
    count = len(split.labels)
    return (outputs.features.shape == (count, net.feature_dim) and outputs.logits.shape == (count, net.num_classes)
            and outputs.pre_activations is not None and outputs.pre_activations.shape[0] == count
            and np.array_equal(outputs.labels, np.asarray(split.labels, dtype=np.int64)))
