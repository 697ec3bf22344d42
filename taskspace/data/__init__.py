"""Datasets for taskspace: readers, the array cache, and augmentation on tensors.

Everything public is re-exported here; the modules below are implementation detail.
Importing this package reads no data and imports neither torch nor torchvision
(:func:`random_crop_flip` imports torch when first used).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from taskspace.data.arrays import ImageDataset, ImageSplit
from taskspace.data.cifar import (
    CIFAR10_CLASSES,
    CIFAR10_FILES,
    CIFAR10_FOLDER,
    CIFAR10_OFFICIAL_MD5,
    cifar10_folder,
    download_cifar10,
    read_checksum_file,
    read_cifar10,
    read_cifar10_cache_file,
    verify_checksums,
)
from taskspace.data.digits import DIGIT_CLASSES, load_digits_dataset
from taskspace.data.image_folder import (
    IMAGE_EXTENSIONS,
    image_folder_class_names,
    read_image_folder,
)
from taskspace.data.registry import (
    DATASETS,
    dataset_class_names,
    dataset_names,
    load_dataset,
)
from taskspace.data.roots import resolve_cache_dir, resolve_data_root
from taskspace.data.safe_pickle import safe_unpickle

if TYPE_CHECKING:
    from taskspace.data.augment import random_crop_flip

__all__ = [
    "CIFAR10_CLASSES",
    "CIFAR10_FILES",
    "CIFAR10_FOLDER",
    "CIFAR10_OFFICIAL_MD5",
    "DATASETS",
    "DIGIT_CLASSES",
    "IMAGE_EXTENSIONS",
    "ImageDataset",
    "ImageSplit",
    "cifar10_folder",
    "dataset_class_names",
    "dataset_names",
    "download_cifar10",
    "image_folder_class_names",
    "load_dataset",
    "load_digits_dataset",
    "random_crop_flip",
    "read_checksum_file",
    "read_cifar10",
    "read_cifar10_cache_file",
    "read_image_folder",
    "resolve_cache_dir",
    "resolve_data_root",
    "safe_unpickle",
    "verify_checksums",
]


def __getattr__(name: str) -> Any:
    # torch takes a second or more to import; only pay for it when augmentation is used.
    if name == "random_crop_flip":
        from taskspace.data.augment import random_crop_flip

        return random_crop_flip
    raise AttributeError(f"module 'taskspace.data' has no attribute '{name}'")
