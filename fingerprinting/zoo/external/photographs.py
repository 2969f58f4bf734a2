"""The camera photographs of the external corpus: the real class, and the content the external generators upscale.

Exactly these (others are kept aside): the photographs among Debian's `plasma-workspace-wallpapers`
wallpapers (4:5.27.5-2; the rendered artwork is left out, as is `Kite`, a sky photograph with a drawn
kite pasted in), matplotlib's `grace_hopper.jpg` (its other sample data are plots, logos, pixel art and
an MRI scan), and the camera photographs among the scikit-image and scikit-learn samples that the zoo
also uses (not the telescope, microscope and fundus images, and one of the two stereo motorcycle views
only). All at the resolution their package ships them, JPEG grid and all: as uploads arrive.

The wallpapers package is not a Python package: `scripts/fetch-wallpapers.sh` unpacks it into a cache
folder (or it is installed system-wide); `plasma_folder` finds it.
"""
from __future__ import annotations

import functools
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from fingerprinting.zoo.photos import native_photo

WALLPAPERS_ENV = "GENPRINT_WALLPAPERS"
WALLPAPERS_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "genprint" / "plasma-workspace-wallpapers"
SYSTEM_WALLPAPERS = Path("/usr/share/wallpapers")
FETCH_HINT = "bash scripts/fetch-wallpapers.sh   (apt-get download plasma-workspace-wallpapers, unpacked into a cache folder)"

# wallpaper -> (photographer, first 16 hex digits of the largest file's sha256): a changed package is caught, not used
PLASMA_PHOTOS: dict[str, tuple[str, str]] = {
    "BytheWater": ("Maciej Wiklo", "c272434ef39f2abf"),
    "ColdRipple": ("Risto Saukonpää", "05bef6722fc0ed81"),
    "ColorfulCups": ("Dmitri Popov", "6e0f3a72feb5a4a9"),
    "DarkestHour": ("Risto Saukonpää", "8e3703fae3a3c217"),
    "EveningGlow": ("Ian Hex", "586682dcb362b9f6"),
    "FallenLeaf": ("Martin Klapetek", "95603a6560c7e8d5"),
    "Grey": ("Sigi Sagi", "88c31d8944b7e693"),
    "OneStandsOut": ("Risto Saukonpää", "cb507baf1dafdcae"),
    "Path": ("Risto Saukonpää", "7477457d7f17b736"),
    "summer_1am": ("Risto Saukonpää", "c868b50789591dd4"),
}
PLASMA_FILE = "contents/images/2560x1600.jpg"  # the largest size of each of these wallpapers
MATPLOTLIB_PHOTOS: tuple[str, ...] = ("grace_hopper",)
PACKAGE_PHOTOS: tuple[str, ...] = ("astronaut", "chelsea", "coffee", "motorcycle_left", "rocket", "china", "flower")
_PACKAGE_SOURCE = {"china": "sklearn", "flower": "sklearn"}


@dataclass(frozen=True)
class CorpusPhoto:
    """`name` is what images.parquet's `photo` column holds; `source` the package it comes from."""

    name: str
    source: str


def plasma_folder() -> Path | None:
    """The folder holding the wallpapers (one sub-folder each): $GENPRINT_WALLPAPERS, the cache, or the system's; None if absent."""
    candidates = [Path(os.environ[WALLPAPERS_ENV])] if os.environ.get(WALLPAPERS_ENV) else []
    candidates += [WALLPAPERS_CACHE / "usr" / "share" / "wallpapers", SYSTEM_WALLPAPERS]
    return next((c for c in candidates if all((c / name / PLASMA_FILE).is_file() for name in PLASMA_PHOTOS)), None)


def _sha16(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def camera_photos() -> tuple[tuple[CorpusPhoto, ...], list[str]]:
    """(the photographs available here, problems to report loudly: the wallpapers missing or changed)."""
    photos = [CorpusPhoto(f"matplotlib:{name}", "matplotlib") for name in MATPLOTLIB_PHOTOS]
    photos += [CorpusPhoto(f"{_PACKAGE_SOURCE.get(name, 'skimage')}:{name}", _PACKAGE_SOURCE.get(name, "skimage")) for name in PACKAGE_PHOTOS]
    problems = []
    folder = plasma_folder()
    if folder is None:
        problems.append(f"the plasma-workspace-wallpapers photographs are missing ({len(PLASMA_PHOTOS)} of the corpus's camera photographs); "
                        f"fetch them with: {FETCH_HINT}")
    else:
        for name, (_, digest) in PLASMA_PHOTOS.items():
            if _sha16(folder / name / PLASMA_FILE) == digest:
                photos.append(CorpusPhoto(f"plasma:{name}", "plasma"))
            else:
                problems.append(f"{folder / name / PLASMA_FILE} is not the file this corpus describes (another package version?); left out")
    return tuple(sorted(photos, key=lambda p: p.name)), problems


@functools.lru_cache(maxsize=None)
def load_camera_photo(name: str, scale: float = 1.0) -> np.ndarray:
    """A photograph as RGB uint8 (read-only), at its shipped resolution or downscaled by `scale` (Lanczos, as an upload is)."""
    source, stem = name.split(":", 1)
    if scale != 1.0:
        native = Image.fromarray(load_camera_photo(name))
        image = np.asarray(native.resize((round(native.width * scale), round(native.height * scale)), Image.Resampling.LANCZOS))
    elif source == "plasma":
        folder = plasma_folder()
        if folder is None:
            raise FileNotFoundError(f"plasma-workspace-wallpapers is not unpacked here: {FETCH_HINT}")
        with Image.open(folder / stem / PLASMA_FILE) as file:
            image = np.asarray(file.convert("RGB"))
    elif source == "matplotlib":
        from matplotlib import cbook

        with Image.open(cbook.get_sample_data(f"{stem}.jpg", asfileobj=False)) as file:
            image = np.asarray(file.convert("RGB"))
    else:
        image = native_photo(stem)
    image = np.ascontiguousarray(image)
    image.setflags(write=False)
    return image
