"""An unpickler that rebuilds numpy arrays and refuses every other global.

The CIFAR-10 python batches are pickles, and unpickling runs whatever callable a file names. This
module lets through only the few globals that numpy array reconstruction needs, so a crafted file
is refused before anything in it runs. The real batch files name exactly three globals:
``numpy.core.multiarray._reconstruct``, ``numpy.ndarray`` and ``numpy.dtype`` (checked with
:mod:`pickletools`). Files re-written by Python 3 at pickle protocol 2 name
``numpy._core.multiarray._reconstruct`` instead, and store the array bytes through
``_codecs.encode(text, "latin1")`` (empty bytes through ``bytes()``). Those two are allowed only
through wrappers: one that accepts nothing but the latin-1 codec, so no other codec (zlib, bz2, ...)
can be reached, and one that can only make empty bytes.
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Callable
from typing import IO, Any

from taskspace.errors import DataError

__all__ = ["safe_unpickle", "ALLOWED_GLOBALS"]

#: ``(module, name)`` pairs that a pickle may name; everything else is refused.
ALLOWED_GLOBALS: frozenset[tuple[str, str]] = frozenset(
    {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
        ("__builtin__", "bytes"),
        ("builtins", "bytes"),
    }
)

_LATIN1_NAMES = frozenset({"latin1", "latin-1", "latin_1", "iso-8859-1", "iso8859-1", "l1"})


class _Refused(pickle.UnpicklingError):
    """A global, or a use of one, that the allow-list does not permit; ``what`` names it."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


def _encode_latin1_only(text: str, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """Stand-in for ``_codecs.encode`` that can only turn latin-1 text back into bytes."""
    if not isinstance(text, str) or str(encoding).lower() not in _LATIN1_NAMES or errors != "strict":
        raise _Refused(f"_codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


def _empty_bytes(*arguments: Any) -> bytes:
    """Stand-in for ``bytes`` that can only make ``b""`` (``bytes(n)`` would allocate n bytes)."""
    if arguments:
        raise _Refused("bytes with arguments")
    return b""


def _allowed_global(module: str, name: str) -> Any:
    # Resolved by hand rather than through importlib so that numpy 2 never imports its deprecated
    # numpy.core shim, and so that nothing outside the table can be reached by any spelling.
    import numpy as np

    if name == "_reconstruct":
        try:
            from numpy._core.multiarray import _reconstruct
        except ImportError:  # numpy < 2
            from numpy.core.multiarray import _reconstruct  # type: ignore[no-redef]
        return _reconstruct
    if (module, name) == ("_codecs", "encode"):
        return _encode_latin1_only
    if name == "bytes":
        return _empty_bytes
    return {"ndarray": np.ndarray, "dtype": np.dtype}[name]


class _AllowListUnpickler(pickle.Unpickler):
    """A :class:`pickle.Unpickler` whose :meth:`find_class` consults :data:`ALLOWED_GLOBALS`."""

    def find_class(self, module: str, name: str) -> Callable[..., Any]:
        if (module, name) not in ALLOWED_GLOBALS:
            raise _Refused(f"{module}.{name}")
        return _allowed_global(module, name)


def safe_unpickle(handle_or_bytes: bytes | bytearray | memoryview | IO[bytes], *, source: str) -> Any:
    """Unpickle numpy arrays, dicts, lists, strings and numbers, and nothing that can run code.

    Strings written by Python 2 are decoded as latin-1 (``encoding="latin1"``), which turns the
    CIFAR-10 keys into ``str`` and leaves the array bytes intact.

    Args:
        handle_or_bytes: the pickle, as bytes or as a binary file object.
        source: where the pickle came from (usually a file path), named in error messages.

    Returns:
        The unpickled object.

    Raises:
        DataError: the pickle names a global outside :data:`ALLOWED_GLOBALS` (nothing of it runs),
            or it is truncated or corrupt.
    """
    if isinstance(handle_or_bytes, (bytes, bytearray, memoryview)):
        handle: IO[bytes] = io.BytesIO(handle_or_bytes)
    else:
        handle = handle_or_bytes
    try:
        return _AllowListUnpickler(handle, encoding="latin1").load()
    except _Refused as refused:
        raise DataError(
            f"refused to load '{source}': it asks to run '{refused.what}', which a data file "
            "never needs; the file is not genuine data, delete it and get a clean copy"
        ) from None
    except MemoryError:
        raise
    except Exception as error:  # a damaged pickle raises many types (EOFError, UnpicklingError, ValueError...)
        reason = str(error).strip().splitlines()[0][:200] if str(error).strip() else "no detail"
        raise DataError(
            f"'{source}' is truncated or corrupt ({type(error).__name__}: {reason}); "
            "delete it and get a fresh copy"
        ) from None
