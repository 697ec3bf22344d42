"""The real CIFAR-10 under TASKSPACE_DATA (skipped without it): contents, published statistics, cache."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import taskspace.data.cifar as cifar_module
from taskspace.data import (
    CIFAR10_CLASSES,
    CIFAR10_OFFICIAL_MD5,
    ImageDataset,
    read_cifar10,
    safe_unpickle,
    verify_checksums,
)
from taskspace.errors import DataError

# Published in SOURCE.md next to the data (and the usual CIFAR-10 figures).
TRAIN_MEAN = (0.4914, 0.4822, 0.4465)
TRAIN_STD = (0.2470, 0.2435, 0.2616)
META_SHA256 = "e08d89bf2dfecf07bcdc3a00fec1a058b7482336b6fc07582449c63e5666261b"
META_MD5 = "da61d5246d030a1cd73eb9ed999fa3d1"


@pytest.fixture(scope="module")
def cifar(cifar_root: Path, session_cache: Path) -> Iterator[ImageDataset]:
    # Module scope runs before the function-scoped cache isolation, so point the cache here too.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TASKSPACE_CACHE", str(session_cache))
        yield read_cifar10(cifar_root)


def test_shapes_and_types(cifar: ImageDataset) -> None:
    assert cifar.class_names == CIFAR10_CLASSES
    assert cifar.train.images.shape == (50000, 32, 32, 3) and cifar.test.images.shape == (10000, 32, 32, 3)
    assert cifar.train.images.dtype == np.uint8 and cifar.test.labels.dtype == np.int64


def test_class_counts(cifar: ImageDataset) -> None:
    assert np.bincount(cifar.train.labels, minlength=10).tolist() == [5000] * 10
    assert np.bincount(cifar.test.labels, minlength=10).tolist() == [1000] * 10


def test_published_train_mean_and_std(cifar: ImageDataset) -> None:
    mean, std = cifar.channel_stats()
    assert mean.dtype == np.float32 and mean.shape == (3,)
    np.testing.assert_allclose(mean, TRAIN_MEAN, atol=5e-4)
    np.testing.assert_allclose(std, TRAIN_STD, atol=5e-4)
    assert np.round(mean, 3).tolist() == pytest.approx([0.491, 0.482, 0.447])
    assert np.round(std, 3).tolist() == pytest.approx([0.247, 0.243, 0.262])


def test_spot_rows_match_the_published_ones(cifar: ImageDataset, cifar_root: Path) -> None:
    with open(cifar_root / "cifar-10-batches-py" / "test_batch", "rb") as handle:
        filenames = safe_unpickle(handle, source="test_batch")["filenames"]
    cat = cifar.test.images[filenames.index("domestic_cat_s_000907.png")]
    assert cat[0, :9, 0].tolist() == [158, 159, 165, 166, 160, 156, 162, 159, 158]  # first red values
    assert cat[31, -3:, 2].tolist() == [124, 129, 110]  # last blue values
    assert cifar.test.labels[filenames.index("domestic_cat_s_000907.png")] == CIFAR10_CLASSES.index("cat")
    ship = cifar.test.images[filenames.index("hydrofoil_s_000078.png")]
    assert ship[0, :9, 0].tolist() == [235, 231, 232, 232, 232, 232, 232, 232, 232]

    # The frog in the train split, found by its pixels.
    images = cifar.train.images
    matches = np.flatnonzero(
        (images[:, 0, :3, 0] == [59, 43, 50]).all(axis=1) & (images[:, 31, -3:, 2] == [140, 84, 72]).all(axis=1)
    )
    assert len(matches) == 1 and cifar.train.labels[matches[0]] == CIFAR10_CLASSES.index("frog")


def test_images_are_unique_and_train_and_test_do_not_overlap(cifar: ImageDataset) -> None:
    def image_digests(images: np.ndarray) -> set[bytes]:
        return {hashlib.blake2b(row, digest_size=16).digest() for row in images.reshape(len(images), -1)}

    train, test = image_digests(cifar.train.images), image_digests(cifar.test.images)
    assert len(train) == 50000 and len(test) == 10000 and not train & test


def test_second_read_is_served_from_the_cache_without_pickle(
    cifar: ImageDataset, cifar_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("pickle was read although the cache is valid")

    monkeypatch.setattr(cifar_module, "safe_unpickle", refuse)
    started = time.perf_counter()
    again = read_cifar10(cifar_root)
    elapsed = time.perf_counter() - started
    # np.array_equal: np.testing's version spends seconds on arrays this large.
    assert np.array_equal(again.train.images, cifar.train.images)
    assert np.array_equal(again.train.labels, cifar.train.labels)
    assert np.array_equal(again.test.images, cifar.test.images)
    assert np.array_equal(again.test.labels, cifar.test.labels)
    assert elapsed < 5.0, f"cached read took {elapsed:.2f} s"


def test_truncated_real_batch_is_refused(cifar_root: Path, tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    source = cifar_root / "cifar-10-batches-py"
    for name in ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "batches.meta"):
        (folder / name).symlink_to(source / name)
    with open(source / "test_batch", "rb") as handle:
        (folder / "test_batch").write_bytes(handle.read(1_000_000))
    with pytest.raises(DataError, match=r"test_batch' is truncated or corrupt.*delete it") as caught:
        read_cifar10(tmp_path)
    assert "\n" not in str(caught.value)


def test_checksums_of_the_rebuilt_copy(cifar_root: Path) -> None:
    folder = cifar_root / "cifar-10-batches-py"
    verify_checksums(folder, {"batches.meta": META_SHA256})
    verify_checksums(folder, {"batches.meta": META_MD5})
    # The copy is rebuilt, so the official md5 values do not match (SOURCE.md says so).
    with pytest.raises(DataError, match="checksum mismatch for .*batches.meta"):
        verify_checksums(folder, {"batches.meta": CIFAR10_OFFICIAL_MD5["batches.meta"]})
