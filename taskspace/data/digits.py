"""The 8x8 handwritten digits that ship with scikit-learn: a tiny dataset that needs no download."""

from __future__ import annotations

import numpy as np

from taskspace.data.arrays import ImageDataset, ImageSplit
from taskspace.errors import ConfigError

__all__ = ["DIGIT_CLASSES", "load_digits_dataset"]

DIGIT_CLASSES: tuple[str, ...] = tuple(str(digit) for digit in range(10))

_DIGITS_MAX_VALUE = 16  # sklearn's digits count ink in 4x4 blocks: values 0..16


def load_digits_dataset(*, test_fraction: float = 0.25, seed: int = 0) -> ImageDataset:
    """The 1,797 scikit-learn digits as 8x8 grayscale images with a stratified train/test split.

    Values 0..16 are scaled to 0..255 (rounded) so the images look like any other uint8 image.
    The split is deterministic for a given ``seed`` and keeps the class proportions in both parts.

    Args:
        test_fraction: share of the images that go to the test split, strictly between 0 and 1.
        seed: seed of the split.

    Returns:
        An :class:`ImageDataset` named ``"digits"`` with images ``(N, 8, 8, 1)`` uint8 and class
        names ``"0"`` .. ``"9"``.

    Raises:
        ConfigError: ``test_fraction`` leaves a split without every class.
    """
    if not 0.0 < float(test_fraction) < 1.0:
        raise ConfigError(f"test_fraction must lie strictly between 0 and 1, got {test_fraction!r}; try 0.25")
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    images = np.rint(bunch.images * (255.0 / _DIGITS_MAX_VALUE)).clip(0, 255).astype(np.uint8)[..., np.newaxis]
    labels = bunch.target.astype(np.int64)
    indices = np.arange(len(labels))
    try:
        train_indices, test_indices = train_test_split(
            indices, test_size=float(test_fraction), random_state=int(seed), stratify=labels
        )
    except ValueError as error:
        raise ConfigError(
            f"test_fraction={test_fraction!r} cannot split {len(labels)} digits with every class on both "
            f"sides ({error}); choose a value nearer 0.25"
        ) from None
    train_indices, test_indices = np.sort(train_indices), np.sort(test_indices)
    return ImageDataset(
        name="digits",
        class_names=DIGIT_CLASSES,
        train=ImageSplit(images=images[train_indices], labels=labels[train_indices]),
        test=ImageSplit(images=images[test_indices], labels=labels[test_indices]),
    )
