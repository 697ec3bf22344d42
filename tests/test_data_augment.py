"""Batched random crop and flip on tensors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from taskspace.data import random_crop_flip
from taskspace.errors import ConfigError


def _images(batch: int, seed: int = 0, size: int = 8) -> torch.Tensor:
    # Strictly positive random content: every window is distinguishable from every other one.
    return torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(seed)) + 0.1


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _find_crop(output: torch.Tensor, images: torch.Tensor, padding: int) -> list[set[tuple[int, int, bool]]]:
    """For every image, the (row offset, column offset, flipped) windows of the padded image equal to the output."""
    height, width = images.shape[-2:]
    padded = F.pad(images, (padding,) * 4)
    found: list[set[tuple[int, int, bool]]] = [set() for _ in range(len(images))]
    for row in range(2 * padding + 1):
        for column in range(2 * padding + 1):
            window = padded[:, :, row : row + height, column : column + width]
            for flipped, candidate in ((False, window), (True, window.flip(-1))):
                for index in torch.nonzero((candidate == output).flatten(1).all(dim=1)).flatten().tolist():
                    found[index].add((row, column, flipped))
    return found


def test_shape_dtype_and_input_untouched() -> None:
    images = _images(5).double()
    before = images.clone()
    output = random_crop_flip(images, generator=_generator(0))
    assert output.shape == images.shape and output.dtype == torch.float64 and output.device == images.device
    assert torch.equal(images, before)


def test_equal_seeds_give_equal_results_and_other_seeds_differ() -> None:
    images = _images(32)
    first = random_crop_flip(images, generator=_generator(7))
    again = random_crop_flip(images, generator=_generator(7))
    other = random_crop_flip(images, generator=_generator(8))
    assert torch.equal(first, again) and not torch.equal(first, other)


def test_every_output_is_a_window_of_the_padded_image_and_all_windows_occur() -> None:
    padding = 2
    images = _images(600, size=6)
    output = random_crop_flip(images, generator=_generator(1), padding=padding)
    found = _find_crop(output, images, padding)
    assert all(len(windows) == 1 for windows in found)  # each output is exactly one shifted (maybe flipped) copy
    drawn = [next(iter(windows)) for windows in found]
    assert {(row, column) for row, column, _ in drawn} == {(r, c) for r in range(5) for c in range(5)}
    flipped_share = sum(flipped for _, _, flipped in drawn) / len(drawn)
    assert 0.4 < flipped_share < 0.6


def test_zero_padding_only_flips_and_the_flip_is_horizontal() -> None:
    images = _images(64)
    output = random_crop_flip(images, generator=_generator(2), padding=0)
    unchanged = (output == images).flatten(1).all(dim=1)
    mirrored = (output == images.flip(-1)).flatten(1).all(dim=1)
    assert torch.all(unchanged ^ mirrored) and unchanged.any() and mirrored.any()
    assert torch.equal(output[mirrored][:, :, :, 0], images[mirrored][:, :, :, -1])  # left column came from the right


def test_no_flip_no_padding_is_identity() -> None:
    images = _images(4)
    assert torch.equal(random_crop_flip(images, generator=_generator(0), padding=0, flip=False), images)


def test_without_flip_nothing_is_mirrored() -> None:
    images = _images(200, size=6)
    found = _find_crop(random_crop_flip(images, generator=_generator(3), padding=1, flip=False), images, 1)
    assert all(windows and not any(flipped for *_, flipped in windows) for windows in found)


def test_cifar_sized_batch() -> None:
    images = torch.rand(128, 3, 32, 32, generator=_generator(0))
    output = random_crop_flip(images, generator=_generator(0))
    assert output.shape == (128, 3, 32, 32)
    # Zero padding shows up as zero borders in some crops; the content stays within [0, 1).
    assert output.min() >= 0 and output.max() < 1 and (output == 0).any()


@pytest.mark.parametrize("bad", [torch.rand(3, 8, 8), torch.zeros(2, 3, 8, 8, dtype=torch.uint8)])
def test_rejects_non_float_or_non_4d(bad: torch.Tensor) -> None:
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        random_crop_flip(bad, generator=_generator(0))


@pytest.mark.parametrize("padding", [-1, 1.5])
def test_rejects_bad_padding(padding: object) -> None:
    with pytest.raises(ConfigError, match="padding"):
        random_crop_flip(_images(2), generator=_generator(0), padding=padding)  # type: ignore[arg-type]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_images_with_a_cpu_generator() -> None:
    images = _images(16).cuda()
    output = random_crop_flip(images, generator=_generator(5))
    assert output.is_cuda
    assert torch.equal(output.cpu(), random_crop_flip(images.cpu(), generator=_generator(5)))
