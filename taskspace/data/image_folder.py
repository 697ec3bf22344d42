"""Users' own images in the torchvision ImageFolder layout, one layout per split.

Expected layout::

    root/train/<class name>/<image>.png
    root/test/<class name>/<image>.png

Class names are the sorted sub-folder names and must be the same in ``train`` and ``test``.
Images are converted to RGB; they are resized to ``image_size`` if given, else must all share one size.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from taskspace.data.arrays import ImageDataset, ImageSplit
from taskspace.errors import ConfigError, DataError

__all__ = ["IMAGE_EXTENSIONS", "SPLIT_FOLDERS", "read_image_folder", "image_folder_class_names"]

#: File endings read as images (case-insensitive); other files in class folders are ignored.
IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".ppm", ".pgm", ".tif", ".tiff", ".webp")
SPLIT_FOLDERS: tuple[str, ...] = ("train", "test")
_LAYOUT = "expected <root>/train/<class>/<image> and <root>/test/<class>/<image>"


def _visible_subfolders(folder: Path) -> list[str]:
    return sorted(entry.name for entry in folder.iterdir() if entry.is_dir() and not entry.name.startswith("."))


def image_folder_class_names(root: str | os.PathLike[str]) -> tuple[str, ...]:
    """The class names of an image folder (sorted sub-folder names), without reading any image.

    Raises:
        DataError: the folder is missing, lacks ``train``/``test``, has no class folders, or the
            class folders of ``train`` and ``test`` differ.
    """
    root_path = Path(root).expanduser()
    if not root_path.is_dir():
        raise DataError(f"image folder '{root_path}' not found; {_LAYOUT}")
    names_per_split = {}
    for split in SPLIT_FOLDERS:
        split_folder = root_path / split
        if not split_folder.is_dir():
            raise DataError(f"image folder '{root_path}' has no '{split}' sub-folder; {_LAYOUT}")
        names = _visible_subfolders(split_folder)
        if not names:
            raise DataError(f"'{split_folder}' holds no class folders; {_LAYOUT}")
        names_per_split[split] = names
    train_names, test_names = names_per_split["train"], names_per_split["test"]
    if train_names != test_names:
        only_train = sorted(set(train_names) - set(test_names))
        only_test = sorted(set(test_names) - set(train_names))
        raise DataError(
            f"image folder '{root_path}' has different classes in train and test "
            f"(only in train: {only_train or 'none'}; only in test: {only_test or 'none'}); "
            "give both splits the same class folders"
        )
    return tuple(train_names)


def _image_files(class_folder: Path) -> list[Path]:
    files = sorted(
        entry
        for entry in class_folder.iterdir()
        if entry.is_file() and not entry.name.startswith(".") and entry.suffix.lower() in IMAGE_EXTENSIONS
    )
    if not files:
        raise DataError(
            f"class folder '{class_folder}' holds no images (endings: {', '.join(IMAGE_EXTENSIONS)}); "
            "add images or remove the folder from both splits"
        )
    return files


def _read_image(path: Path, image_size: int | None) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            rgb = image.convert("RGB")
            if image_size is not None and rgb.size != (image_size, image_size):
                rgb = rgb.resize((image_size, image_size), Image.Resampling.BILINEAR)
            return np.asarray(rgb, dtype=np.uint8)
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DataError(f"cannot read image '{path}' ({reason}); replace or remove the file") from None


def _read_split(split_folder: Path, class_names: tuple[str, ...], image_size: int | None) -> ImageSplit:
    images: list[np.ndarray] = []
    labels: list[int] = []
    first_file: Path | None = None
    for label, class_name in enumerate(class_names):
        for path in _image_files(split_folder / class_name):
            pixels = _read_image(path, image_size)
            if first_file is None:
                first_file = path
            elif pixels.shape != images[0].shape:
                height, width = images[0].shape[:2]
                raise DataError(
                    f"image '{path}' is {pixels.shape[1]}x{pixels.shape[0]} but '{first_file}' is "
                    f"{width}x{height}; resize them to one size first "
                    "(read_image_folder(root, image_size=N) does it in Python)"
                )
            images.append(pixels)
            labels.append(label)
    return ImageSplit(images=np.stack(images), labels=np.asarray(labels, dtype=np.int64))


def read_image_folder(root: str | os.PathLike[str], *, image_size: int | None = None) -> ImageDataset:
    """Read a folder of images in the ImageFolder layout, one sub-folder per split.

    Args:
        root: the folder that holds ``train/`` and ``test/``, each with one folder per class.
        image_size: resize every image to ``image_size x image_size`` (bilinear); ``None`` keeps
            the sizes, which must then all be equal (train and test alike).

    Returns:
        An :class:`ImageDataset` named after ``root`` with RGB images ``(N, H, W, 3)`` uint8 and
        class names in sorted folder order.

    Raises:
        ConfigError: ``image_size`` is not a positive integer.
        DataError: the layout is wrong, a class folder is empty, an image cannot be read, or the
            sizes differ without ``image_size`` (each message names the folder or file).
    """
    if image_size is not None and (isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1):
        raise ConfigError(f"image_size must be a positive integer or None, got {image_size!r}")
    root_path = Path(root).expanduser()
    class_names = image_folder_class_names(root_path)
    train = _read_split(root_path / "train", class_names, image_size)
    test = _read_split(root_path / "test", class_names, image_size)
    if train.image_shape != test.image_shape:
        raise DataError(
            f"train images in '{root_path}' are {train.image_shape[1]}x{train.image_shape[0]} but test images are "
            f"{test.image_shape[1]}x{test.image_shape[0]}; resize them to one size first "
            "(read_image_folder(root, image_size=N) does it in Python)"
        )
    return ImageDataset(name=str(root), class_names=class_names, train=train, test=test)
