"""CIFAR-10 from its python batches: validated reading, checksums, an array cache, download on request.

The batches are pickles, so they are read through :func:`~taskspace.data.safe_pickle.safe_unpickle`
(numpy arrays only, nothing that runs code). The first read converts them into one uncompressed
``.npz`` in the cache folder, keyed by the names, sizes and modification times of the source files,
so a changed source is converted again and never served stale; later reads load that ``.npz``
without pickle.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from taskspace.data.arrays import ImageDataset, ImageSplit
from taskspace.data.roots import describe_data_root, resolve_cache_dir
from taskspace.data.safe_pickle import safe_unpickle
from taskspace.errors import ConfigError, DataError, TaskspaceError
from taskspace.io import read_npz, write_npz

__all__ = [
    "CIFAR10_CLASSES",
    "CIFAR10_FOLDER",
    "CIFAR10_TRAIN_FILES",
    "CIFAR10_TEST_FILE",
    "CIFAR10_META_FILE",
    "CIFAR10_FILES",
    "CIFAR10_OFFICIAL_MD5",
    "CIFAR10_URL",
    "read_cifar10",
    "read_cifar10_cache_file",
    "cifar10_folder",
    "verify_checksums",
    "read_checksum_file",
    "download_cifar10",
]

CIFAR10_CLASSES: tuple[str, ...] = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_TRAIN_FILES: tuple[str, ...] = tuple(f"data_batch_{index}" for index in range(1, 6))
CIFAR10_TEST_FILE = "test_batch"
CIFAR10_META_FILE = "batches.meta"
CIFAR10_FILES: tuple[str, ...] = (*CIFAR10_TRAIN_FILES, CIFAR10_TEST_FILE, CIFAR10_META_FILE)
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"

#: md5 of the files in the official ``cifar-10-python.tar.gz`` (the values torchvision checks).
CIFAR10_OFFICIAL_MD5: dict[str, str] = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
    "batches.meta": "5ff9c542aee3614f3951f8cda6e48888",
}

_IMAGE_SIZE = 32
_ROW_LENGTH = 3 * _IMAGE_SIZE * _IMAGE_SIZE
# Bump when the layout of the cached arrays changes, so old cache files are never read.
_CACHE_FORMAT = 1
_FIX_HINT = "pass --data-root, set TASKSPACE_DATA, or run `taskspace data --download`"
_HASH_LENGTHS = {32: "md5", 64: "sha256"}


# ----------------------------------------------------------------------------------------------
# Locating the files


def cifar10_folder(data_root: str | os.PathLike[str] | None = None) -> Path:
    """The ``cifar-10-batches-py`` folder under the data root, with every file present.

    A data root that is itself named ``cifar-10-batches-py`` is accepted too.

    Raises:
        DataError: the folder or one of its seven files is missing (the message says where it
            looked and how to fix it).
    """
    root, origin = describe_data_root(data_root)
    folder = root / CIFAR10_FOLDER
    if not folder.is_dir() and root.name == CIFAR10_FOLDER and root.is_dir():
        folder = root
    if not folder.is_dir():
        raise DataError(f"CIFAR-10 folder '{folder}' not found (data root {origin}); {_FIX_HINT}")
    for name in CIFAR10_FILES:
        if not (folder / name).is_file():
            raise DataError(
                f"CIFAR-10 file '{name}' is missing from '{folder}' (data root {origin}); {_FIX_HINT}"
            )
    return folder


# ----------------------------------------------------------------------------------------------
# Checksums


def _hexdigest(path: Path, algorithm: str) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, lambda: hashlib.new(algorithm, usedforsecurity=False)).hexdigest()


def verify_checksums(folder: Path, expected: Mapping[str, str]) -> None:
    """Check files in ``folder`` against expected digests.

    Args:
        folder: the folder that holds the files.
        expected: ``{filename: hexdigest}``; 32 hex characters are an md5, 64 a sha256.

    Raises:
        ConfigError: a digest is neither 32 nor 64 hex characters.
        DataError: a file is missing or its digest differs (the message names the file).
    """
    folder = Path(folder)
    for name, digest in expected.items():
        wanted = str(digest).strip().lower()
        algorithm = _HASH_LENGTHS.get(len(wanted))
        if algorithm is None or not re.fullmatch(r"[0-9a-f]+", wanted):
            raise ConfigError(
                f"checksum for '{name}' is {digest!r}; give 32 hex characters (md5) or 64 (sha256)"
            )
        path = folder / name
        if not path.is_file():
            raise DataError(f"cannot verify '{name}': no such file in '{folder}'; {_FIX_HINT}")
        actual = _hexdigest(path, algorithm)
        if actual != wanted:
            raise DataError(
                f"checksum mismatch for '{path}': {algorithm} is {actual}, expected {wanted}; "
                "the file is damaged or a different version, replace it (e.g. `taskspace data --download`)"
            )


_CHECKSUM_LINE = re.compile(r"(?P<digest>[0-9A-Fa-f]+)\s[ *]?(?P<name>.+)")
_BSD_CHECKSUM_LINE = re.compile(r"(?:MD5|SHA256) \((?P<name>.+)\) = (?P<digest>[0-9A-Fa-f]+)")


def read_checksum_file(path: str | os.PathLike[str]) -> dict[str, str]:
    """Read a checksum list as written by ``md5sum`` or ``sha256sum``.

    Lines look like ``<hex>  <filename>`` (``<hex> *<filename>`` in binary mode); the BSD form
    ``SHA256 (<filename>) = <hex>`` is accepted too. Blank lines and lines starting with ``#`` are
    skipped. File names are kept as written and are looked up relative to the folder verified.

    Returns:
        ``{filename: lowercase hexdigest}``.

    Raises:
        DataError: the file is missing, or a line is not a checksum line (the message names it).
    """
    checksum_path = Path(path)
    try:
        text = checksum_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"checksum file '{checksum_path}' not found; check the path") from None
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"cannot read checksum file '{checksum_path}' ({error}); check the file") from None
    checksums: dict[str, str] = {}
    for line_number, raw_line in enumerate(text.splitlines(), start=1):
        line = raw_line.strip()
        if not line or line.startswith("#"):
            continue
        match = _BSD_CHECKSUM_LINE.fullmatch(line) or _CHECKSUM_LINE.fullmatch(line)
        if match is None or len(match["digest"]) not in _HASH_LENGTHS:
            raise DataError(
                f"line {line_number} of '{checksum_path}' is not '<md5 or sha256 hex>  <filename>': {line[:80]!r}"
            )
        checksums[match["name"].strip()] = match["digest"].lower()
    return checksums


# ----------------------------------------------------------------------------------------------
# Reading the pickled batches


def _load_pickle(path: Path) -> Any:
    with open(path, "rb") as handle:
        return safe_unpickle(handle, source=str(path))


def _as_str_keys(content: Any, path: Path) -> dict[str, Any]:
    if not isinstance(content, dict):
        raise DataError(
            f"'{path}' holds a {type(content).__name__}, not a CIFAR-10 batch dict; replace it with a genuine copy"
        )
    # Files written with encoding='bytes' in mind may carry bytes keys; accept both spellings.
    return {key.decode("latin1") if isinstance(key, bytes) else key: value for key, value in content.items()}


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read and validate one batch: ``(rows uint8 (n, 3072), labels int64 (n,))``."""
    batch = _as_str_keys(_load_pickle(path), path)
    missing = [key for key in ("data", "labels") if key not in batch]
    if missing:
        found = ", ".join(repr(key) for key in batch) or "none"
        raise DataError(
            f"'{path}' is not a CIFAR-10 batch: key(s) {', '.join(map(repr, missing))} missing "
            f"(found {found}); replace it with a genuine copy"
        )
    rows = batch["data"]
    if not isinstance(rows, np.ndarray) or rows.dtype != np.uint8 or rows.ndim != 2 or rows.shape[1] != _ROW_LENGTH:
        described = f"dtype {rows.dtype}, shape {rows.shape}" if isinstance(rows, np.ndarray) else type(rows).__name__
        raise DataError(
            f"'{path}' holds image data with {described}; a CIFAR-10 batch holds uint8 rows of "
            f"{_ROW_LENGTH} values (32x32x3), replace the file"
        )
    try:
        labels = np.asarray(batch["labels"])
    except (TypeError, ValueError, OverflowError):
        labels = np.asarray([[]])  # reported as "not a flat list of integers" below
    if labels.ndim != 1 or (labels.size and labels.dtype.kind not in "iu"):
        raise DataError(f"'{path}' holds labels that are not a flat list of integers; replace the file")
    if len(labels) != len(rows):
        raise DataError(f"'{path}' holds {len(rows)} images but {len(labels)} labels; replace the file")
    if len(rows) == 0:
        raise DataError(f"'{path}' holds no images; replace the file")
    if labels.min() < 0 or labels.max() >= len(CIFAR10_CLASSES):
        raise DataError(
            f"'{path}' holds labels {int(labels.min())}..{int(labels.max())}, outside 0..9; replace the file"
        )
    return rows, labels.astype(np.int64)


def _read_class_names(path: Path) -> tuple[str, ...]:
    meta = _as_str_keys(_load_pickle(path), path)
    names = meta.get("label_names")
    if isinstance(names, list):
        names = [name.decode("latin1") if isinstance(name, bytes) else name for name in names]
    if not isinstance(names, list) or tuple(names) != CIFAR10_CLASSES:
        raise DataError(
            f"'{path}' does not list the ten CIFAR-10 class names under 'label_names' "
            f"(found {names!r:.120}); replace the file"
        )
    return CIFAR10_CLASSES


def _rows_to_images(rows: np.ndarray) -> np.ndarray:
    # Each row is 1024 red, then 1024 green, then 1024 blue values, each plane row-major.
    return np.ascontiguousarray(rows.reshape(-1, 3, _IMAGE_SIZE, _IMAGE_SIZE).transpose(0, 2, 3, 1))


def _convert(folder: Path) -> ImageDataset:
    class_names = _read_class_names(folder / CIFAR10_META_FILE)
    train_parts = [_read_batch(folder / name) for name in CIFAR10_TRAIN_FILES]
    test_rows, test_labels = _read_batch(folder / CIFAR10_TEST_FILE)
    train = ImageSplit(
        images=_rows_to_images(np.concatenate([rows for rows, _ in train_parts])),
        labels=np.concatenate([labels for _, labels in train_parts]),
    )
    test = ImageSplit(images=_rows_to_images(test_rows), labels=test_labels)
    return ImageDataset(name="cifar10", class_names=class_names, train=train, test=test)


# ----------------------------------------------------------------------------------------------
# The array cache


def _source_signature(folder: Path) -> str:
    """Names, sizes and modification times of the source files, as one string."""
    parts = [f"format={_CACHE_FORMAT}", f"folder={folder.resolve()}"]
    for name in CIFAR10_FILES:
        status = (folder / name).stat()
        parts.append(f"{name}:{status.st_size}:{status.st_mtime_ns}")
    return "\n".join(parts)


def _short_hash(text: str, length: int) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def _cache_file_prefix(folder: Path) -> str:
    return f"cifar10-{_short_hash(str(folder.resolve()), 12)}-"


def _load_cached(cache_path: Path, signature: str) -> ImageDataset | None:
    """The cached dataset, or ``None`` if the file is absent, damaged or belongs to other sources."""
    if not cache_path.is_file():
        return None
    try:
        arrays = read_npz(cache_path)
        if str(arrays["signature"]) != signature:
            return None
        return _dataset_from_arrays(arrays)
    except (DataError, zipfile.BadZipFile, KeyError, ValueError):
        # Damaged (read_npz lets zipfile's own error through) or an older layout: convert again.
        return None


def _dataset_from_arrays(arrays: Mapping[str, np.ndarray]) -> ImageDataset:
    return ImageDataset(
        name="cifar10",
        class_names=tuple(str(name) for name in arrays["class_names"]),
        train=ImageSplit(images=arrays["train_images"], labels=arrays["train_labels"]),
        test=ImageSplit(images=arrays["test_images"], labels=arrays["test_labels"]),
    )


def read_cifar10_cache_file(path: str | os.PathLike[str]) -> ImageDataset:
    """CIFAR-10 from an array cache file written by :func:`read_cifar10` (no pickle, no source check).

    For machines that hold the cache file but not the python batches (e.g. a copy sent to a GPU host).

    Raises:
        DataError: missing, damaged or not a CIFAR-10 array cache.
    """
    try:
        return _dataset_from_arrays(read_npz(path))
    except (KeyError, ValueError, zipfile.BadZipFile) as error:
        raise DataError(f"'{path}' is not a taskspace CIFAR-10 array cache ({error}); pass the .npz that "
                        "read_cifar10 writes to the cache folder") from None


def _write_cache(cache_path: Path, dataset: ImageDataset, signature: str) -> None:
    write_npz(
        cache_path,
        {
            "signature": np.array(signature),
            "class_names": np.array(dataset.class_names),
            "train_images": dataset.train.images,
            "train_labels": dataset.train.labels,
            "test_images": dataset.test.images,
            "test_labels": dataset.test.labels,
        },
    )
    # Converted copies of earlier versions of the same folder are stale now.
    for stale in cache_path.parent.glob(cache_path.name.rsplit("-", 1)[0] + "-*.npz"):
        if stale != cache_path:
            with contextlib.suppress(OSError):
                stale.unlink()


def read_cifar10(
    data_root: str | os.PathLike[str] | None = None,
    *,
    checksums: Mapping[str, str] | None = None,
    use_cache: bool = True,
) -> ImageDataset:
    """Read CIFAR-10 from ``<data_root>/cifar-10-batches-py``.

    Every batch is validated (keys, uint8 rows of 3072 values, labels in 0..9, equal lengths).
    The first read writes one ``.npz`` to :func:`~taskspace.data.roots.resolve_cache_dir`; later
    reads load it without pickle, as long as the names, sizes and modification times of the
    source files are unchanged. If the cache cannot be written, a warning is issued and the
    dataset is returned anyway.

    Args:
        data_root: the folder that holds ``cifar-10-batches-py``; see
            :func:`~taskspace.data.roots.resolve_data_root` for the fallbacks.
        checksums: optional ``{filename: hexdigest}`` (md5 or sha256) checked before reading; the
            files are hashed on every call, cache or not.
        use_cache: read and write the array cache.

    Returns:
        The dataset: train images ``(50000, 32, 32, 3)`` uint8 and test images
        ``(10000, 32, 32, 3)`` for the official files, labels int64 in 0..9.

    Raises:
        DataError: a file is missing, unsafe, truncated, corrupt or fails its checksum.
        ConfigError: a checksum is not 32 or 64 hex characters.
    """
    folder = cifar10_folder(data_root)
    if checksums:
        verify_checksums(folder, checksums)
    if not use_cache:
        return _convert(folder)

    signature = _source_signature(folder)
    try:
        cache_path = resolve_cache_dir() / f"{_cache_file_prefix(folder)}{_short_hash(signature, 16)}.npz"
    except DataError as error:
        warnings.warn(f"{error} (reading CIFAR-10 without the cache)", RuntimeWarning, stacklevel=2)
        return _convert(folder)
    cached = _load_cached(cache_path, signature)
    if cached is not None:
        return cached

    dataset = _convert(folder)
    if _source_signature(folder) != signature:
        return dataset  # the files changed while being read; do not cache a mixture
    try:
        _write_cache(cache_path, dataset, signature)
    except (OSError, TaskspaceError) as error:
        warnings.warn(
            f"could not write the CIFAR-10 cache '{cache_path}' ({error}); set TASKSPACE_CACHE to a writable folder",
            RuntimeWarning,
            stacklevel=2,
        )
    return dataset


# ----------------------------------------------------------------------------------------------
# Download (only when asked)


def download_cifar10(data_root: str | os.PathLike[str] | None = None) -> Path:
    """Download and extract the official CIFAR-10 with ``torchvision.datasets.CIFAR10(download=True)``.

    Only called when the user asks (``taskspace data --download``). Files that already match the
    official md5 values are not downloaded again.

    Args:
        data_root: the folder to put ``cifar-10-batches-py`` in; see
            :func:`~taskspace.data.roots.resolve_data_root` for the fallbacks.

    Returns:
        The ``cifar-10-batches-py`` folder.

    Raises:
        DataError: the download or extraction failed (the message says how to place the files by hand).
    """
    root, _ = describe_data_root(data_root)
    folder = root / CIFAR10_FOLDER
    manual = (
        f"download {CIFAR10_URL} by hand and extract it into '{root}' so that '{folder / CIFAR10_TRAIN_FILES[0]}' "
        "exists, then pass --data-root or set TASKSPACE_DATA"
    )
    try:
        root.mkdir(parents=True, exist_ok=True)
        from torchvision.datasets import CIFAR10

        # train=False: after the download only the small test batch is loaded, to let torchvision verify it.
        CIFAR10(root=str(root), train=False, download=True)
    except Exception as error:  # network, HTTP, md5 and archive errors come in many types
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DataError(f"downloading CIFAR-10 into '{root}' failed ({reason}); {manual}") from None
    try:
        return cifar10_folder(root)
    except DataError as error:
        raise DataError(f"the CIFAR-10 download finished but is incomplete ({error}); {manual}") from None
