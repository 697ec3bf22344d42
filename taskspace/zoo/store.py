"""Every layer's features of a source over the dataset's images, extracted once and kept by content.

The one store of forward passes: a zoo source's layers (:func:`layer_features`) and a trained source's
φ and logits (:mod:`taskspace.runner.extraction`) are both kept here, and the ground truth reads the
rows the scores' forward passes made.

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
import zipfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from taskspace.errors import DataError
from taskspace.io import canonical_json, read_npz, write_npz
from taskspace.zoo.spec import SourceSpec

__all__ = ["dataset_fingerprint", "store_key", "read_store", "stored_rows", "stored_indices", "missing_indices",
           "extend_store", "layer_features", "external_features"]

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


def read_store(path: Path, key: str, names: Sequence[str]) -> dict[str, np.ndarray] | None:
    """The store at ``path`` if it is ``key``'s and holds one row of each of ``names`` per image it lists."""
    if not path.is_file():
        return None
    try:
        arrays = read_npz(path)
    except DataError:
        return None  # damaged: extracted again
    if str(arrays.get("key", "")) != key or "indices" not in arrays:
        return None
    count = len(arrays["indices"])
    if any(name not in arrays or arrays[name].ndim != 2 or len(arrays[name]) != count for name in names):
        return None
    return arrays


def stored_indices(folder: Path, key: str) -> np.ndarray:
    """The image indices the store ``key`` holds (none when it is missing, damaged or another key's)."""
    path = folder / f"{key}.npz"
    try:
        with np.load(path, allow_pickle=False) as archive:
            if "key" in archive.files and str(archive["key"]) == key and "indices" in archive.files:
                return np.asarray(archive["indices"])
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        pass
    return np.zeros(0, dtype=np.int64)


def missing_indices(folder: Path, key: str, indices: np.ndarray) -> np.ndarray:
    """The images of ``indices`` the store ``key`` lacks (sorted, unique)."""
    return np.setdiff1d(np.unique(np.asarray(indices, dtype=np.int64)), stored_indices(folder, key))


def extend_store(folder: Path, key: str, names: Sequence[str], indices: np.ndarray,
                 fresh: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The store ``key`` with ``fresh`` rows (one per image of ``indices``) added, written atomically.

    The rows of images it already holds are kept as they are; what a concurrent writer added in
    between is kept as well where this call's read saw it (the store is only ever a cache: a lost
    addition is computed again).
    """
    path = folder / f"{key}.npz"
    stored = read_store(path, key, names)
    have = stored["indices"] if stored is not None else np.zeros(0, dtype=np.int64)
    new = ~np.isin(indices, have)
    merged_indices = np.concatenate([have, np.asarray(indices, dtype=np.int64)[new]])
    order = np.argsort(merged_indices, kind="stable")
    arrays: dict[str, np.ndarray] = {"key": np.array(key), "indices": merged_indices[order]}
    for name in names:
        values = np.asarray(fresh[name], dtype=np.float32)[new]
        old = stored[name] if stored is not None else np.zeros((0, values.shape[1]), np.float32)
        arrays[name] = np.concatenate([old, values])[order]
    write_npz(path, arrays)
    return arrays


def stored_rows(folder: Path, key: str, names: Sequence[str], indices: np.ndarray,
                compute: Callable[[np.ndarray], Mapping[str, np.ndarray]],
                ) -> tuple[dict[str, np.ndarray], float]:
    """The rows ``names`` of the store ``key`` for the images at ``indices`` (in that order), after
    ``compute(missing)`` filled in the images it lacked (sorted indices in, one row per image out, finite:
    ``compute`` checks them and says whose they are); and the seconds ``compute`` took.
    """
    path = folder / f"{key}.npz"
    stored = read_store(path, key, names)
    have = stored["indices"] if stored is not None else np.zeros(0, dtype=np.int64)
    missing = np.setdiff1d(np.unique(np.asarray(indices, dtype=np.int64)), have)
    seconds = 0.0
    if len(missing):
        began = time.perf_counter()
        fresh = compute(missing)
        seconds = time.perf_counter() - began
        stored = extend_store(folder, key, names, missing, fresh)
    assert stored is not None
    rows = np.searchsorted(stored["indices"], indices)
    return {name: stored[name][rows] for name in names}, seconds


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
    layers = spec.layers
    names = [f"layer{i}" for i in range(len(layers))] + ([_LOGITS] if spec.logits else [])

    def compute(missing: np.ndarray) -> dict[str, np.ndarray]:
        from taskspace.zoo.networks import LOGITS, load_source

        loaded = network if network is not None else load_source(spec)
        images = getattr(dataset, split).images[missing]
        batches = list(loaded.outputs(images, batch_size=batch_size, device=device))
        fresh = {f"layer{i}": np.concatenate([batch[layer] for batch in batches]) for i, layer in enumerate(layers)}
        if spec.logits:
            fresh[_LOGITS] = np.concatenate([batch[LOGITS] for batch in batches])
        for name, values in fresh.items():
            if not np.isfinite(values).all():
                raise DataError(f"source '{spec.name}' gives non-finite values at {_layer_name(name, layers)}; check "
                                "its weights and input normalisation")
        return fresh

    rows, seconds = stored_rows(folder, key, names, indices, compute)
    features = {layer: rows[f"layer{i}"] for i, layer in enumerate(layers)}
    return features, rows.get(_LOGITS), seconds


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
