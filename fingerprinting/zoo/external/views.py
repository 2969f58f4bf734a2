"""The platform views of every image: what an upload becomes on a typical platform."""
from __future__ import annotations

from pathlib import Path

from PIL import Image

PLATFORM_QUALITY = 85
VIEWS: tuple[str, ...] = ("clean", "jpeg85", "half_jpeg85")  # as-is; JPEG 85; 0.5x resize (Pillow's bicubic) then JPEG 85
VIEW_SUFFIX = {"clean": ".png", "jpeg85": ".jpeg85.jpg", "half_jpeg85": ".half_jpeg85.jpg"}


def view_side(size: int, view: str) -> int:
    return size // 2 if view == "half_jpeg85" else size


def view_image(image: Image.Image, view: str) -> Image.Image:
    """`image` before encoding as `view` (only the half view changes pixels before the JPEG)."""
    if view == "half_jpeg85":
        return image.resize((view_side(image.width, view), view_side(image.height, view)), Image.Resampling.BICUBIC)
    return image


def save_views(image: Image.Image, stem: Path) -> dict[str, Path]:
    """Write `image` as every view beside `stem` (stem.png, stem.jpeg85.jpg, stem.half_jpeg85.jpg); 4:2:0 chroma, as most encoders."""
    paths = {view: stem.with_name(stem.name + suffix) for view, suffix in VIEW_SUFFIX.items()}
    image.save(paths["clean"], format="PNG", optimize=False, compress_level=6)
    for view in VIEWS[1:]:
        view_image(image, view).save(paths[view], format="JPEG", quality=PLATFORM_QUALITY)
    return paths
