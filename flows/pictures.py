"""Pictures for the report: exemplar montages, mean residual spectra, member thumbnails (inline data URIs), the batch map (inline SVG).

Everything here is for viewing only: thumbnails are resampled, and nothing drawn here is ever fed
back to fingerprinting.
"""
from __future__ import annotations

import base64
import io
from collections.abc import Callable, Sequence

import numpy as np
from PIL import Image, ImageDraw

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
    from matplotlib import colormaps  # imported only when cards are drawn
    from scipy.ndimage import median_filter

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


def thumbnail_uri(path: str, tile: int = 64) -> str:
    """A member's square thumbnail as a JPEG data URI (small: a member page carries hundreds)."""
    buffer = io.BytesIO()
    _thumbnail(path, tile).save(buffer, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def project_2d(vectors: np.ndarray) -> np.ndarray:
    """Fingerprints on their first two principal components, each axis scaled to 0..1 (PCA, deterministic)."""
    from sklearn.decomposition import PCA

    # From the covariance's eigenvectors: the full SVD's components to float rounding (signs fixed alike), but
    # the cost of a (dim x dim) matrix instead of an SVD of every point (seconds for the map's 4000 points).
    xy = PCA(n_components=2, svd_solver="covariance_eigh").fit_transform(np.asarray(vectors, np.float64))
    low, high = xy.min(axis=0), xy.max(axis=0)
    return (xy - low) / np.where(high > low, high - low, 1.0)


MAP_WIDTH, MAP_HEIGHT, MAP_MARGIN = 760, 520, 12
NOISE_COLOUR = "#b4b8bf"
# matplotlib's tab20, written out: every report colours its map, and a run that draws no picture imports no matplotlib.
TAB20 = (
    "#1f77b4", "#aec7e8", "#ff7f0e", "#ffbb78", "#2ca02c", "#98df8a", "#d62728", "#ff9896", "#9467bd", "#c5b0d5",
    "#8c564b", "#c49c94", "#e377c2", "#f7b6d2", "#7f7f7f", "#c7c7c7", "#bcbd22", "#dbdb8d", "#17becf", "#9edae5",
)


def cluster_colour(cluster_id: int) -> str:
    """A cluster's colour on the map (tab20, by id, so it stays the same across runs); grey for none."""
    return NOISE_COLOUR if cluster_id < 0 else TAB20[cluster_id % len(TAB20)]


def map_svg(points: dict, link: Callable[[int], str] | None) -> str:
    """An inline SVG of the batch map: one dot per image, coloured by cluster, unassigned in grey underneath.

    `points`: `x`, `y` in 0..1 and `cluster` ids; `link`: a cluster id's page (each cluster's dots link
    to it), or None for no links.
    """
    width, height, margin = MAP_WIDTH, MAP_HEIGHT, MAP_MARGIN
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" id="batch-map" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img"><rect width="{width}" height="{height}" fill="#ffffff"/>']
    xs, ys, labels = np.asarray(points["x"]), np.asarray(points["y"]), np.asarray(points["cluster"], np.int64)
    for cluster_id in sorted(set(labels.tolist())):  # -1 first: the unassigned lie underneath
        mask = labels == cluster_id
        cx = margin + xs[mask] * (width - 2 * margin)
        cy = height - margin - ys[mask] * (height - 2 * margin)
        radius, opacity = (2.5, 0.6) if cluster_id < 0 else (3.5, 0.85)
        name = "unassigned" if cluster_id < 0 else f"cluster {cluster_id}"
        dots = "".join(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{radius}"/>' for x, y in zip(cx, cy))
        group = (f'<g class="map-cluster" data-cluster-id="{cluster_id}" fill="{cluster_colour(cluster_id)}" '
                 f'fill-opacity="{opacity}"><title>{name}: {int(mask.sum())} dots</title>{dots}</g>')
        parts.append(group if link is None else f'<a href="{link(int(cluster_id))}">{group}</a>')
    parts.append("</svg>")
    return "".join(parts)
