"""What ``genprint fit-detector`` learns from: crops of restoration networks, of a zoo and of photographs, in every platform view.

The zoo's members are trained for a few hundred steps; the networks uploads come from are trained
to convergence on photographs. So the detector learns from both: a zoo's generated and real images,
and a family of small upscalers (``fingerprinting.zoo.upscalers``) trained on the zoo's photographs'
training regions and run on patches of them, against real crops of the same regions. Every image is
also seen as a platform would show it (JPEG 85; a 0.5x resize then JPEG 85) and cut into crops as
a run cuts it (``crops.crop_grid``). No external generator and no calibration photograph is used:
the outside section judges the detector on generators and photographs it never saw.
"""
from __future__ import annotations

import io
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from fingerprinting.crops import crop_grid
from fingerprinting.images import MIN_SIDE
from fingerprinting.zoo.external.build import DOWNSCALE_FILTERS, low_res_side
from fingerprinting.zoo.external.views import PLATFORM_QUALITY, VIEWS, view_image
from fingerprinting.zoo.photos import sample_crops, training_regions, usable_photos
from fingerprinting.zoo.upscalers import HR_SIDE, Upscaler, sample_designs, train_upscaler, training_crops

SIZES = (64, 128)  # generated and real image sides, as uploads of small images come


@dataclass(frozen=True)
class MaterialOptions:
    """How much material: upscalers, their training steps, images per upscaler and size, real crops per size."""

    upscalers: int = 24
    upscaler_steps: int = 600
    images_per_upscaler: int = 200
    real_images: int = 2400
    seed: int = 0


@dataclass(frozen=True)
class Material:
    """Crops grouped by side (as the fingerprinter takes them) and whether each is generated."""

    crops: dict[int, np.ndarray]
    is_fake: dict[int, np.ndarray]


class _Collector:
    def __init__(self) -> None:
        self.crops: dict[int, list[np.ndarray]] = defaultdict(list)
        self.fake: dict[int, list[bool]] = defaultdict(list)

    def add(self, images: Iterable[np.ndarray], fake: bool, crop_size: int) -> None:
        """Each image in every platform view that a run would take, cut into crops as a run cuts it."""
        for image in images:
            for view in VIEWS:
                pixels = platform_view(image, view)
                if min(pixels.shape[:2]) < MIN_SIDE:  # a run refuses it too
                    continue
                for crop in crop_grid(pixels, crop_size, size_agnostic=True):
                    self.crops[crop.shape[0]].append(crop)
                    self.fake[crop.shape[0]].append(fake)

    def material(self) -> Material:
        return Material({s: np.stack(c) for s, c in self.crops.items()}, {s: np.asarray(f, bool) for s, f in self.fake.items()})


def platform_view(pixels: np.ndarray, view: str) -> np.ndarray:
    """`pixels` as the external corpus's `view` shows it (``zoo.external.views``), decoded again."""
    if view == "clean":
        return pixels
    buffer = io.BytesIO()
    view_image(Image.fromarray(pixels), view).save(buffer, format="JPEG", quality=PLATFORM_QUALITY)
    with Image.open(buffer) as image:
        return np.asarray(image.convert("RGB"))


def upscaled_images(model: Upscaler, size: int, count: int, rng: np.random.Generator) -> list[np.ndarray]:
    """`count` size x size outputs of one upscaler: training-region patches downscaled by a random filter, upscaled, centre-cropped
    (with the margins ``zoo.external`` gives Real-CUGAN and SPAN, so no output shows the network's border)."""
    scale = model.design.scale
    side = low_res_side(size, scale)
    patches = real_images(scale * side, count, rng)
    offset = (scale * side - size) // 2
    out = []
    for patch in patches:
        low = Image.fromarray(patch).resize((side, side), DOWNSCALE_FILTERS[rng.integers(len(DOWNSCALE_FILTERS))])
        out.append(model.upscale(np.asarray(low))[offset : offset + size, offset : offset + size])
    return out


def real_images(size: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """`count` size x size crops of the zoo's photographs' training regions (the upscalers' content too)."""
    pool = [r for r in training_regions(usable_photos(HR_SIDE), HR_SIDE) if min(r.bottom - r.top, r.right - r.left) >= size]
    crops, _ = sample_crops(pool, count, size, rng)
    return crops


def build_material(options: MaterialOptions, crop_size: int, zoo: Path | None = None,
                   log: Callable[[str], None] = lambda line: None) -> Material:
    """The upscalers trained and run, the zoo's images read (when given), real crops drawn; all in every view, as crops."""
    rng = np.random.default_rng(options.seed)
    material = _Collector()
    high_res = training_crops(4000, options.seed)
    for index, design in enumerate(sample_designs(options.upscalers, options.seed)):
        model = train_upscaler(design, high_res, options.upscaler_steps, options.seed + index)
        for size in SIZES:
            material.add(upscaled_images(model, size, options.images_per_upscaler, rng), True, crop_size)
        log(f"upscaler {index + 1}/{options.upscalers} ({design.upsampling}, x{design.scale}) trained and run")
    for size in SIZES:
        material.add(real_images(size, options.real_images, rng), False, crop_size)
    if zoo is not None:
        from fingerprinting.training_data import read_pixels
        from fingerprinting.zoo import load_zoo

        images = load_zoo(zoo).images
        for fake, rows in images.groupby(images["member_id"].notna()).groups.items():
            for _, group in images.loc[rows].groupby("width"):
                material.add(read_pixels(group["path"].tolist()), bool(fake), crop_size)
        log(f"zoo {zoo}: {len(images)} images read")
    return material.material()
