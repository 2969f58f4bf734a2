"""Camera photographs for calibrating verdicts: gathering them, scoring them as the store would, and checking the rule.

``bundled_camera_photos()``: what ships in installed packages and the detector never saw as a real
image: the *training* regions of the zoo's photographs (``zoo.photos``: zoo generators learnt from
them, while the zoo's real images, which the detector trains on, come from the other regions), and
matplotlib's photograph whole (never used by the zoo or training). ``camera_samples(photos, ...)``
takes that list plus any photograph files or arrays (another corpus' photographs; a
``CameraPhoto(name, file)`` groups several files of one photograph, as copies at other sizes)
and fingerprints each photograph the two ways the store meets images:

- crops: ``crop_size`` squares at random positions (corners on the 8 px grid, as ``crops`` puts
  them), from the photograph at its own resolution and from a 0.5x Lanczos copy (uploads are
  usually downscaled): each one an image as small images are in the store (one crop);
- whole: the photograph and its 0.5x copy as whole images (``embed.embed_images``: up to four
  crops, scores and fingerprints averaged).

``leave_one_photo_out`` fits a ``VerdictCalibrator`` without each photograph in turn and reports
what it calls that photograph's crops and whole images.
"""
from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from fingerprinting.calibration import GENERATED, REAL, UNSURE, VerdictCalibrator
from fingerprinting.crops import ALIGN
from fingerprinting.embed import embed_images
from fingerprinting.images import MIN_SIDE, LoadedImage, load_image
from fingerprinting.models import Fingerprinter
from fingerprinting.zoo.photos import MIN_CROP_STD, PHOTO_NAMES, calibration_photo_files, load_photo, regions

CROP, WHOLE = "crop", "whole"


@dataclass(frozen=True)
class CameraPhoto:
    """One camera photograph, or one region of it: ``name`` groups the pieces (and copies) of one photograph.

    ``source``: the pixels (H, W, 3) uint8, or an image file, read only when it is fingerprinted.
    """

    name: str
    source: np.ndarray | str | os.PathLike

    def pixels(self) -> np.ndarray:
        if isinstance(self.source, np.ndarray):
            return np.ascontiguousarray(self.source[..., :3], dtype=np.uint8)
        return load_image(self.source).pixels

    def area(self) -> int:
        """Pixels in the photograph, without decoding a file (its header is enough)."""
        if isinstance(self.source, np.ndarray):
            return int(self.source.shape[0] * self.source.shape[1])
        with Image.open(self.source) as image:
            return int(image.width * image.height)


@dataclass(frozen=True)
class CameraSamples:
    """Fingerprinted camera images: row i has ``scores[i]``, ``vectors[i]``, photograph ``groups[i]``, ``kinds[i]``."""

    scores: np.ndarray
    vectors: np.ndarray
    groups: np.ndarray
    kinds: np.ndarray  # CROP or WHOLE


def bundled_camera_photos(zoo_size: int = 64) -> list[CameraPhoto]:
    """The packages' photographs the detector never saw as real (see the module docstring).

    ``zoo_size``: the image side of the zoo the model trained on, which decides the regions.
    """
    photos = []
    for name in PHOTO_NAMES:
        training, held_out = regions(name, zoo_size)
        pixels = load_photo(name)
        # A photograph too small for two cells lends its one cell to both sides: the detector saw it.
        photos += [
            CameraPhoto(name, pixels[cell.top : cell.bottom, cell.left : cell.right])
            for cell in training
            if cell not in held_out
        ]
    return photos + [CameraPhoto(Path(path).name, path) for path in calibration_photo_files()]


def as_camera_photos(photos: Sequence[CameraPhoto | str | os.PathLike | np.ndarray]) -> list[CameraPhoto]:
    """``CameraPhoto``s as they are; a file is a photograph named by its path, an array one named by its bytes' hash."""
    out = []
    for photo in photos:
        if isinstance(photo, CameraPhoto):
            out.append(photo)
        elif isinstance(photo, np.ndarray):
            out.append(CameraPhoto(hashlib.sha256(np.ascontiguousarray(photo).tobytes()).hexdigest()[:12], photo))
        else:
            out.append(CameraPhoto(os.fspath(photo), photo))
    return out


def camera_samples(
    photos: Sequence[CameraPhoto | str | os.PathLike | np.ndarray],
    fingerprinter: Fingerprinter,
    crops_per_photo: int = 24,
    seed: int = 0,
) -> CameraSamples:
    """Fingerprint ``photos`` as crops and as whole images (module docstring); deterministic for a seed.

    ``crops_per_photo`` crops of each photograph at its resolution (shared among its pieces, the
    ``CameraPhoto``s of one name, by area), and half as many of its 0.5x copy. Photographs are
    decoded one at a time: memory holds one photograph and the samples.
    """
    rng = np.random.default_rng(seed)
    size = fingerprinter.crop_size
    photos = as_camera_photos(photos)
    # Each photograph weighs the same, however many pieces it comes in.
    areas = pd.Series([photo.area() for photo in photos], dtype=np.float64)
    shares = areas / areas.groupby([photo.name for photo in photos]).transform("sum").to_numpy()
    scores, vectors, groups, kinds = [], [], [], []
    for photo, share in zip(photos, shares):
        native = photo.pixels()
        count = max(1, round(crops_per_photo * share))
        for pixels, n in ((native, count), (_half(native), max(1, count // 2))):
            if min(pixels.shape[:2]) < MIN_SIDE:
                continue
            if min(pixels.shape[:2]) >= size:
                output = fingerprinter.fingerprint(_random_crops(pixels, size, n, rng))
                scores.append(_scores(output.fake_scores, len(output.vectors)))
                vectors.append(output.vectors)
                groups += [photo.name] * n
                kinds += [CROP] * n
            whole = LoadedImage(image_id="", path=photo.name, pixels=pixels, width=pixels.shape[1], height=pixels.shape[0], format="array")
            embedded = embed_images([whole], fingerprinter)
            scores.append(embedded.records["fake_score"].to_numpy(np.float32))
            vectors.append(embedded.vectors)
            groups.append(photo.name)
            kinds.append(WHOLE)
    if not scores:
        raise ValueError("no camera photograph large enough to calibrate on")
    return CameraSamples(
        scores=np.concatenate(scores),
        vectors=np.concatenate(vectors).astype(np.float32),
        groups=np.asarray(groups, dtype=object),
        kinds=np.asarray(kinds, dtype=object),
    )


def calibrate(samples: CameraSamples, model_version: str = "", **params: float) -> VerdictCalibrator:
    """A ``VerdictCalibrator`` (``params``: its keyword arguments) fitted on every sample."""
    return VerdictCalibrator(**params).fit(samples.scores, samples.vectors, samples.groups, model_version)


def leave_one_photo_out(samples: CameraSamples, **params: float) -> pd.DataFrame:
    """One row per photograph and kind: verdict counts when the calibration is fitted without that photograph."""
    rows = []
    for name in sorted(set(samples.groups)):
        held = samples.groups == name
        calibrator = VerdictCalibrator(**params).fit(samples.scores[~held], samples.vectors[~held], samples.groups[~held])
        verdicts = calibrator.predict(samples.scores[held], samples.vectors[held])
        for kind in (CROP, WHOLE):
            mine = verdicts[samples.kinds[held] == kind]
            rows.append({"photo": name, "kind": kind, "images": len(mine),
                         **{verdict: int((mine == verdict).sum()) for verdict in (GENERATED, UNSURE, REAL)}})
    return pd.DataFrame(rows)


def _scores(scores: np.ndarray | None, count: int) -> np.ndarray:
    if scores is None:
        raise ValueError("this fingerprinter has no detection head: there is no fake score to calibrate")
    return np.asarray(scores, dtype=np.float32)[:count]


def _half(pixels: np.ndarray) -> np.ndarray:
    image = Image.fromarray(pixels)
    return np.asarray(image.resize((max(1, image.width // 2), max(1, image.height // 2)), Image.Resampling.LANCZOS))


def _random_crops(pixels: np.ndarray, size: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` crops with corners on the ALIGN grid; flat ones (sky, black) redrawn a few times."""
    height, width = pixels.shape[:2]
    out = []
    for _ in range(count):
        for _attempt in range(10):
            top = int(rng.integers(0, (height - size) // ALIGN + 1)) * ALIGN
            left = int(rng.integers(0, (width - size) // ALIGN + 1)) * ALIGN
            crop = pixels[top : top + size, left : left + size]
            if crop.std() >= MIN_CROP_STD:
                break
        out.append(crop)
    return np.stack(out)
