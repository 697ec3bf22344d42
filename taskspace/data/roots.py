"""Where data and the array cache live.

The data root is the folder that holds ``cifar-10-batches-py``; it comes from an explicit argument
(``--data-root``), else ``TASKSPACE_DATA``, else the cache folder. The cache folder comes from
``TASKSPACE_CACHE``, else ``$XDG_CACHE_HOME/taskspace``, else ``~/.cache/taskspace``.
"""

from __future__ import annotations

import os
from pathlib import Path

from taskspace.errors import DataError

__all__ = ["DATA_ENV", "CACHE_ENV", "resolve_data_root", "resolve_cache_dir"]

DATA_ENV = "TASKSPACE_DATA"
CACHE_ENV = "TASKSPACE_CACHE"


def _from_env(variable: str) -> Path | None:
    value = os.environ.get(variable, "").strip()
    return Path(value).expanduser() if value else None


def _cache_dir_location() -> Path:
    """The cache folder's path, without creating it."""
    explicit = _from_env(CACHE_ENV)
    if explicit is not None:
        return explicit
    xdg_cache = _from_env("XDG_CACHE_HOME")
    if xdg_cache is not None and xdg_cache.is_absolute():  # the XDG spec says to ignore relative values
        return xdg_cache / "taskspace"
    return Path.home() / ".cache" / "taskspace"


def describe_data_root(data_root: str | os.PathLike[str] | None = None) -> tuple[Path, str]:
    """The data root and where it came from, for error messages.

    Returns:
        ``(path, origin)`` where origin reads like ``"from --data-root"`` or ``"from TASKSPACE_DATA"``.
    """
    if data_root is not None and str(data_root).strip():
        return Path(data_root).expanduser(), "given as the data root"
    from_env = _from_env(DATA_ENV)
    if from_env is not None:
        return from_env, f"from {DATA_ENV}"
    return _cache_dir_location(), f"the default: neither a data root nor {DATA_ENV} was given"


def resolve_data_root(data_root: str | os.PathLike[str] | None = None) -> Path:
    """The folder that holds the datasets (for CIFAR-10: the parent of ``cifar-10-batches-py``).

    Args:
        data_root: an explicit folder; ``None`` (or empty) falls back to ``TASKSPACE_DATA``, then
            to :func:`resolve_cache_dir`'s location.

    Returns:
        The folder's path (``~`` expanded). It is not created and need not exist.
    """
    return describe_data_root(data_root)[0]


def resolve_cache_dir() -> Path:
    """The cache folder for converted arrays, created if it does not exist yet.

    Returns:
        ``TASKSPACE_CACHE`` if set, else ``$XDG_CACHE_HOME/taskspace``, else ``~/.cache/taskspace``.

    Raises:
        DataError: the folder cannot be created.
    """
    folder = _cache_dir_location()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise DataError(
            f"cannot create the cache folder '{folder}' ({reason}); set {CACHE_ENV} to a folder you can write to"
        ) from None
    return folder
