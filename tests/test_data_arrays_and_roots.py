"""The containers, and data root / cache folder resolution."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from taskspace.data import ImageDataset, ImageSplit, resolve_cache_dir, resolve_data_root
from taskspace.errors import DataError


def _split(count: int = 4, channels: int = 3, label_dtype: type = np.int64) -> ImageSplit:
    images = np.arange(count * 2 * 2 * channels, dtype=np.uint8).reshape(count, 2, 2, channels)
    return ImageSplit(images=images, labels=(np.arange(count) % 2).astype(label_dtype))


def test_split_basics() -> None:
    split = _split(5, label_dtype=np.int32)
    assert len(split) == 5 and split.image_shape == (2, 2, 3) and split.labels.dtype == np.int64
    subset = split.take([4, 0])
    assert len(subset) == 2 and subset.labels.tolist() == [0, 0]
    assert np.array_equal(subset.images[0], split.images[4])
    assert repr(split) == "ImageSplit(n=5, image_shape=(2, 2, 3))"
    with pytest.raises(AttributeError):
        split.images = split.images  # type: ignore[misc]  # frozen


@pytest.mark.parametrize(
    ("images", "labels", "expected"),
    [
        (np.zeros((2, 2, 2, 3), np.float32), np.zeros(2, np.int64), "uint8"),
        (np.zeros((2, 2, 2), np.uint8), np.zeros(2, np.int64), "uint8"),
        (np.zeros((2, 2, 2, 3), np.uint8), np.zeros(3, np.int64), "2 images but 3 labels"),
        (np.zeros((2, 2, 2, 3), np.uint8), np.zeros(2, np.float64), "integer"),
    ],
)
def test_split_validation(images: np.ndarray, labels: np.ndarray, expected: str) -> None:
    with pytest.raises(ValueError, match=expected):
        ImageSplit(images=images, labels=labels)


def test_dataset_validation() -> None:
    dataset = ImageDataset(name="toy", class_names=["a", "b"], train=_split(), test=_split(2))  # type: ignore[arg-type]
    assert dataset.class_names == ("a", "b") and dataset.num_classes == 2
    with pytest.raises(ValueError, match="labels must lie in 0..0"):
        ImageDataset(name="toy", class_names=("a",), train=_split(), test=_split())
    with pytest.raises(ValueError, match="channels"):
        ImageDataset(name="toy", class_names=("a", "b"), train=_split(), test=_split(channels=1))
    with pytest.raises(ValueError, match="unique"):
        ImageDataset(name="toy", class_names=("a", "a"), train=_split(), test=_split())


def test_channel_stats_match_numpy() -> None:
    generator = np.random.default_rng(0)
    images = generator.integers(0, 256, (37, 5, 7, 3), dtype=np.uint8)
    dataset = ImageDataset(
        name="toy", class_names=("a",), train=ImageSplit(images, np.zeros(37, np.int64)), test=_split(1)
    )
    mean, std = dataset.channel_stats()
    scaled = images.astype(np.float64) / 255.0
    assert mean.dtype == np.float32 and mean.shape == (3,) and std.shape == (3,)
    np.testing.assert_allclose(mean, scaled.mean(axis=(0, 1, 2)), rtol=1e-6)
    np.testing.assert_allclose(std, scaled.std(axis=(0, 1, 2)), rtol=1e-6)
    mean[:] = 0  # callers get copies
    assert dataset.channel_stats()[0][0] != 0


def test_data_root_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKSPACE_DATA", str(tmp_path / "from-env"))
    assert resolve_data_root(tmp_path / "explicit") == tmp_path / "explicit"
    assert resolve_data_root() == tmp_path / "from-env"
    monkeypatch.setenv("TASKSPACE_DATA", "")  # empty counts as unset: fall through to the cache folder
    monkeypatch.setenv("TASKSPACE_CACHE", str(tmp_path / "cache-env"))
    assert resolve_data_root() == tmp_path / "cache-env"
    assert not (tmp_path / "cache-env").exists()  # resolving the data root creates nothing


def test_cache_dir_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKSPACE_CACHE", str(tmp_path / "explicit"))
    assert resolve_cache_dir() == tmp_path / "explicit" and (tmp_path / "explicit").is_dir()
    monkeypatch.delenv("TASKSPACE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert resolve_cache_dir() == tmp_path / "xdg" / "taskspace"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert resolve_cache_dir() == tmp_path / "home" / ".cache" / "taskspace"


def test_cache_dir_that_cannot_be_created(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "file").write_text("x", encoding="utf-8")
    monkeypatch.setenv("TASKSPACE_CACHE", str(tmp_path / "file" / "cache"))
    with pytest.raises(DataError, match="cannot create the cache folder .*set TASKSPACE_CACHE"):
        resolve_cache_dir()


def test_importing_the_package_is_light() -> None:
    heavy = "('torch', 'torchvision', 'sklearn', 'PIL')"
    code = f"import sys, taskspace.data; print(sorted(m for m in {heavy} if m in sys.modules))"
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "[]"
