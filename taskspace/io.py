"""All disk I/O of taskspace: atomic writes, safe loads, schema checks.

Every file is written to a temporary file in the destination folder, flushed, fsync'ed and moved into
place with :func:`os.replace`, so a reader sees either the old file or the whole new one, never half.
Nothing here unpickles: arrays load with ``allow_pickle=False`` and checkpoints with
``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import tempfile
import tomllib
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, cast

import numpy as np

from taskspace.errors import CheckpointError, ConfigError, DataError, TaskspaceError

__all__ = [
    "atomic_path",
    "write_bytes",
    "write_text",
    "write_json",
    "read_json",
    "write_npz",
    "read_npz",
    "save_checkpoint",
    "load_checkpoint",
    "ensure_writable_dir",
    "canonical_json",
    "sha256_of_file",
    "read_toml",
]


def ensure_writable_dir(path: str | os.PathLike[str], *, what: str = "output folder") -> Path:
    """Create ``path`` if needed and check that files can be written in it."""
    folder = Path(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
            pass
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise TaskspaceError(
            f"cannot write to {what} '{folder}' ({reason}); choose a folder you can write to"
        ) from None
    return folder


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is fsync'ed and moved onto ``path``.

    On an exception the temporary file is removed and ``path`` is left untouched.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=suffix + ".tmp")
    os.close(handle)
    temporary_path = Path(temporary)
    try:
        yield temporary_path
        with open(temporary_path, "rb+") as written:
            os.fsync(written.fileno())
        os.chmod(temporary_path, 0o666 & ~_current_umask())  # mkstemp made it 0600
        os.replace(temporary_path, target)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary_path.unlink()
        raise
    _fsync_folder(target.parent)


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_folder(folder: Path) -> None:
    with contextlib.suppress(OSError):
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as temporary:
        temporary.write_bytes(data)


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    write_bytes(path, text.encode("utf-8"))


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace: the form that hashes are taken of."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def write_json(path: str | os.PathLike[str], value: Any) -> None:
    """Write ``value`` as indented JSON, atomically."""
    write_text(path, json.dumps(value, indent=2, sort_keys=True, allow_nan=False) + "\n")


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read a JSON file; a missing or malformed file raises :class:`TaskspaceError`."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TaskspaceError(f"file not found: '{path}'; check the path") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise TaskspaceError(
            f"'{path}' is damaged: not valid JSON ({error}); restore it, or rerun the command that wrote it"
        ) from None


def read_record(path: str | os.PathLike[str], **fields: Any) -> dict[str, Any] | None:
    """A JSON object file holding ``fields`` with these values, or None when it is missing, unreadable,
    not an object, or about something else (a result file that is then computed again)."""
    if not Path(path).is_file():
        return None
    try:
        record = read_json(path)
    except TaskspaceError:
        return None
    if not isinstance(record, dict) or any(record.get(key) != value for key, value in fields.items()):
        return None
    return record


def write_npz(path: str | os.PathLike[str], arrays: Mapping[str, np.ndarray]) -> None:
    """Write arrays to an uncompressed ``.npz`` atomically (object arrays are refused)."""
    for name, array in arrays.items():
        if np.asarray(array).dtype == object:
            raise TypeError(f"array '{name}' has dtype object, which would need pickle")
    with atomic_path(path, suffix=".npz") as temporary:
        with open(temporary, "wb") as handle:
            np.savez(handle, **cast(dict[str, Any], arrays))


def read_npz(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Read every array of an ``.npz`` file without pickle."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except FileNotFoundError:
        raise DataError(f"file not found: '{path}'; check the path") from None
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        raise DataError(
            f"'{path}' is damaged: not a readable array file ({error}); restore it, or rerun the command that wrote it"
        ) from None


def save_checkpoint(path: str | os.PathLike[str], checkpoint: Mapping[str, Any]) -> None:
    """Save a checkpoint (tensors, numbers, strings, lists, dicts) atomically with ``torch.save``."""
    import torch

    buffer = io.BytesIO()
    torch.save(dict(checkpoint), buffer)
    write_bytes(path, buffer.getvalue())


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``; missing or corrupt files raise :class:`CheckpointError`."""
    import torch

    checkpoint_path = Path(path)
    if checkpoint_path.is_dir():
        raise CheckpointError(f"'{checkpoint_path}' is a folder; pass the checkpoint file in it (model.pt)")
    if not checkpoint_path.is_file():
        raise CheckpointError(f"checkpoint not found: '{checkpoint_path}'; train it first or check the path")
    try:
        checkpoint = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a damaged file
        if "Unsupported global" in str(error):
            raise CheckpointError(
                f"'{checkpoint_path}' holds Python objects besides tensors and numbers, which taskspace never "
                "unpickles; pass a checkpoint saved by `taskspace train`, or re-save your model's state_dict"
            ) from None
        # torch's own message may advise loading with weights_only off: never passed on
        raise CheckpointError(
            f"'{checkpoint_path}' cannot be read as a checkpoint ({type(error).__name__}: damaged, or not saved by "
            "torch.save); pass a checkpoint saved by `taskspace train`"
        ) from None
    if not isinstance(checkpoint, dict):
        raise CheckpointError(f"'{checkpoint_path}' is not a taskspace checkpoint; pass one saved by `taskspace train`")
    return checkpoint


def sha256_of_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file's bytes (read in chunks by :func:`hashlib.file_digest`)."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def content_hash(document: Any, length: int = 16) -> str:
    """The first ``length`` hex digits of the SHA-256 of ``document`` as canonical JSON: the identity of
    a record by its content (the same document always gives the same hash, whatever its key order)."""
    return hashlib.sha256(canonical_json(document).encode()).hexdigest()[:length]


def read_toml(path: str | os.PathLike[str], *, what: str) -> dict[str, Any]:
    """Read a TOML file; a missing or malformed ``what`` ("config file", ...) raises :class:`ConfigError`."""
    file = Path(path)
    try:
        return tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{what} not found: '{file}'; check the path") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{what} '{file}' is not valid TOML ({error}); fix its syntax") from None
