"""Datasets by name: dispatch, typo suggestions, class names without loading, the public surface."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import taskspace.data as data
from taskspace.data import (
    CIFAR10_CLASSES,
    DIGIT_CLASSES,
    dataset_class_names,
    dataset_names,
    load_dataset,
)
from taskspace.errors import ConfigError, DataError


def _tiny_folder(root: Path) -> Path:
    for split in ("train", "test"):
        for class_name in ("yes", "no"):
            folder = root / split / class_name
            folder.mkdir(parents=True)
            Image.fromarray(np.full((2, 2, 3), 7, np.uint8)).save(folder / "a.png")
    return root


def test_builtin_names() -> None:
    assert dataset_names() == ["cifar10", "digits"]


def test_digits_by_name() -> None:
    dataset = load_dataset("digits", data_root="/ignored")
    assert dataset.name == "digits" and len(dataset.train) + len(dataset.test) == 1797


def test_cifar10_by_name_reads_from_the_given_root(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=str(tmp_path / "cifar-10-batches-py")):
        load_dataset("cifar10", data_root=tmp_path)


def test_folder_by_path(tmp_path: Path) -> None:
    root = _tiny_folder(tmp_path / "mine")
    dataset = load_dataset(str(root))
    assert dataset.class_names == ("no", "yes") and dataset.name == str(root)
    assert dataset_class_names(str(root)) == ("no", "yes")


@pytest.mark.parametrize(("name", "suggestion"), [("cifar-10", "cifar10"), ("CIFAR10", "cifar10"), ("digts", "digits")])
def test_unknown_name_suggests_the_close_one(name: str, suggestion: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_dataset(name)
    message = str(caught.value)
    assert message == (
        f"unknown dataset '{name}'; did you mean '{suggestion}'? "
        "(choose from cifar10, digits, or a folder in ImageFolder layout)"
    )


def test_unknown_name_without_a_close_match(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^unknown dataset '.*nothing-here' \(choose from cifar10, digits"):
        dataset_class_names(str(tmp_path / "nothing-here"))
    with pytest.raises(ConfigError):
        load_dataset("")


def test_class_names_without_loading(tmp_path: Path) -> None:
    assert dataset_class_names("cifar10", data_root=tmp_path / "absent") == CIFAR10_CLASSES
    assert dataset_class_names("digits") == DIGIT_CLASSES
    root = _tiny_folder(tmp_path / "mine")
    (root / "train" / "yes" / "a.png").write_bytes(b"broken: never opened for class names")
    assert dataset_class_names(str(root)) == ("no", "yes")


def test_public_surface_is_complete_and_importable() -> None:
    for name in data.__all__:
        assert getattr(data, name) is not None
    required = {
        "ImageSplit", "ImageDataset", "CIFAR10_CLASSES", "DIGIT_CLASSES", "resolve_data_root", "resolve_cache_dir",
        "safe_unpickle", "read_cifar10", "CIFAR10_OFFICIAL_MD5", "verify_checksums", "read_checksum_file",
        "download_cifar10", "load_digits_dataset", "read_image_folder", "load_dataset", "dataset_class_names",
        "random_crop_flip",
    }
    assert required <= set(data.__all__)
    assert len(data.__all__) == len(set(data.__all__))
    with pytest.raises(AttributeError):
        data.no_such_name  # noqa: B018
