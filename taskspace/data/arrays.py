"""The containers every reader returns: :class:`ImageSplit` and :class:`ImageDataset`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["ImageSplit", "ImageDataset"]


@dataclass(frozen=True, eq=False, repr=False)
class ImageSplit:
    """Images and their labels, in memory.

    Shape:
        - images: ``(N, H, W, C)`` uint8, values 0..255; C = 3 for RGB, 1 for grayscale.
        - labels: ``(N,)`` int64, indices into the dataset's ``class_names``.

    Integer labels of another width are converted to int64; anything else raises ``ValueError``.
    Equality is identity (comparing arrays element-wise is not what ``==`` should do).
    """

    images: np.ndarray
    labels: np.ndarray

    def __post_init__(self) -> None:
        images, labels = self.images, np.asarray(self.labels)
        if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4:
            described = (
                f"dtype {images.dtype}, shape {images.shape}"
                if isinstance(images, np.ndarray)
                else type(images).__name__
            )
            raise ValueError(f"images must be a uint8 array of shape (N, H, W, C), got {described}")
        if labels.ndim != 1 or (labels.size and labels.dtype.kind not in "iu"):
            raise ValueError(f"labels must be a 1-D integer array, got dtype {labels.dtype}, shape {labels.shape}")
        if len(labels) != len(images):
            raise ValueError(f"{len(images)} images but {len(labels)} labels; they must be equal")
        object.__setattr__(self, "labels", labels.astype(np.int64, copy=False))

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(H, W, C)`` of every image."""
        return tuple(int(size) for size in self.images.shape[1:])  # type: ignore[return-value]

    def take(self, indices: Sequence[int] | np.ndarray) -> ImageSplit:
        """A new split holding the rows at ``indices`` (copies, in that order)."""
        rows = np.asarray(indices, dtype=np.int64)
        return ImageSplit(images=self.images[rows], labels=self.labels[rows])

    def __repr__(self) -> str:
        return f"ImageSplit(n={len(self)}, image_shape={self.image_shape})"


@dataclass(frozen=True, eq=False, repr=False)
class ImageDataset:
    """A named dataset with a train and a test split that share class names and image shape.

    Attributes:
        name: ``"cifar10"``, ``"digits"``, or the folder path for image folders.
        class_names: one name per label value, in label order.
        train: the training split.
        test: the test split.
    """

    name: str
    class_names: tuple[str, ...]
    train: ImageSplit
    test: ImageSplit

    def __post_init__(self) -> None:
        names = tuple(self.class_names)
        if not names or not all(isinstance(class_name, str) for class_name in names):
            raise ValueError(f"class_names must be a non-empty sequence of strings, got {self.class_names!r}")
        if len(set(names)) != len(names):
            raise ValueError(f"class_names must be unique, got {names!r}")
        object.__setattr__(self, "class_names", names)
        if self.train.image_shape[2] != self.test.image_shape[2]:
            raise ValueError(
                f"train images have {self.train.image_shape[2]} channels but test images "
                f"{self.test.image_shape[2]}; they must match"
            )
        for split_name, split in (("train", self.train), ("test", self.test)):
            if len(split) and (split.labels.min() < 0 or split.labels.max() >= len(names)):
                raise ValueError(
                    f"{split_name} labels must lie in 0..{len(names) - 1} (one per class name), "
                    f"got {int(split.labels.min())}..{int(split.labels.max())}"
                )

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.class_names)

    def channel_stats(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-channel mean and standard deviation of the train images scaled to [0, 1].

        Population statistics over every pixel, computed in chunks without a float copy of the
        whole split.

        Returns:
            ``(mean, std)``, each float32 of shape ``(C,)``.

        Raises:
            ValueError: the train split is empty.
        """
        cached = self.__dict__.get("_channel_stats")
        if cached is None:
            cached = _channel_stats(self.train.images)
            self.__dict__["_channel_stats"] = cached  # frozen: memoised outside the dataclass fields
        mean, std = cached
        return mean.copy(), std.copy()

    def __repr__(self) -> str:
        return (
            f"ImageDataset(name={self.name!r}, classes={len(self.class_names)}, "
            f"train={self.train!r}, test={self.test!r})"
        )


def _channel_stats(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if len(images) == 0:
        raise ValueError("cannot compute channel statistics of an empty train split")
    _, _, width, channels = images.shape
    # Rows of whole image lines (W*C values): numpy sums wide rows fast, and integer sums are exact.
    lines = images.reshape(-1, width * channels)
    line_totals = np.zeros(width * channels, dtype=np.int64)
    line_totals_of_squares = np.zeros(width * channels, dtype=np.int64)
    chunk_lines = max(1, (1 << 20) // (width * channels))
    for start in range(0, len(lines), chunk_lines):
        chunk = lines[start : start + chunk_lines].astype(np.int32)
        line_totals += chunk.sum(axis=0, dtype=np.int64)
        chunk *= chunk  # 255**2 fits in int32
        line_totals_of_squares += chunk.sum(axis=0, dtype=np.int64)
    count = images.size // channels
    mean = line_totals.reshape(width, channels).sum(axis=0) / count
    mean_of_squares = line_totals_of_squares.reshape(width, channels).sum(axis=0) / count
    variance = np.maximum(mean_of_squares - mean * mean, 0.0)
    return (mean / 255.0).astype(np.float32), (np.sqrt(variance) / 255.0).astype(np.float32)
