"""Distinct photo crops for whole-run timings: every file a different image, so a run fingerprints all of them.

``bench.speed.make_images`` draws its 512 px JPEGs from only 512 distinct positions (the same bytes
repeat, and a run fingerprints each image once); these are drawn without repeats from the two
photographs that ship with scikit-learn (427 x 640 px), mirrored or not.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

# kind -> (crop height, crop width, file suffix)
KINDS = {"jpeg512": (384, 512, ".jpg"), "png64": (64, 64, ".png")}
LABELS = {"jpeg512": "512x384 px JPEG (q90)", "png64": "64 px PNG"}


def photo_crops(folder: Path, kind: str, count: int) -> list[Path]:
    """``count`` distinct crops under ``folder/kind`` (made once; a rerun reuses them); their paths in order."""
    height, width, suffix = KINDS[kind]
    folder = folder / kind
    paths = [folder / f"{index:05d}{suffix}" for index in range(count)]
    if all(path.is_file() for path in paths):
        return paths
    from sklearn.datasets import load_sample_images

    photos = load_sample_images().images
    rows, columns = photos[0].shape[0] - height + 1, photos[0].shape[1] - width + 1
    positions = len(photos) * 2 * rows * columns  # photo, mirrored, top, left
    if count > positions:
        raise ValueError(f"only {positions} distinct {kind} crops exist, not {count}")
    chosen = np.random.default_rng(0).choice(positions, count, replace=False)
    folder.mkdir(parents=True, exist_ok=True)
    for path, position in zip(paths, chosen):
        photo, mirrored, top, left = np.unravel_index(position, (len(photos), 2, rows, columns))
        pixels = photos[photo][:, ::-1] if mirrored else photos[photo]
        crop = Image.fromarray(np.ascontiguousarray(pixels[top : top + height, left : left + width]))
        partial = path.with_name(f".{path.name}")  # a crop cut short by an interruption is never taken as made
        crop.save(partial, format="JPEG" if suffix == ".jpg" else "PNG", **({"quality": 90} if suffix == ".jpg" else {}))
        partial.replace(path)
    return paths
