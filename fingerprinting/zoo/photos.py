"""Real photographs that ship inside installed packages, split into training and held-out regions, and crops of them.

Only images on disk without any download are used (scikit-image's bundled files and scikit-learn's two
sample images). JPEG sources are reduced 2x with a Lanczos filter first, so that their 8x8 compression
grid is attenuated and does not become a "real" marker that no generator has.

``calibration_photo_files``: matplotlib's bundled photograph (its other sample images are drawings,
plots or scans), kept out of the zoo and of training altogether, as files to calibrate verdicts on
a photograph no model has seen (``fingerprinting.camera_photos``).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

import numpy as np
from PIL import Image

MIN_CROP_STD = 4.0  # crops flatter than this (grey levels) are redrawn: black sky, empty background


def _skimage(name: str, index: int | None = None) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from skimage import data

        image = getattr(data, name)()
        return image[index] if index is not None else image

    return load


def _sklearn(filename: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from sklearn.datasets import load_sample_image

        return load_sample_image(filename)

    return load


# name -> (loader, is a JPEG source)
_SOURCES: dict[str, tuple[Callable[[], np.ndarray], bool]] = {
    "astronaut": (_skimage("astronaut"), False),
    "chelsea": (_skimage("chelsea"), False),
    "coffee": (_skimage("coffee"), False),
    "hubble_deep_field": (_skimage("hubble_deep_field"), True),
    "immunohistochemistry": (_skimage("immunohistochemistry"), False),
    "motorcycle_left": (_skimage("stereo_motorcycle", 0), False),
    "motorcycle_right": (_skimage("stereo_motorcycle", 1), False),
    "retina": (_skimage("retina"), True),
    "rocket": (_skimage("rocket"), True),
    "china": (_sklearn("china.jpg"), True),
    "flower": (_sklearn("flower.jpg"), True),
}
PHOTO_NAMES: tuple[str, ...] = tuple(_SOURCES)
_MATPLOTLIB_PHOTOS = ("grace_hopper.jpg",)


def calibration_photo_files() -> list[str]:
    """Paths of the camera photographs in matplotlib's sample data (never in ``PHOTO_NAMES``)."""
    from matplotlib import cbook

    return [str(cbook.get_sample_data(name, asfileobj=False)) for name in _MATPLOTLIB_PHOTOS]


def native_photo(name: str) -> np.ndarray:
    """One photograph as its package ships it (RGB uint8), without the JPEG reduction of `load_photo`."""
    return np.ascontiguousarray(_SOURCES[name][0]()[..., :3])


@functools.lru_cache(maxsize=None)
def load_photo(name: str) -> np.ndarray:
    """One photograph as an RGB uint8 array (read-only)."""
    image = native_photo(name)
    if _SOURCES[name][1]:
        pil = Image.fromarray(image)
        image = np.asarray(pil.resize((pil.width // 2, pil.height // 2), Image.Resampling.LANCZOS))
    image.setflags(write=False)
    return image


@dataclass(frozen=True)
class Region:
    """A rectangle of a photo: rows [top, bottom), columns [left, right)."""

    photo: str
    top: int
    left: int
    bottom: int
    right: int

    @property
    def area(self) -> int:
        return (self.bottom - self.top) * (self.right - self.left)


def regions(name: str, size: int) -> tuple[list[Region], list[Region]]:
    """(training regions, held-out regions) of a photo: a checkerboard of cells at least 2*size on a side.

    Training patches and real crops never overlap where a photo has two or more cells; a photo too small
    for two cells lends its one cell to both (and one smaller than `size` to none).
    """
    return checkerboard(name, *load_photo(name).shape[:2], size)


def checkerboard(name: str, height: int, width: int, size: int) -> tuple[list[Region], list[Region]]:
    """`regions` of any photo `name` of `height` x `width` pixels."""
    if min(height, width) < size:
        return [], []
    rows, cols = max(1, height // (2 * size)), max(1, width // (2 * size))
    if rows * cols == 1:
        rows, cols = (1, 2) if width >= 2 * size and width >= height else (2, 1) if height >= 2 * size else (1, 1)
    row_edges = np.linspace(0, height, rows + 1).astype(int)
    col_edges = np.linspace(0, width, cols + 1).astype(int)
    cells = [
        (r + c, Region(name, int(row_edges[r]), int(col_edges[c]), int(row_edges[r + 1]), int(col_edges[c + 1])))
        for r in range(rows) for c in range(cols)
    ]
    if len(cells) == 1:
        return [cells[0][1]], [cells[0][1]]
    return [cell for parity, cell in cells if parity % 2 == 0], [cell for parity, cell in cells if parity % 2 == 1]


def sample_crops(region_pool: list[Region], n: int, size: int, rng: np.random.Generator) -> tuple[np.ndarray, list[str]]:
    """`n` random size x size crops (uint8, NHWC) and their photos: a photo uniformly, a region by area, a position uniformly."""
    by_photo: dict[str, list[Region]] = {}
    for region in region_pool:
        by_photo.setdefault(region.photo, []).append(region)
    photos = sorted(by_photo)
    crops = np.empty((n, size, size, 3), np.uint8)
    names = []
    for i in range(n):
        for _attempt in range(10):
            cells = by_photo[photos[rng.integers(len(photos))]]
            areas = np.array([c.area for c in cells], float)
            cell = cells[rng.choice(len(cells), p=areas / areas.sum())]
            top = rng.integers(cell.top, cell.bottom - size + 1)
            left = rng.integers(cell.left, cell.right - size + 1)
            crop = load_photo(cell.photo)[top : top + size, left : left + size]
            if crop.std() >= MIN_CROP_STD:
                break
        crops[i] = crop
        names.append(cell.photo)
    return crops, names


def training_regions(photos: list[str] | tuple[str, ...], size: int) -> list[Region]:
    return [region for name in photos for region in regions(name, size)[0]]


def heldout_regions(photos: list[str] | tuple[str, ...], size: int) -> list[Region]:
    return [region for name in photos for region in regions(name, size)[1]]


def usable_photos(size: int) -> tuple[str, ...]:
    return tuple(name for name in PHOTO_NAMES if regions(name, size)[0])
