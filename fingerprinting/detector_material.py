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

import hashlib
import io
import json
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from clustering.atomic_file import write_bytes_atomic
from fingerprinting.crops import crop_grid
from fingerprinting.images import MIN_SIDE
from fingerprinting.stacked import crop_features
from fingerprinting.zoo.external.build import DOWNSCALE_FILTERS, low_res_side
from fingerprinting.zoo.external.views import PLATFORM_QUALITY, VIEWS, view_image
from fingerprinting.zoo.photos import sample_crops, training_regions, usable_photos
from fingerprinting.zoo.upscalers import HR_SIDE, Upscaler, sample_designs, train_upscaler, training_crops

if TYPE_CHECKING:
    from fingerprinting.learned import LearnedFingerprinter

SIZES = (64, 128)  # generated and real image sides, as uploads of small images come
FORMAT = 1  # of the cached features: raised whenever the same options would give other features


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
    """What the detector learns from, one row per crop: its features (``LearnedFingerprinter.detector_features``),
    whether it is generated, and where it comes from (``UPSCALERS``, ``ZOO`` or ``PHOTOGRAPHS``)."""

    features: np.ndarray
    is_fake: np.ndarray
    source: np.ndarray

    def describe(self) -> str:
        counts = [(source, fake, int(((self.source == source) & (self.is_fake == fake)).sum())) for source in np.unique(self.source) for fake in (True, False)]
        return f"{len(self.is_fake)} crops (" + ", ".join(f"{n} {'generated' if fake else 'real'} from {source}" for source, fake, n in counts if n) + ")"


UPSCALERS, ZOO, PHOTOGRAPHS = "upscalers", "zoo", "photographs"


def crops_of(images: Iterable[np.ndarray], crop_size: int) -> dict[int, np.ndarray]:
    """Each image in every platform view that a run would take, cut into crops as a run cuts it; {side: crops}."""
    by_side: dict[int, list[np.ndarray]] = defaultdict(list)
    for image in images:
        for view in VIEWS:
            pixels = platform_view(image, view)
            if min(pixels.shape[:2]) < MIN_SIDE:  # a run refuses it too
                continue
            for crop in crop_grid(pixels, crop_size, size_agnostic=True):
                by_side[crop.shape[0]].append(crop)
    return {side: np.stack(crops) for side, crops in by_side.items()}


def _features(fingerprinter: LearnedFingerprinter, images: Iterable[np.ndarray]) -> np.ndarray:
    return np.concatenate([crop_features(fingerprinter, crops) for crops in crops_of(images, fingerprinter.crop_size).values()])


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


def build_material(options: MaterialOptions, fingerprinter: LearnedFingerprinter, zoo: Path | None = None, work: Path | None = None,
                   log: Callable[[str], None] = lambda line: None) -> Material:
    """The upscalers trained and run, the zoo's images read (when given), real crops drawn; all in every view, as crops' features.

    With ``work``, each upscaler's features are kept there, by checkpoint and options, and a later fit
    (another zoo, an interrupted one) reuses them instead of training the upscaler again.
    """
    rng = np.random.default_rng(options.seed)
    parts: list[tuple[np.ndarray, bool, str]] = []
    high_res = training_crops(4000, options.seed)
    cache = None if work is None else Path(work) / _cache_key(options, fingerprinter.checkpoint.version)
    for index, design in enumerate(sample_designs(options.upscalers, options.seed)):
        path = None if cache is None else cache / f"upscaler-{index:02d}.npy"
        if path is not None and path.is_file():
            parts.append((np.load(path), True, UPSCALERS))
            log(f"upscaler {index + 1}/{options.upscalers} ({design.upsampling}, x{design.scale}) reused from {path}")
            continue
        model = train_upscaler(design, high_res, options.upscaler_steps, options.seed + index)
        # Each upscaler draws its patches from its own generator: a reused one leaves the others' draws as they were.
        draw = np.random.default_rng([options.seed, index])
        features = _features(fingerprinter, [image for size in SIZES for image in upscaled_images(model, size, options.images_per_upscaler, draw)])
        if path is not None:
            buffer = io.BytesIO()
            np.save(buffer, features)
            write_bytes_atomic(path, buffer.getbuffer())
        parts.append((features, True, UPSCALERS))
        log(f"upscaler {index + 1}/{options.upscalers} ({design.upsampling}, x{design.scale}) trained and run")
    parts.append((_features(fingerprinter, [image for size in SIZES for image in real_images(size, options.real_images, rng)]), False, PHOTOGRAPHS))
    if zoo is not None:
        from fingerprinting.training_data import read_pixels
        from fingerprinting.zoo import load_zoo

        images = load_zoo(zoo).images
        for fake, rows in images.groupby(images["member_id"].notna()).groups.items():
            for _, group in images.loc[rows].groupby("width"):
                parts.append((_features(fingerprinter, read_pixels(group["path"].tolist())), bool(fake), ZOO))
        log(f"zoo {zoo}: {len(images)} images read")
    return Material(np.concatenate([f for f, _, _ in parts]), np.concatenate([np.full(len(f), fake) for f, fake, _ in parts]),
                    np.concatenate([np.full(len(f), source) for f, _, source in parts]))


def _cache_key(options: MaterialOptions, checkpoint_version: str) -> str:
    """What an upscaler's features depend on: the material's options (but the zoo and real crops) and the checkpoint."""
    return hashlib.sha256(json.dumps([asdict(options), checkpoint_version, FORMAT], sort_keys=True).encode()).hexdigest()[:16]
