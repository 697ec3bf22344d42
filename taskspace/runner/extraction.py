"""Forward passes of a trained run's sources, kept in the one store and shared by the scores and the truth.

The targets of a task space share classes (the 15 default tasks are the pairs of 6 classes), so the
images a source network sees over all its targets overlap. Each target's score sample is therefore
drawn per class, from one fixed ordering of that class's training images (the same for every target
that has the class), and a source's forward passes over the union of all targets' samples are done
once and kept in the store (:mod:`taskspace.zoo.store`, φ and logits per dataset image, keyed by the
checkpoint's SHA-256, the dataset's content and the split). Scoring a (source, target) cell gathers
the target's rows (the source's *bank*: its rows of the score stage's images); the frozen ground truth
reads the target's training and test images from the same store, so no forward pass is made twice.

Per source, the default space then needs forward passes over 6 classes' images instead of 15
targets' (5 times fewer with all images; with a sample of n per target about n·6/2·1.2 instead of
15·n). The features are those of a per-target forward pass: every image is passed on its own
through a network in eval mode (batch composition changes no row).
"""

from __future__ import annotations

import functools
import hashlib
import os
import time
from pathlib import Path

import numpy as np

from taskspace.data import ImageDataset, ImageSplit
from taskspace.errors import DataError, TaskspaceError
from taskspace.features import SourceOutputs, source_outputs
from taskspace.io import read_json, sha256_of_file, write_json
from taskspace.runner.handles import TrainedRun
from taskspace.tasks import TaskSplits
from taskspace.training.seeds import derive_seed
from taskspace.zoo.store import dataset_fingerprint, extend_store, missing_indices, read_store, stored_rows

__all__ = ["class_order", "score_positions", "bank_indices", "bank_path", "bank_key", "extract_bank",
           "bank_is_current", "read_bank", "gather", "gather_rows", "store_key_of", "store_rows", "store_missing",
           "add_to_store", "record_bank_seconds", "truth_indices", "split_outputs", "STORE_NAMES"]

#: What the store keeps of a trained source: φ (the kernel feature map) and the classifier's logits.
STORE_NAMES = ("features", "logits")
_STORE_FORMAT = 1


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


def store_key_of(run: TrainedRun, source: str, split: str) -> str:
    """The store key of ``source``'s forward passes over the dataset's ``split``: the checkpoint's SHA-256,
    the dataset's content and the split (a retrained network or a changed dataset is never read stale)."""
    fingerprint = dataset_fingerprint(run.dataset(), run.space.dataset, run.data_root)
    digest = hashlib.sha256(f"trained-store={_STORE_FORMAT};split={split};data={fingerprint};"
                            f"checkpoint={checkpoint_digest(run, source)}".encode())
    return digest.hexdigest()[:32]


def _store_folder(run: TrainedRun) -> Path:
    return run.path("features")


def store_rows(run: TrainedRun, source: str, split: str, indices: np.ndarray) -> tuple[dict[str, np.ndarray], float]:
    """``source``'s φ and logits on the dataset's ``split`` images at ``indices`` (in that order), from the
    store; the images it lacks are passed through the network first (the seconds that took are returned)."""
    checkpoint = run.checkpoint(source)
    images = getattr(run.dataset(), split)

    def compute(missing: np.ndarray) -> dict[str, np.ndarray]:
        outputs, _ = _forward(checkpoint, images, missing, device=run.forward_device)
        if not (np.isfinite(outputs.features).all() and np.isfinite(outputs.logits).all()):
            raise DataError(f"the network of '{source}' gives non-finite outputs on the {split} images; train it "
                            f"again (remove '{checkpoint.parent}' and rerun `taskspace matrix`)")
        return {"features": outputs.features, "logits": outputs.logits}

    return stored_rows(_store_folder(run), store_key_of(run, source, split), STORE_NAMES,
                       np.asarray(indices, dtype=np.int64), compute)


def truth_indices(run: TrainedRun, split: str) -> np.ndarray:
    """Sorted indices of the dataset's ``split`` images the frozen ground truth reads (every target's
    training images for ``train``, its test images for ``test``): the same for every source."""
    name = "train_indices" if split == "train" else "test_indices"
    return np.unique(np.concatenate([getattr(run.splits(task_id), name) for task_id in run.space.ids]))


def bank_path(run: TrainedRun, source: str) -> Path:
    """The record of ``source``'s score-stage forward passes (its key, images and seconds)."""
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
    """The store key the source's bank lives under (its training split's forward passes)."""
    return store_key_of(run, source, "train")


def extract_bank(run: TrainedRun, source: str) -> float:
    """Forward passes of ``source`` over the :func:`bank_indices` the store lacks; returns their seconds."""
    _, seconds = store_rows(run, source, "train", bank_indices(run))
    record_bank_seconds(run, source, seconds)
    return seconds


def split_outputs(checkpoint: str | os.PathLike[str], dataset: ImageDataset, split: str, indices: np.ndarray, *,
                  device: str = "cpu") -> tuple[SourceOutputs, float]:
    """The checkpoint's outputs on the dataset's ``split`` images at ``indices``, and their seconds."""
    return _forward(checkpoint, getattr(dataset, split), indices, device=device)


def _forward(checkpoint: str | os.PathLike[str], images: ImageSplit, indices: np.ndarray, *,
             device: str = "cpu") -> tuple[SourceOutputs, float]:
    from taskspace.training.checkpoints import load_model

    net, saved = load_model(checkpoint)
    chosen = ImageSplit(images.images[indices], np.asarray(images.labels)[indices])
    started = time.perf_counter()
    outputs = source_outputs(net, chosen, normalization=saved["normalization"], device=device)
    return outputs, time.perf_counter() - started


def add_to_store(run: TrainedRun, key: str, indices: np.ndarray, outputs: SourceOutputs) -> None:
    """Add forward passes made elsewhere (a worker's, over ``indices`` of the split ``key`` is about) to the
    store, atomically."""
    extend_store(_store_folder(run), key, STORE_NAMES, np.asarray(indices, dtype=np.int64),
                 {"features": outputs.features, "logits": outputs.logits})


def record_bank_seconds(run: TrainedRun, source: str, seconds: float) -> None:
    """The seconds of the source's score-stage forward passes (added to those of earlier calls)."""
    path, key = bank_path(run, source), bank_key(run, source)
    earlier = 0.0
    try:
        record = read_json(path) if path.is_file() else {}
        if isinstance(record, dict) and record.get("key") == key:
            earlier = float(record.get("seconds", 0.0))
    except (TaskspaceError, TypeError, ValueError):
        earlier = 0.0
    write_json(path, {"source": source, "key": key, "images": int(len(bank_indices(run))),
                      "seconds": earlier + seconds})


def store_missing(run: TrainedRun, source: str, split: str, indices: np.ndarray) -> np.ndarray:
    """The images of ``indices`` (of ``split``) the store lacks for ``source``."""
    return missing_indices(_store_folder(run), store_key_of(run, source, split), indices)


def bank_is_current(run: TrainedRun, source: str) -> bool:
    """Whether the store holds the source's forward passes over every image some target scores."""
    return len(store_missing(run, source, "train", bank_indices(run))) == 0


def read_bank(run: TrainedRun, source: str) -> dict[str, np.ndarray] | None:
    """The source's store of training-split forward passes (``indices``, ``features``, ``logits``) if it
    holds every image some target scores; else None."""
    key = bank_key(run, source)
    path = _store_folder(run) / f"{key}.npz"
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    arrays = _read_store_file(str(path), stat.st_mtime_ns, stat.st_size, key)
    if arrays is None or len(np.setdiff1d(bank_indices(run), arrays["indices"])):
        return None
    return arrays


@functools.lru_cache(maxsize=2)
def _read_store_file(path: str, mtime_ns: int, size: int, key: str) -> dict[str, np.ndarray] | None:
    del mtime_ns, size  # part of the cache key: a rewritten file is read again
    return read_store(Path(path), key, STORE_NAMES)


def gather_rows(bank: dict[str, np.ndarray], splits: TaskSplits, positions: np.ndarray) -> np.ndarray:
    """The bank rows of the target's training images at ``positions``."""
    wanted = splits.train_indices[positions]
    held = bank["indices"]
    rows = np.minimum(np.searchsorted(held, wanted), max(len(held) - 1, 0))
    if len(held) == 0 or not np.array_equal(held[rows], wanted):
        raise DataError(
            "a source's feature bank lacks images this target needs; rerun `taskspace matrix`, which makes them"
        )
    return np.asarray(rows)


def gather(bank: dict[str, np.ndarray], splits: TaskSplits, positions: np.ndarray) -> SourceOutputs:
    """The target's rows of a bank: outputs for ``splits.train`` at ``positions``, with the target's labels."""
    rows = gather_rows(bank, splits, positions)
    return SourceOutputs(bank["features"][rows], bank["logits"][rows],
                         np.asarray(splits.train.labels[positions], dtype=np.int64))
