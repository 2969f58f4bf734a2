"""crop_grid: crops are slices of the source pixels (never resampled), laid out as documented."""
from __future__ import annotations

import numpy as np
import pytest

from fingerprinting.crops import ALIGN, crop_grid

RNG = np.random.default_rng(3)


def image(height: int, width: int) -> np.ndarray:
    return RNG.integers(0, 256, (height, width, 3), dtype=np.uint8)


def locate(pixels: np.ndarray, crop: np.ndarray) -> tuple[int, int]:
    """Where ``crop`` sits in ``pixels`` as an exact copy (random pixels make the match unique)."""
    size = crop.shape[0]
    candidates = np.argwhere((pixels[: 1 - size or None, : 1 - size or None] == crop[0, 0]).all(axis=-1))
    hits = [
        (top, left)
        for top, left in candidates
        if np.array_equal(pixels[top : top + size, left : left + size], crop)
    ]
    assert len(hits) == 1, "the crop is not an unaltered window of the source"
    return int(hits[0][0]), int(hits[0][1])


@pytest.mark.parametrize(("height", "width"), [(64, 64), (100, 120), (127, 127)])
def test_up_to_twice_the_crop_gives_one_centre_crop(height: int, width: int) -> None:
    pixels = image(height, width)
    crops = crop_grid(pixels, 64, max_crops=4)
    assert crops.shape == (1, 64, 64, 3) and crops.dtype == np.uint8
    top, left = locate(pixels, crops[0])
    assert abs(top - (height - 64) / 2) < ALIGN and abs(left - (width - 64) / 2) < ALIGN


@pytest.mark.parametrize(
    ("height", "width", "max_crops", "count"),
    [(512, 512, 4, 4), (256, 200, 4, 4), (512, 512, 9, 9), (300, 700, 4, 4), (512, 512, 1, 1)],
)
def test_large_images_give_a_grid_of_exact_windows(height: int, width: int, max_crops: int, count: int) -> None:
    pixels = image(height, width)
    crops = crop_grid(pixels, 64, max_crops=max_crops)
    assert crops.shape == (count, 64, 64, 3)
    corners = [locate(pixels, crop) for crop in crops]
    assert len(set(corners)) == count
    assert all(top % ALIGN == 0 and left % ALIGN == 0 for top, left in corners)


def test_grid_follows_the_aspect_of_a_panorama() -> None:
    pixels = image(64, 2000)
    crops = crop_grid(pixels, 64, max_crops=4)
    corners = [locate(pixels, crop) for crop in crops]
    assert [top for top, _ in corners] == [0, 0, 0, 0]
    lefts = [left for _, left in corners]
    assert lefts == sorted(lefts) and lefts[-1] - lefts[0] > 1000  # spread over the whole width


def test_small_image_size_agnostic_keeps_the_largest_centre_square() -> None:
    pixels = image(40, 50)
    crops = crop_grid(pixels, 64, max_crops=4, size_agnostic=True)
    assert crops.shape == (1, 40, 40, 3)
    locate(pixels, crops[0])


def test_small_image_padded_keeps_its_pixels_in_the_middle() -> None:
    pixels = image(40, 50)
    crops = crop_grid(pixels, 64, max_crops=4)
    assert crops.shape == (1, 64, 64, 3)
    square = crops[0, 12:52, 12:52]
    locate(pixels, square)
    np.testing.assert_array_equal(crops[0, 11], crops[0, 13])  # reflected about row 12


def test_padding_works_when_the_pad_exceeds_the_image() -> None:
    crops = crop_grid(image(32, 32), 128, max_crops=4)
    assert crops.shape == (1, 128, 128, 3)


def test_too_small_is_refused() -> None:
    with pytest.raises(ValueError, match="too small"):
        crop_grid(image(31, 200), 64)
