"""Datasets by name: the built-in ones from a registry, anything else as an image-folder path."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from taskspace.data.arrays import ImageDataset
from taskspace.data.cifar import CIFAR10_CLASSES, read_cifar10
from taskspace.data.digits import DIGIT_CLASSES, load_digits_dataset
from taskspace.data.image_folder import image_folder_class_names, read_image_folder
from taskspace.errors import ConfigError, did_you_mean
from taskspace.registry import Registry

__all__ = ["BuiltinDataset", "DATASETS", "dataset_names", "load_dataset", "dataset_class_names"]


@dataclass(frozen=True)
class BuiltinDataset:
    """A dataset known by name.

    Attributes:
        load: reads the dataset; takes the data root (ignored by datasets that need no files).
        class_names: the class names, known without reading anything.
    """

    load: Callable[[str | os.PathLike[str] | None], ImageDataset]
    class_names: tuple[str, ...]


def _load_digits(data_root: str | os.PathLike[str] | None) -> ImageDataset:
    del data_root  # embedded in scikit-learn
    return load_digits_dataset()


DATASETS: Registry[BuiltinDataset] = Registry("dataset")
DATASETS.register("cifar10")(BuiltinDataset(load=read_cifar10, class_names=CIFAR10_CLASSES))
DATASETS.register("digits")(BuiltinDataset(load=_load_digits, class_names=DIGIT_CLASSES))


def dataset_names() -> list[str]:
    """Names of the built-in datasets, sorted (any folder in ImageFolder layout works too)."""
    return DATASETS.names()


def _resolve(name: str) -> BuiltinDataset | Path:
    """The built-in dataset called ``name``, else ``name`` as an existing folder."""
    if name in DATASETS:
        return DATASETS.get(name)
    folder = Path(name).expanduser()
    if str(name).strip() and folder.is_dir():
        return folder
    raise ConfigError(
        f"unknown dataset '{name}'{did_you_mean(str(name).lower(), DATASETS.names())} "
        f"(choose from {', '.join(DATASETS.names())}, or a folder in ImageFolder layout)"
    )


def load_dataset(name: str, *, data_root: str | os.PathLike[str] | None = None) -> ImageDataset:
    """Load a dataset by name.

    Built-in names win over folders of the same name (write ``./cifar10`` to mean a folder).

    Args:
        name: ``"cifar10"``, ``"digits"``, or the path of a folder in ImageFolder layout
            (``<name>/train/<class>/*`` and ``<name>/test/<class>/*``).
        data_root: where CIFAR-10 lives; see :func:`~taskspace.data.roots.resolve_data_root`.

    Returns:
        The dataset.

    Raises:
        ConfigError: ``name`` is neither a built-in dataset nor an existing folder (with a suggestion).
        DataError: the dataset's files are missing or damaged.
    """
    resolved = _resolve(name)
    if isinstance(resolved, Path):
        return read_image_folder(name)
    return resolved.load(data_root)


def dataset_class_names(name: str, *, data_root: str | os.PathLike[str] | None = None) -> tuple[str, ...]:
    """The class names of a dataset, without reading any image.

    Args:
        name: as for :func:`load_dataset`.
        data_root: accepted for symmetry with :func:`load_dataset`; no built-in dataset needs it here.

    Returns:
        One name per label value, in label order.

    Raises:
        ConfigError: unknown dataset name.
        DataError: an image folder with a broken layout.
    """
    del data_root  # the built-in class names are constants
    resolved = _resolve(name)
    if isinstance(resolved, Path):
        return image_folder_class_names(resolved)
    return resolved.class_names
