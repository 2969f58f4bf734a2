"""Training augmentation against the file pipeline: rescale, blur, JPEG re-encoding, native-resolution crops.

Applied with the same probabilities to fakes and reals, so none of them can tell the classes apart;
they teach the network fingerprints that survive what happens to images after they are made.
"""
from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter


@dataclass(frozen=True)
class Augmenter:
    """Random pipeline: rescale -> blur -> JPEG -> crop of a given side, each step with its probability."""

    rescale_probability: float = 0.25
    rescale_range: tuple[float, float] = (0.7, 1.3)
    blur_probability: float = 0.2
    blur_radius: tuple[float, float] = (0.3, 1.0)
    jpeg_probability: float = 0.5
    jpeg_quality: tuple[int, int] = (50, 98)
    # Crops mostly start on the 8 px grid (as `fingerprinting.crops` takes them), sometimes anywhere.
    unaligned_crop_probability: float = 0.25

    def __call__(self, pixels: np.ndarray, crop: int, rng: np.random.Generator) -> np.ndarray:
        """A (crop, crop, 3) uint8 view of a randomly degraded ``pixels`` (H, W, 3) with H, W >= crop."""
        image = Image.fromarray(pixels)
        if rng.random() < self.rescale_probability:
            # Never shrink below the crop: the crop is taken at native resolution afterwards.
            low = max(self.rescale_range[0], crop / min(image.size))
            factor = rng.uniform(low, max(low, self.rescale_range[1]))
            size = (max(crop, round(image.width * factor)), max(crop, round(image.height * factor)))
            image = image.resize(size, Image.Resampling.BILINEAR if rng.random() < 0.5 else Image.Resampling.BICUBIC)
        if rng.random() < self.blur_probability:
            image = image.filter(ImageFilter.GaussianBlur(rng.uniform(*self.blur_radius)))
        if rng.random() < self.jpeg_probability:
            image = jpeg(image, int(rng.integers(self.jpeg_quality[0], self.jpeg_quality[1] + 1)))
        return random_crop(np.asarray(image), crop, rng, aligned=rng.random() >= self.unaligned_crop_probability)


def jpeg(image: Image.Image, quality: int) -> Image.Image:
    """``image`` after one JPEG round trip at ``quality`` (4:2:0 chroma, as most encoders do)."""
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return decoded.convert("RGB")


def each_image(pixels: np.ndarray, change: Callable[[Image.Image], Image.Image]) -> np.ndarray:
    """``change`` applied to every (H, W, 3) uint8 image of ``pixels`` (N, H, W, 3)."""
    return np.stack([np.asarray(change(Image.fromarray(p))) for p in pixels])


def jpeg_copy(pixels: np.ndarray, quality: int) -> np.ndarray:
    """Every image of ``pixels`` (N, H, W, 3) after one JPEG round trip at ``quality``."""
    return each_image(pixels, lambda image: jpeg(image, quality))


def random_crop(pixels: np.ndarray, crop: int, rng: np.random.Generator, aligned: bool = True, grid: int = 8) -> np.ndarray:
    """A crop x crop slice; with ``aligned``, its corner on a multiple of ``grid`` where the image allows."""
    height, width = pixels.shape[:2]
    tops, lefts = np.arange(height - crop + 1), np.arange(width - crop + 1)
    if aligned:
        tops, lefts = tops[tops % grid == 0], lefts[lefts % grid == 0]
    top, left = int(rng.choice(tops)), int(rng.choice(lefts))
    return pixels[top : top + crop, left : left + crop]
