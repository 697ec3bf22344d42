"""The embedded digits and users' own image folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from taskspace.data import DIGIT_CLASSES, image_folder_class_names, load_digits_dataset, read_image_folder
from taskspace.errors import ConfigError, DataError

# ----------------------------------------------------------------------------------------------
# Digits


def test_digits_shapes_values_and_split() -> None:
    digits = load_digits_dataset()
    assert digits.name == "digits" and digits.class_names == DIGIT_CLASSES == tuple("0123456789")
    assert digits.train.images.shape == (1347, 8, 8, 1) and digits.test.images.shape == (450, 8, 8, 1)
    assert digits.train.images.dtype == np.uint8 and digits.train.labels.dtype == np.int64
    assert digits.train.images.max() == 255 and digits.train.images.min() == 0
    # Values 0..16 scaled to 0..255: only 17 distinct levels.
    assert len(np.unique(np.concatenate([digits.train.images.ravel(), digits.test.images.ravel()]))) == 17
    train_counts = np.bincount(digits.train.labels, minlength=10)
    test_counts = np.bincount(digits.test.labels, minlength=10)
    assert np.all(np.abs(test_counts / (train_counts + test_counts) - 0.25) < 0.02)  # stratified


def test_digits_split_is_deterministic() -> None:
    first, again, other = load_digits_dataset(seed=3), load_digits_dataset(seed=3), load_digits_dataset(seed=4)
    assert np.array_equal(first.test.images, again.test.images) and np.array_equal(first.test.labels, again.test.labels)
    assert not np.array_equal(first.test.images, other.test.images)
    assert len(load_digits_dataset(test_fraction=0.5).test) in (898, 899)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 0.001])
def test_digits_rejects_unusable_fractions(fraction: float) -> None:
    with pytest.raises(ConfigError, match="test_fraction"):
        load_digits_dataset(test_fraction=fraction)


# ----------------------------------------------------------------------------------------------
# Image folders


def _png(path: Path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def _make_folder(root: Path, *, size: int = 4, per_class: int = 2) -> dict[tuple[str, str, str], np.ndarray]:
    generator = np.random.default_rng(0)
    written = {}
    for split in ("train", "test"):
        for class_name in ("dog", "cat", "bird"):
            for index in range(per_class):
                pixels = generator.integers(0, 256, (size, size, 3), dtype=np.uint8)
                _png(root / split / class_name / f"img{index}.png", pixels)
                written[(split, class_name, f"img{index}.png")] = pixels
    return written


def test_reads_image_folder_layout(tmp_path: Path) -> None:
    written = _make_folder(tmp_path)
    (tmp_path / "train" / "cat" / "notes.txt").write_text("not an image", encoding="utf-8")
    (tmp_path / "train" / ".hidden").mkdir()
    dataset = read_image_folder(tmp_path)
    assert dataset.name == str(tmp_path)
    assert dataset.class_names == ("bird", "cat", "dog")
    assert dataset.train.images.shape == (6, 4, 4, 3) and dataset.test.images.shape == (6, 4, 4, 3)
    assert dataset.train.labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert np.array_equal(dataset.train.images[2], written[("train", "cat", "img0.png")])  # PNG is lossless
    assert np.array_equal(dataset.test.images[5], written[("test", "dog", "img1.png")])
    assert image_folder_class_names(tmp_path) == ("bird", "cat", "dog")


def test_grayscale_images_become_rgb(tmp_path: Path) -> None:
    _make_folder(tmp_path)
    gray = np.arange(16, dtype=np.uint8).reshape(4, 4) * 10
    _png(tmp_path / "train" / "cat" / "gray.png", gray)
    dataset = read_image_folder(tmp_path)
    row = int(np.flatnonzero(dataset.train.labels == 1)[0])  # files are read in sorted order: gray.png first
    assert np.array_equal(dataset.train.images[row], np.repeat(gray[..., None], 3, axis=2))


def test_sizes_must_match_unless_resized(tmp_path: Path) -> None:
    _make_folder(tmp_path)
    _png(tmp_path / "test" / "dog" / "big.png", np.zeros((6, 5, 3), np.uint8))
    with pytest.raises(DataError, match=r"big.png' is 5x6 but .* is 4x4; resize them to one size first") as caught:
        read_image_folder(tmp_path)
    assert "\n" not in str(caught.value)
    resized = read_image_folder(tmp_path, image_size=3)
    assert resized.train.images.shape == (6, 3, 3, 3) and resized.test.images.shape == (7, 3, 3, 3)


def test_empty_class_folder_is_named(tmp_path: Path) -> None:
    _make_folder(tmp_path)
    for image in (tmp_path / "test" / "bird").iterdir():
        image.unlink()
    with pytest.raises(DataError, match=r"class folder '.*test/bird' holds no images"):
        read_image_folder(tmp_path)


def test_unreadable_image_is_named(tmp_path: Path) -> None:
    _make_folder(tmp_path)
    broken = tmp_path / "train" / "dog" / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(DataError, match=r"cannot read image '.*broken.png'"):
        read_image_folder(tmp_path)


def test_truncated_image_is_named(tmp_path: Path) -> None:
    _make_folder(tmp_path, size=16)
    path = tmp_path / "test" / "cat" / "img0.png"
    path.write_bytes(path.read_bytes()[:60])
    with pytest.raises(DataError, match=r"cannot read image '.*img0.png'"):
        read_image_folder(tmp_path)


def test_classes_must_agree_between_splits(tmp_path: Path) -> None:
    _make_folder(tmp_path)
    _png(tmp_path / "test" / "fish" / "a.png", np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(DataError, match=r"only in train: none; only in test: \['fish'\]"):
        image_folder_class_names(tmp_path)


@pytest.mark.parametrize(
    ("layout", "expected"),
    [("missing", "not found"), ("no-test", "no 'test' sub-folder"), ("no-classes", "holds no class folders")],
)
def test_broken_layouts(tmp_path: Path, layout: str, expected: str) -> None:
    root = tmp_path / "images"
    if layout != "missing":
        _make_folder(root)
        if layout == "no-test":
            for path in sorted((root / "test").rglob("*"), reverse=True):
                path.unlink() if path.is_file() else path.rmdir()
            (root / "test").rmdir()
        else:
            for path in sorted((root / "train").rglob("*"), reverse=True):
                path.unlink() if path.is_file() else path.rmdir()
    with pytest.raises(DataError, match=expected):
        read_image_folder(root)


@pytest.mark.parametrize("size", [0, -3, 2.5, True])
def test_image_size_must_be_a_positive_integer(tmp_path: Path, size: object) -> None:
    with pytest.raises(ConfigError, match="image_size"):
        read_image_folder(tmp_path, image_size=size)  # type: ignore[arg-type]
