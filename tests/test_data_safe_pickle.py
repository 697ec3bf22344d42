"""The allow-list unpickler: numpy arrays load, anything that would run code is refused unrun."""

from __future__ import annotations

import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

from taskspace.data import safe_unpickle
from taskspace.data.safe_pickle import ALLOWED_GLOBALS
from taskspace.errors import DataError


def _global_call(module: str, name: str, argument: str) -> bytes:
    """A protocol-2 pickle that calls ``module.name(argument)``."""
    encoded = argument.encode("utf-8")
    return (
        b"\x80\x02c" + module.encode() + b"\n" + name.encode() + b"\n"
        + b"X" + struct.pack("<I", len(encoded)) + encoded + b"\x85R."
    )


class _RunsShell:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def test_the_allow_list_is_exactly_what_numpy_arrays_need() -> None:
    assert ALLOWED_GLOBALS == {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
        ("__builtin__", "bytes"),
        ("builtins", "bytes"),
    }


@pytest.mark.parametrize("protocol", [2, 3, 4])
def test_arrays_and_plain_values_round_trip(protocol: int) -> None:
    value = {
        "data": np.arange(24, dtype=np.uint8).reshape(4, 6),
        "weights": np.linspace(0, 1, 5, dtype=np.float32),
        "labels": [0, 1, 2, 9],
        "name": "batch",
        "nested": ({"x": 1.5}, None, True),
    }
    loaded = safe_unpickle(pickle.dumps(value, protocol=protocol), source="memory")
    np.testing.assert_array_equal(loaded["data"], value["data"])
    assert loaded["data"].dtype == np.uint8
    np.testing.assert_array_equal(loaded["weights"], value["weights"])
    assert loaded["labels"] == value["labels"] and loaded["name"] == "batch" and loaded["nested"] == value["nested"]


def test_reads_from_a_file_handle(tmp_path: Path) -> None:
    path = tmp_path / "arrays.pkl"
    path.write_bytes(pickle.dumps({"a": np.ones((2, 2))}, protocol=2))
    with open(path, "rb") as handle:
        loaded = safe_unpickle(handle, source=str(path))
    np.testing.assert_array_equal(loaded["a"], np.ones((2, 2)))


def test_a_shell_command_is_refused_and_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"data": _RunsShell(f"touch {marker}")}, protocol=2)
    with pytest.raises(DataError) as caught:
        safe_unpickle(payload, source="evil.pkl")
    message = str(caught.value)
    assert "system" in message and "evil.pkl" in message and "\n" not in message
    assert not marker.exists()


@pytest.mark.parametrize(
    ("module", "name", "argument"),
    [
        ("builtins", "eval", "__import__('os').system('touch {marker}')"),
        ("builtins", "exec", "open('{marker}', 'w').close()"),
        ("os", "system", "touch {marker}"),
        ("subprocess", "getoutput", "touch {marker}"),
        ("numpy", "load", "{marker}"),
        ("numpy.core.multiarray", "scalar", "x"),
    ],
)
def test_every_other_global_is_refused_unrun(tmp_path: Path, module: str, name: str, argument: str) -> None:
    marker = tmp_path / "pwned"
    payload = _global_call(module, name, argument.format(marker=marker))
    with pytest.raises(DataError, match=rf"refused to load 'crafted': it asks to run '{module}\.{name}'"):
        safe_unpickle(payload, source="crafted")
    assert not marker.exists()


def test_empty_arrays_written_at_protocol_2_load() -> None:
    loaded = safe_unpickle(pickle.dumps(np.zeros((0, 3), np.uint8), protocol=2), source="empty")
    assert loaded.shape == (0, 3) and loaded.dtype == np.uint8


def test_bytes_can_only_make_empty_bytes() -> None:
    crafted = b"\x80\x02c__builtin__\nbytes\nJ\x00\x00\x00\x40\x85R."  # bytes(2**30)
    with pytest.raises(DataError, match="refused.*bytes with arguments"):
        safe_unpickle(crafted, source="crafted")


def test_codecs_encode_only_accepts_latin1() -> None:
    assert safe_unpickle(pickle.dumps(b"\x00\xffraw", protocol=2), source="bytes") == b"\x00\xffraw"
    crafted = (
        b"\x80\x02c_codecs\nencode\nX\x03\x00\x00\x00abcX\x05\x00\x00\x00rot13\x86R."
    )
    with pytest.raises(DataError, match="refused.*_codecs.encode with encoding 'rot13'"):
        safe_unpickle(crafted, source="crafted")


@pytest.mark.parametrize("payload", [b"", b"not a pickle at all", b"\x80\x02}q\x00(X\x04\x00\x00\x00da"])
def test_damaged_pickles_raise_data_error(payload: bytes) -> None:
    with pytest.raises(DataError, match="'damaged.pkl' is truncated or corrupt") as caught:
        safe_unpickle(payload, source="damaged.pkl")
    assert "\n" not in str(caught.value)


def test_every_truncation_of_an_array_pickle_is_refused() -> None:
    payload = pickle.dumps({"data": np.arange(300, dtype=np.uint8), "labels": [1, 2, 3]}, protocol=2)
    for length in range(0, len(payload) - 1, 7):
        with pytest.raises(DataError):
            safe_unpickle(payload[:length], source="cut.pkl")
