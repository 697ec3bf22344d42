"""Every layer's features of a zoo source over the dataset's images, extracted once and kept by content.

A store holds, for one source and one split of the dataset (``train`` or ``test``), the pooled
output of each of the source's layers (and its logits, where it has a classifier) on a set of the
split's images. Its key hashes the source's content (specs and the SHA-256 of its files), the
dataset's images and the split: a changed weights file or dataset can never be read from a stale
store. Asking for images it lacks extends it with forward passes over those images only. Writes are
atomic: an interrupted extraction leaves the store as it was.

Features extracted elsewhere (a ``features`` source) are read from the user's NPZ files instead and
checked against the target: row count, labels, finite values.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import numpy as np

from taskspace.errors import DataError
from taskspace.io import canonical_json, read_npz, write_npz
from taskspace.zoo.spec import SourceSpec

__all__ = ["dataset_fingerprint", "store_key", "layer_features", "external_features"]

_STORE_FORMAT = 1
_LOGITS = "__logits__"


#: Dataset fingerprints by (name, data root), computed once per process.
_FINGERPRINTS: dict[tuple[str, str | None], str] = {}


def dataset_fingerprint(dataset: Any, name: str, data_root: str | None) -> str:
    """SHA-256 of the dataset's images and labels (computed once per process and dataset)."""
    key = (name, data_root)
    if key not in _FINGERPRINTS:
        digest = hashlib.sha256(name.encode())
        for split in (dataset.train, dataset.test):
            digest.update(repr(split.images.shape).encode())
            digest.update(np.ascontiguousarray(split.images).tobytes())
            digest.update(np.ascontiguousarray(split.labels).tobytes())
        _FINGERPRINTS[key] = digest.hexdigest()
    return _FINGERPRINTS[key]


def store_key(source_record: dict[str, Any], fingerprint: str, split: str) -> str:
    digest = hashlib.sha256(f"zoo-store={_STORE_FORMAT};split={split};data={fingerprint};".encode())
    digest.update(canonical_json(source_record).encode())
    return digest.hexdigest()[:32]


def _read_store(path: Path, key: str, layers: tuple[str, ...]) -> dict[str, np.ndarray] | None:
    if not path.is_file():
        return None
    try:
        arrays = read_npz(path)
    except DataError:
        return None  # damaged: extracted again
    if str(arrays.get("key", "")) != key or "indices" not in arrays:
        return None
    count = len(arrays["indices"])
    names = [f"layer{i}" for i in range(len(layers))]
    if any(name not in arrays or arrays[name].ndim != 2 or len(arrays[name]) != count for name in names):
        return None
    return arrays


def layer_features(
    spec: SourceSpec,
    *,
    source_record: dict[str, Any],
    dataset: Any,
    fingerprint: str,
    split: str,
    indices: np.ndarray,
    folder: Path,
    device: str = "cpu",
    batch_size: int = 256,
    network: Any = None,
) -> tuple[dict[str, np.ndarray], np.ndarray | None, float]:
    """Each layer's features (and the logits, or None) of the split's images at ``indices``, in that order.

    Returns:
        ``({layer: (len(indices), d) float32}, logits (len(indices), c) or None, seconds of forward passes
        this call did)``.
    """
    key = store_key(source_record, fingerprint, split)
    path = folder / f"{key}.npz"
    layers = spec.layers
    stored = _read_store(path, key, layers)
    have = stored["indices"] if stored is not None else np.zeros(0, dtype=np.int64)
    wanted = np.unique(np.asarray(indices, dtype=np.int64))
    missing = np.setdiff1d(wanted, have)
    seconds = 0.0
    if len(missing):
        from taskspace.zoo.networks import LOGITS, load_source

        loaded = network if network is not None else load_source(spec)
        images = getattr(dataset, split).images[missing]
        began = time.perf_counter()
        batches = list(loaded.outputs(images, batch_size=batch_size, device=device))
        seconds = time.perf_counter() - began
        fresh = {f"layer{i}": np.concatenate([batch[layer] for batch in batches]) for i, layer in enumerate(layers)}
        if spec.logits:
            fresh[_LOGITS] = np.concatenate([batch[LOGITS] for batch in batches])
        for name, values in fresh.items():
            if not np.isfinite(values).all():
                raise DataError(f"source '{spec.name}' gives non-finite values at {_layer_name(name, layers)}; check "
                                "its weights and input normalisation")
        merged_indices = np.concatenate([have, missing])
        order = np.argsort(merged_indices, kind="stable")
        arrays: dict[str, np.ndarray] = {"key": np.array(key), "indices": merged_indices[order]}
        for name, values in fresh.items():
            old = stored[name] if stored is not None and name in stored else np.zeros((0, values.shape[1]), np.float32)
            arrays[name] = np.concatenate([old, values.astype(np.float32)])[order]
        write_npz(path, arrays)
        stored = arrays
    assert stored is not None
    rows = np.searchsorted(stored["indices"], indices)
    features = {layer: stored[f"layer{i}"][rows] for i, layer in enumerate(layers)}
    logits = stored[_LOGITS][rows] if spec.logits and _LOGITS in stored else None
    return features, logits, seconds


def _layer_name(name: str, layers: tuple[str, ...]) -> str:
    return "its output" if name == _LOGITS else f"layer '{layers[int(name[5:])]}'"


def external_features(spec: SourceSpec, *, target: str, layer: str, split: str,
                      labels: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """A ``features`` source's NPZ for one target: ``features`` (n, d), ``labels`` (n,), optional ``probs``.

    Raises:
        DataError: a missing file, a row count or labels that do not match the target, non-finite values,
            probabilities whose rows do not sum to 1.
    """
    path = spec.features_file(target=target, layer=layer, split=split)
    where = f"source '{spec.name}': '{path}'"
    if split != "train" and "{split}" not in spec.reference:
        raise DataError(f"source '{spec.name}': the {split} split's features are needed, and its template "
                        f"'{spec.reference}' names one file per target (the train split's); put {{split}} in the "
                        "template and write both splits' files, or bring measured results with "
                        "'taskspace truth RUN --import FILE'")
    if not path.is_file():
        raise DataError(f"{where} does not exist; write the {split} features of target '{target}' there "
                        "(arrays features[n,d], labels[n], optional probs[n,c])")
    arrays = read_npz(path)
    if "features" not in arrays or "labels" not in arrays:
        raise DataError(f"{where} lacks {'features' if 'features' not in arrays else 'labels'}; save arrays "
                        "features[n,d] and labels[n] with numpy.savez")
    features, given = np.asarray(arrays["features"]), np.asarray(arrays["labels"])
    if features.ndim != 2 or features.dtype.kind not in "fiu":
        raise DataError(f"{where}: features must be a 2-D numeric array (n, d), got shape {features.shape}")
    if len(features) != len(labels) or given.shape != labels.shape:
        raise DataError(f"{where} has {len(features)} rows and {len(given)} labels but target '{target}' has "
                        f"{len(labels)} {split} images; extract one row per image, in the dataset's order")
    if not np.array_equal(given.astype(np.int64), labels):
        first = int(np.flatnonzero(given.astype(np.int64) != labels)[0])
        raise DataError(f"{where}: labels differ from target '{target}' at row {first} ({int(given[first])} vs "
                        f"{int(labels[first])}); list the images in the dataset's order with labels 0..C-1 in the "
                        "task's class order")
    if not np.isfinite(features).all():
        raise DataError(f"{where}: features hold NaN or infinite values; extract them again")
    probs = arrays.get("probs")
    if probs is not None:
        probs = np.asarray(probs, dtype=np.float64)
        if probs.ndim != 2 or len(probs) != len(labels) or not np.isfinite(probs).all() or (probs < 0).any() \
                or not np.allclose(probs.sum(axis=1), 1.0, atol=1e-3):
            raise DataError(f"{where}: probs must be (n, c) probabilities, each row summing to 1")
    return features.astype(np.float32), probs
