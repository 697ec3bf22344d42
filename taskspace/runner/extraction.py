"""Forward passes of the score stage, shared between targets: one pass per (source, training image).

The targets of a task space share classes (the 15 default tasks are the pairs of 6 classes), so the
images a source network sees over all its targets overlap. Each target's score sample is therefore
drawn per class, from one fixed ordering of that class's training images (the same for every target
that has the class), and a source's forward passes over the union of all targets' samples are done
once and kept in a *bank*; scoring a (source, target) cell gathers the target's rows from it.

Per source, the default space then needs forward passes over 6 classes' images instead of 15
targets' (5 times fewer with all images; with a sample of n per target about n·6/2·1.2 instead of
15·n). The features are those of a per-target forward pass: every image is passed on its own
through a network in eval mode.
"""

from __future__ import annotations

import functools
import hashlib
import os
import time
import zipfile
from pathlib import Path

import numpy as np

from taskspace.data import ImageDataset, ImageSplit
from taskspace.errors import DataError, TaskspaceError
from taskspace.features import SourceOutputs, source_outputs
from taskspace.io import read_json, read_npz, sha256_of_file, write_json, write_npz
from taskspace.runner.handles import TrainedRun
from taskspace.tasks import TaskSplits
from taskspace.training.seeds import derive_seed

__all__ = ["class_order", "score_positions", "bank_indices", "bank_path", "bank_key", "extract_bank",
           "bank_outputs", "write_bank", "bank_is_current", "read_bank", "gather", "gather_rows"]

_BANK_FORMAT = 1


def class_order(run: TrainedRun, class_name: str) -> np.ndarray:
    """Indices of ``class_name``'s images in the dataset's training split, in the run's fixed random order."""
    dataset = run.dataset()
    label = dataset.class_names.index(class_name)
    members = np.flatnonzero(np.asarray(dataset.train.labels) == label)
    rng = np.random.default_rng(derive_seed(run.grid.seed, "score-order", class_name))
    return members[rng.permutation(len(members))]


def score_positions(run: TrainedRun, splits: TaskSplits) -> np.ndarray:
    """Positions in ``splits.train`` of the images the estimators see for this target (sorted).

    All of them when the grid's ``score_samples`` is unset or not smaller than the split. Otherwise
    ``score_samples`` images split evenly over the target's classes (the remainder to the first
    ones), each class's taken first-come from :func:`class_order` among the target's training
    images, so targets that share a class share its sampled images.
    """
    count = len(splits.train.labels)
    samples = run.grid.score_samples
    if samples is None or samples >= count:
        return np.arange(count)
    classes = splits.task.classes
    chosen = []
    for label, class_name in enumerate(classes):
        quota = samples // len(classes) + (1 if label < samples % len(classes) else 0)
        order = class_order(run, class_name)
        in_target = order[np.isin(order, splits.train_indices)][:quota]
        chosen.append(in_target)
    wanted = np.concatenate(chosen)
    by_index = np.argsort(splits.train_indices)
    positions = by_index[np.searchsorted(splits.train_indices, wanted, sorter=by_index)]
    return np.sort(positions.astype(np.int64))


#: bank_indices per (run folder, grid hash, data root), once per process.
_BANK_INDICES: dict[tuple[str, str, str | None], np.ndarray] = {}


def bank_indices(run: TrainedRun) -> np.ndarray:
    """Sorted dataset training indices that some target of the space scores (the same for every source)."""
    key = (str(run.folder), run.identity, run.data_root)
    if key not in _BANK_INDICES:
        needed = []
        for task_id in run.space.ids:
            splits = run.splits(task_id)
            needed.append(splits.train_indices[score_positions(run, splits)])
        _BANK_INDICES[key] = np.unique(np.concatenate(needed)).astype(np.int64)
    return _BANK_INDICES[key]


def bank_path(run: TrainedRun, source: str) -> Path:
    return run.bank_file(source)


def checkpoint_digest(run: TrainedRun, source: str) -> str:
    """The SHA-256 of ``source``'s checkpoint (read once per version of the file)."""
    path = run.checkpoint(source)
    stat = os.stat(path)
    return _file_digest(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=256)
def _file_digest(path: str, mtime_ns: int, size: int) -> str:
    return sha256_of_file(path)


def bank_key(run: TrainedRun, source: str) -> str:
    """SHA-256 over the source checkpoint and the images the bank must hold."""
    digest = hashlib.sha256()
    digest.update(f"bank={_BANK_FORMAT};checkpoint={checkpoint_digest(run, source)};".encode())
    digest.update(np.ascontiguousarray(bank_indices(run), dtype=np.int64).tobytes())
    digest.update(repr(run.dataset().train.images.shape).encode())
    return digest.hexdigest()


def extract_bank(run: TrainedRun, source: str) -> float:
    """Forward passes of ``source`` over :func:`bank_indices`, written atomically; returns their seconds."""
    indices = bank_indices(run)
    outputs, seconds = bank_outputs(run.checkpoint(source), run.dataset(), indices, device=run.forward_device)
    write_bank(run, source, key=bank_key(run, source), indices=indices, outputs=outputs, seconds=seconds)
    return seconds


def bank_outputs(checkpoint: str | os.PathLike[str], dataset: ImageDataset,
                 indices: np.ndarray, *, device: str = "cpu") -> tuple[SourceOutputs, float]:
    """The checkpoint's outputs on the dataset's training images at ``indices`` (forward passes on
    ``device``), and the seconds they took."""
    from taskspace.training.checkpoints import load_model

    net, saved = load_model(checkpoint)
    images = ImageSplit(dataset.train.images[indices], np.asarray(dataset.train.labels)[indices])
    started = time.perf_counter()
    outputs = source_outputs(net, images, normalization=saved["normalization"], device=device)
    return outputs, time.perf_counter() - started


def write_bank(run: TrainedRun, source: str, *, key: str, indices: np.ndarray, outputs: SourceOutputs,
               seconds: float) -> None:
    """Write a source's bank and its small record (read first by :func:`bank_is_current`), atomically."""
    path = bank_path(run, source)
    write_npz(path, {"key": np.array(key), "indices": indices, "features": outputs.features,
                     "logits": outputs.logits, "pre_activations": outputs.pre_activations})
    write_json(path.with_suffix(".json"), {"source": source, "key": key, "images": int(len(indices)),
                                           "seconds": seconds})


def bank_is_current(run: TrainedRun, source: str) -> bool:
    """Whether the source's bank was written for this checkpoint and these images (reads its small record)."""
    record_path = bank_path(run, source).with_suffix(".json")
    if not record_path.is_file() or not bank_path(run, source).is_file():
        return False
    try:
        return bool(read_json(record_path).get("key") == bank_key(run, source))
    except (TaskspaceError, AttributeError):
        return False


def read_bank(run: TrainedRun, source: str) -> dict[str, np.ndarray] | None:
    """The source's bank if it is present, readable and current; else None."""
    path = bank_path(run, source)
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    arrays = _read_bank_file(str(path), stat.st_mtime_ns, stat.st_size)
    if arrays is None or "key" not in arrays or str(arrays["key"]) != bank_key(run, source):
        return None
    return arrays if _complete(arrays) else None


def _complete(arrays: dict[str, np.ndarray]) -> bool:
    """Whether a bank holds one row of every output per image it lists (a damaged one is made again)."""
    names = ("indices", "features", "logits", "pre_activations")
    if any(name not in arrays for name in names):
        return False
    count = len(arrays["indices"])
    return all(arrays[name].ndim == 2 and arrays[name].shape[0] == count for name in names[1:])


@functools.lru_cache(maxsize=2)
def _read_bank_file(path: str, mtime_ns: int, size: int) -> dict[str, np.ndarray] | None:
    del mtime_ns, size  # part of the cache key: a rewritten file is read again
    try:
        return read_npz(path)
    except (DataError, KeyError, ValueError, OSError, zipfile.BadZipFile):
        return None


def gather_rows(bank: dict[str, np.ndarray], splits: TaskSplits, positions: np.ndarray) -> np.ndarray:
    """The bank rows of the target's training images at ``positions``."""
    wanted = splits.train_indices[positions]
    held = bank["indices"]
    rows = np.minimum(np.searchsorted(held, wanted), max(len(held) - 1, 0))
    if len(held) == 0 or not np.array_equal(held[rows], wanted):
        raise DataError(
            "a source's feature bank lacks images this target needs; remove the bank and rerun `taskspace matrix`"
        )
    return np.asarray(rows)


def gather(bank: dict[str, np.ndarray], splits: TaskSplits, positions: np.ndarray) -> SourceOutputs:
    """The target's rows of a bank: outputs for ``splits.train`` at ``positions``, with the target's labels."""
    rows = gather_rows(bank, splits, positions)
    return SourceOutputs(bank["features"][rows], bank["logits"][rows],
                         np.asarray(splits.train.labels[positions], dtype=np.int64), bank["pre_activations"][rows])
