"""Pictures for the report: exemplar montages and mean residual spectra, as inline PNG data URIs.

Everything here is for viewing only: thumbnails are resampled, and nothing drawn here is ever fed
back to fingerprinting.
"""
from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import numpy as np
from matplotlib import colormaps
from PIL import Image, ImageDraw
from scipy.ndimage import median_filter

from fingerprinting.images import ImageLoadError, load_image

TILE = 96
SPECTRUM_SIDE = 64
SPECTRUM_SHOWN = 160
_LUMA = np.array([0.299, 0.587, 0.114])


def data_uri(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def montage(paths: Sequence[str], columns: int = 4, tile: int = TILE) -> Image.Image:
    """Square thumbnails of `paths` on a grid; a grey tile marks a file that can no longer be read."""
    rows = max(1, -(-len(paths) // columns))
    sheet = Image.new("RGB", (columns * tile, rows * tile), (245, 245, 245))
    for i, path in enumerate(paths):
        sheet.paste(_thumbnail(path, tile), ((i % columns) * tile, (i // columns) * tile))
    return sheet


def _thumbnail(path: str, tile: int) -> Image.Image:
    try:
        pixels = load_image(path).pixels
    except ImageLoadError:
        missing = Image.new("RGB", (tile, tile), (200, 200, 200))
        ImageDraw.Draw(missing).text((8, tile // 2 - 6), "unreadable", fill=(90, 90, 90))
        return missing
    side = min(pixels.shape[:2])
    top, left = (pixels.shape[0] - side) // 2, (pixels.shape[1] - side) // 2
    square = Image.fromarray(pixels[top : top + side, left : left + side])
    return square.resize((tile, tile), Image.Resampling.LANCZOS if side > tile else Image.Resampling.NEAREST)


def mean_spectrum(paths: Sequence[str], side: int = SPECTRUM_SIDE) -> Image.Image | None:
    """The mean log power spectrum of the members' noise residuals (grey minus 3x3 median), centred.

    Pooling over members averages content away and leaves the generator's periodic trace (peaks
    away from the centre); crops are taken at native resolution, `side` pixels or the smallest side.
    """
    crops = []
    for path in paths:
        try:
            pixels = load_image(path).pixels
        except ImageLoadError:
            continue
        crops.append(pixels)
    if not crops:
        return None
    side = min(side, *(min(c.shape[:2]) for c in crops))
    total = np.zeros((side, side))
    for pixels in crops:
        top, left = (pixels.shape[0] - side) // 2, (pixels.shape[1] - side) // 2
        grey = pixels[top : top + side, left : left + side].astype(np.float64) @ _LUMA / 255.0
        residual = grey - median_filter(grey, size=3, mode="reflect")
        total += np.log(np.abs(np.fft.fft2(residual)) ** 2 + 1e-10)
    spectrum = np.fft.fftshift(total / len(crops))
    low, high = np.percentile(spectrum, [2, 99.5])
    scaled = np.clip((spectrum - low) / max(high - low, 1e-9), 0.0, 1.0)
    rgb = (colormaps["magma"](scaled)[..., :3] * 255).astype(np.uint8)
    return Image.fromarray(rgb).resize((SPECTRUM_SHOWN, SPECTRUM_SHOWN), Image.Resampling.NEAREST)
