"""CIFAR-10 reading on small fake batch files: layout, validation, errors, checksums, cache, download."""

from __future__ import annotations

import hashlib
import os
import pickle
import sys
import types
import urllib.error
from pathlib import Path

import numpy as np
import pytest

import taskspace.data.cifar as cifar_module
from taskspace.data import (
    CIFAR10_CLASSES,
    CIFAR10_FILES,
    CIFAR10_OFFICIAL_MD5,
    download_cifar10,
    read_checksum_file,
    read_cifar10,
    resolve_cache_dir,
    verify_checksums,
)
from taskspace.errors import ConfigError, DataError

ROWS_PER_BATCH = 12


def _batch(seed: int, rows: int = ROWS_PER_BATCH) -> dict:
    generator = np.random.default_rng(seed)
    return {
        "batch_label": f"fake batch {seed}",
        "labels": [int(label) for label in generator.integers(0, 10, rows)],
        "data": generator.integers(0, 256, (rows, 3072), dtype=np.uint8),
        "filenames": [f"image_{seed}_{index}.png" for index in range(rows)],
    }


def _write_pickle(path: Path, value: object) -> None:
    path.write_bytes(pickle.dumps(value, protocol=2))


def write_fake_cifar(root: Path) -> dict[str, dict]:
    """Seven files in the cifar-10-batches-py layout, ``ROWS_PER_BATCH`` images per batch."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    batches = {name: _batch(seed) for seed, name in enumerate(CIFAR10_FILES[:6], start=1)}
    for name, batch in batches.items():
        _write_pickle(folder / name, batch)
    _write_pickle(
        folder / "batches.meta", {"label_names": list(CIFAR10_CLASSES), "num_cases_per_batch": 10000, "num_vis": 3072}
    )
    return batches


@pytest.fixture
def fake_root(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    write_fake_cifar(root)
    return root


def _folder(root: Path) -> Path:
    return root / "cifar-10-batches-py"


def _cache_files() -> list[Path]:
    return sorted(resolve_cache_dir().glob("cifar10-*.npz"))


def _one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


# ----------------------------------------------------------------------------------------------
# Reading


def test_reads_the_layout_into_nhwc_images(fake_root: Path) -> None:
    batches = write_fake_cifar(fake_root)
    dataset = read_cifar10(fake_root, use_cache=False)
    assert dataset.name == "cifar10" and dataset.class_names == CIFAR10_CLASSES
    assert dataset.train.images.shape == (5 * ROWS_PER_BATCH, 32, 32, 3)
    assert dataset.test.images.shape == (ROWS_PER_BATCH, 32, 32, 3)
    assert dataset.train.images.dtype == np.uint8 and dataset.train.labels.dtype == np.int64
    assert dataset.train.images.flags.c_contiguous

    expected_train_labels = np.concatenate([batches[f"data_batch_{index}"]["labels"] for index in range(1, 6)])
    np.testing.assert_array_equal(dataset.train.labels, expected_train_labels)
    np.testing.assert_array_equal(dataset.test.labels, batches["test_batch"]["labels"])
    # Row layout: 1024 red, 1024 green, 1024 blue values, each plane row-major.
    row = batches["data_batch_2"]["data"][5]
    image = dataset.train.images[ROWS_PER_BATCH + 5]
    for channel in range(3):
        for y, x in [(0, 0), (0, 31), (7, 3), (31, 31)]:
            assert image[y, x, channel] == row[channel * 1024 + y * 32 + x]


def test_data_root_comes_from_the_environment(fake_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKSPACE_DATA", str(fake_root))
    assert len(read_cifar10(use_cache=False).test) == ROWS_PER_BATCH


def test_the_batches_folder_itself_is_accepted_as_data_root(fake_root: Path) -> None:
    assert len(read_cifar10(_folder(fake_root), use_cache=False).test) == ROWS_PER_BATCH


def test_bytes_keys_are_accepted(fake_root: Path) -> None:
    batch = _batch(40)
    _write_pickle(_folder(fake_root) / "test_batch", {key.encode(): value for key, value in batch.items()})
    np.testing.assert_array_equal(read_cifar10(fake_root, use_cache=False).test.labels, batch["labels"])


# ----------------------------------------------------------------------------------------------
# Errors


def test_missing_folder_says_where_it_looked_and_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(DataError) as caught:
        read_cifar10(tmp_path / "nowhere")
    message = _one_line(caught)
    assert str(tmp_path / "nowhere" / "cifar-10-batches-py") in message
    for fix in ("--data-root", "TASKSPACE_DATA", "taskspace data --download"):
        assert fix in message


def test_missing_folder_names_the_environment_variable_it_came_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TASKSPACE_DATA", str(tmp_path / "elsewhere"))
    with pytest.raises(DataError, match="from TASKSPACE_DATA"):
        read_cifar10()


@pytest.mark.parametrize("missing", ["data_batch_3", "test_batch", "batches.meta"])
def test_missing_file_is_named(fake_root: Path, missing: str) -> None:
    (_folder(fake_root) / missing).unlink()
    with pytest.raises(DataError) as caught:
        read_cifar10(fake_root)
    message = _one_line(caught)
    assert f"'{missing}' is missing from '{_folder(fake_root)}'" in message and "--download" in message


@pytest.mark.parametrize("kept_fraction", [0.0, 0.001, 0.3, 0.999])
def test_truncated_batch_is_refused(fake_root: Path, kept_fraction: float) -> None:
    path = _folder(fake_root) / "data_batch_4"
    content = path.read_bytes()
    path.write_bytes(content[: int(len(content) * kept_fraction)])
    with pytest.raises(DataError) as caught:
        read_cifar10(fake_root)
    message = _one_line(caught)
    assert "data_batch_4" in message and "truncated or corrupt" in message


def _replace(batch: dict, **changes: object) -> dict:
    return {**batch, **changes}


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (["not", "a", "dict"], "holds a list, not a CIFAR-10 batch dict"),
        ({"images": 1, "targets": 2}, "key(s) 'data', 'labels' missing"),
        (_replace(_batch(9), data=np.zeros((ROWS_PER_BATCH, 100), np.uint8)), "shape (12, 100)"),
        (_replace(_batch(9), data=np.zeros((ROWS_PER_BATCH, 3072), np.float32)), "dtype float32"),
        (_replace(_batch(9), data=np.zeros(3072, np.uint8)), "shape (3072,)"),
        (_replace(_batch(9), data="pixels"), "image data with str"),
        (_replace(_batch(9), labels=[0, 1]), "12 images but 2 labels"),
        (_replace(_batch(9), labels=[3] * (ROWS_PER_BATCH - 1) + [10]), "labels 3..10, outside 0..9"),
        (_replace(_batch(9), labels=["cat"] * ROWS_PER_BATCH), "not a flat list of integers"),
        (_replace(_batch(9, rows=0)), "holds no images"),
    ],
)
def test_corrupt_batch_content_is_refused(fake_root: Path, content: object, expected: str) -> None:
    _write_pickle(_folder(fake_root) / "data_batch_2", content)
    with pytest.raises(DataError) as caught:
        read_cifar10(fake_root)
    message = _one_line(caught)
    assert "data_batch_2" in message and expected in message


def test_meta_with_other_class_names_is_refused(fake_root: Path) -> None:
    _write_pickle(_folder(fake_root) / "batches.meta", {"label_names": ["a", "b"]})
    with pytest.raises(DataError, match="batches.meta.*ten CIFAR-10 class names"):
        read_cifar10(fake_root)


def test_malicious_batch_is_refused_without_running(fake_root: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class RunsShell:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    _write_pickle(_folder(fake_root) / "data_batch_1", {"data": RunsShell(), "labels": [0]})
    cache_before = _cache_files()
    with pytest.raises(DataError) as caught:
        read_cifar10(fake_root)
    message = _one_line(caught)
    assert "refused" in message and "system" in message and "data_batch_1" in message
    assert not marker.exists()
    assert _cache_files() == cache_before  # nothing half-converted was cached


# ----------------------------------------------------------------------------------------------
# Checksums


def _digest(path: Path, algorithm: str) -> str:
    return hashlib.new(algorithm, path.read_bytes()).hexdigest()


def test_matching_md5_and_sha256_pass(fake_root: Path) -> None:
    folder = _folder(fake_root)
    checksums = {
        "data_batch_1": _digest(folder / "data_batch_1", "md5"),
        "test_batch": _digest(folder / "test_batch", "sha256").upper(),
    }
    verify_checksums(folder, checksums)
    assert len(read_cifar10(fake_root, checksums=checksums).train) == 5 * ROWS_PER_BATCH


@pytest.mark.parametrize("algorithm", ["md5", "sha256"])
def test_checksum_mismatch_names_the_file(fake_root: Path, algorithm: str) -> None:
    wrong = "0" * (32 if algorithm == "md5" else 64)
    with pytest.raises(DataError) as caught:
        read_cifar10(fake_root, checksums={"test_batch": wrong})
    message = _one_line(caught)
    assert "checksum mismatch" in message and "test_batch" in message and algorithm in message


def test_official_md5_values_do_not_match_fake_files(fake_root: Path) -> None:
    assert set(CIFAR10_OFFICIAL_MD5) == set(CIFAR10_FILES)
    with pytest.raises(DataError, match="checksum mismatch"):
        verify_checksums(_folder(fake_root), CIFAR10_OFFICIAL_MD5)


@pytest.mark.parametrize("digest", ["abc", "z" * 32, "0" * 40])
def test_malformed_checksum_is_a_config_error(fake_root: Path, digest: str) -> None:
    with pytest.raises(ConfigError, match="32 hex characters"):
        verify_checksums(_folder(fake_root), {"test_batch": digest})


def test_checksum_for_a_missing_file(fake_root: Path) -> None:
    with pytest.raises(DataError, match="cannot verify 'nope'"):
        verify_checksums(_folder(fake_root), {"nope": "0" * 32})


def test_checksum_file_formats(tmp_path: Path) -> None:
    md5, sha = "a" * 32, "B" * 64
    path = tmp_path / "SUMS"
    path.write_text(
        f"# comment\n\n{md5}  data_batch_1\n{sha} *test_batch\nSHA256 (batches.meta) = {sha}\n", encoding="utf-8"
    )
    assert read_checksum_file(path) == {"data_batch_1": md5, "test_batch": sha.lower(), "batches.meta": sha.lower()}


def test_checksum_file_with_a_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "SUMS"
    path.write_text(f"{'a' * 32}  data_batch_1\nhello world\n", encoding="utf-8")
    with pytest.raises(DataError, match="line 2 of"):
        read_checksum_file(path)
    with pytest.raises(DataError, match="not found"):
        read_checksum_file(tmp_path / "absent")


def test_checksum_file_drives_verification(fake_root: Path, tmp_path: Path) -> None:
    folder = _folder(fake_root)
    lines = [f"{_digest(folder / name, 'sha256')}  {name}" for name in CIFAR10_FILES]
    (tmp_path / "SHA256SUMS").write_text("\n".join(lines) + "\n", encoding="utf-8")
    verify_checksums(folder, read_checksum_file(tmp_path / "SHA256SUMS"))
    (folder / "batches.meta").write_bytes((folder / "batches.meta").read_bytes() + b" ")
    with pytest.raises(DataError, match="batches.meta"):
        verify_checksums(folder, read_checksum_file(tmp_path / "SHA256SUMS"))


# ----------------------------------------------------------------------------------------------
# Cache


def _refuse_pickle(*args: object, **kwargs: object) -> None:
    raise AssertionError("the pickled batches were read although the cache is valid")


def test_second_read_comes_from_the_cache(fake_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = read_cifar10(fake_root)
    assert len(_cache_files()) >= 1
    monkeypatch.setattr(cifar_module, "safe_unpickle", _refuse_pickle)
    second = read_cifar10(fake_root)
    np.testing.assert_array_equal(first.train.images, second.train.images)
    np.testing.assert_array_equal(first.test.labels, second.test.labels)
    assert second.class_names == CIFAR10_CLASSES
    with pytest.raises(AssertionError, match="cache is valid"):
        read_cifar10(fake_root, use_cache=False)


def test_changed_source_invalidates_the_cache(fake_root: Path) -> None:
    before = read_cifar10(fake_root)
    cache_before = set(_cache_files())
    path = _folder(fake_root) / "test_batch"
    replacement = _batch(77)
    _write_pickle(path, replacement)
    status = path.stat()
    os.utime(path, ns=(status.st_atime_ns, status.st_mtime_ns + 1_000_000_000))  # even on coarse clocks
    after = read_cifar10(fake_root)
    np.testing.assert_array_equal(after.test.labels, replacement["labels"])
    assert not np.array_equal(after.test.images, before.test.images)
    cache_after = set(_cache_files())
    assert len(cache_after - cache_before) == 1 and len(cache_before - cache_after) == 1  # stale copy removed


def test_the_cache_file_reads_on_its_own(fake_root: Path, tmp_path: Path) -> None:
    before = set(_cache_files())
    expected = read_cifar10(fake_root)
    (cache_file,) = set(_cache_files()) - before
    alone = cifar_module.read_cifar10_cache_file(cache_file)
    np.testing.assert_array_equal(alone.train.images, expected.train.images)
    np.testing.assert_array_equal(alone.test.labels, expected.test.labels)
    assert alone.class_names == CIFAR10_CLASSES
    other = tmp_path / "other.npz"
    np.savez(other, images=np.zeros(3))
    with pytest.raises(DataError, match="not a taskspace CIFAR-10 array cache"):
        cifar_module.read_cifar10_cache_file(other)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "flipped"])
def test_damaged_cache_file_is_rebuilt(fake_root: Path, damage: str) -> None:
    before = set(_cache_files())
    expected = read_cifar10(fake_root)
    (cache_file,) = set(_cache_files()) - before
    content = bytearray(cache_file.read_bytes())
    if damage == "garbage":
        content = bytearray(b"garbage")
    elif damage == "truncated":
        content = content[: len(content) // 2]
    else:
        content[len(content) // 2 : len(content) // 2 + 64] = b"\xff" * 64
    cache_file.write_bytes(bytes(content))
    again = read_cifar10(fake_root)
    np.testing.assert_array_equal(again.train.images, expected.train.images)
    assert cache_file.stat().st_size > 1000


def test_unwritable_cache_warns_and_still_reads(
    fake_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")
    monkeypatch.setenv("TASKSPACE_CACHE", str(blocker / "cache"))
    with pytest.warns(RuntimeWarning, match="TASKSPACE_CACHE"):
        dataset = read_cifar10(fake_root)
    assert len(dataset.train) == 5 * ROWS_PER_BATCH


# ----------------------------------------------------------------------------------------------
# Download (torchvision replaced by a stand-in: no network in tests)


def _fake_torchvision(monkeypatch: pytest.MonkeyPatch, cifar_class: type) -> None:
    package = types.ModuleType("torchvision")
    datasets = types.ModuleType("torchvision.datasets")
    datasets.CIFAR10 = cifar_class
    package.datasets = datasets
    monkeypatch.setitem(sys.modules, "torchvision", package)
    monkeypatch.setitem(sys.modules, "torchvision.datasets", datasets)


def test_download_failure_says_how_to_place_the_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class Offline:
        def __init__(self, root: str, train: bool = True, download: bool = False) -> None:
            raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    _fake_torchvision(monkeypatch, Offline)
    with pytest.raises(DataError) as caught:
        download_cifar10(tmp_path / "root")
    message = _one_line(caught)
    assert "downloading CIFAR-10" in message and "failed" in message and "name resolution" in message
    assert "cifar-10-python.tar.gz" in message and "by hand" in message


def test_download_returns_the_batches_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    class Downloads:
        def __init__(self, root: str, train: bool = True, download: bool = False) -> None:
            calls.append((root, download))
            write_fake_cifar(Path(root))

    _fake_torchvision(monkeypatch, Downloads)
    folder = download_cifar10(tmp_path / "root")
    assert folder == tmp_path / "root" / "cifar-10-batches-py"
    assert calls == [(str(tmp_path / "root"), True)]


def test_reading_never_downloads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class Forbidden:
        def __init__(self, *args: object, **kwargs: object) -> None:
            raise AssertionError("read_cifar10 must never download")

    _fake_torchvision(monkeypatch, Forbidden)
    with pytest.raises(DataError, match="not found"):
        read_cifar10(tmp_path)
