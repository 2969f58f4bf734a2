"""Noise statistics of a crop: how its prediction residual and gradients are spread, shaped and tied across channels.

Camera noise has a floor in the flattest blocks, a heavy-tailed shape and, after demosaicing,
channels whose residuals move together; a network's output smooths, sharpens or decorrelates these.
24 numbers per crop, on any square side of 16 px and more (``fingerprinting.stacked`` uses them).
"""
from __future__ import annotations

import numpy as np
import torch

LUMA = np.array([0.299, 0.587, 0.114], np.float32)
NOISE_BLOCK = 8
DIM = 24


def prediction_residual(gray: np.ndarray) -> np.ndarray:
    """Each pixel minus the mean of its four neighbours: what a smooth image cannot predict."""
    return gray[:, 1:-1, 1:-1] - 0.25 * (gray[:, :-2, 1:-1] + gray[:, 2:, 1:-1] + gray[:, 1:-1, :-2] + gray[:, 1:-1, 2:])


def gradient_magnitude(gray: np.ndarray) -> np.ndarray:
    """Length of the backward-difference gradient at each interior pixel, in place on one buffer (``np.hypot`` guards against overflow these values never reach, at a cost)."""
    across = gray[:, 1:-1, 1:-1] - gray[:, 1:-1, :-2]
    down = gray[:, 1:-1, 1:-1] - gray[:, :-2, 1:-1]
    across *= across
    down *= down
    across += down
    return np.sqrt(across, out=across)


def _blocks(values: np.ndarray, size: int) -> np.ndarray:
    n, h, w = values.shape[0], values.shape[1] // size * size, values.shape[2] // size * size
    return values[:, :h, :w].reshape(n, h // size, size, w // size, size).transpose(0, 1, 3, 2, 4).reshape(n, -1, size * size)


def noise_statistics(pixels: np.ndarray) -> np.ndarray:
    """Per image (n, h, w, 3) uint8 -> (n, DIM): quantiles of blockwise residual and gradient levels (the flattest blocks show the noise
    floor), residual shape, cross-channel residual correlation (demosaicing ties the channels' noise)."""
    # No numpy BLAS here (a matmul, `@`): this runs on the batches' threads (runtime.map_batches), where BLAS's own
    # threads would fight them for the cores; sums of products stay on the calling thread, and torch's bmm on the
    # one torch thread map_batches gives each batch.
    rgb = pixels.astype(np.float32)
    gray = rgb[..., 0] * LUMA[0] + rgb[..., 1] * LUMA[1] + rgb[..., 2] * LUMA[2]
    residual = prediction_residual(gray)
    gradient = gradient_magnitude(gray)
    noise, edges = _blocks(residual, NOISE_BLOCK).std(2), _blocks(gradient, NOISE_BLOCK).mean(2)
    quantiles = (0, 10, 25, 50, 75, 90, 100)
    features = [np.log(np.percentile(noise, quantiles, axis=1) + 1e-3), np.log(np.percentile(edges, quantiles, axis=1) + 1e-3),
                np.percentile(np.log((noise + 1e-3) / (edges + 1e-1)), (10, 50, 90), axis=1)]
    flat = residual.reshape(len(residual), -1)
    spread = flat.std(1) + 1e-3
    squared = np.square(flat - flat.mean(1, keepdims=True))  # squared twice, not **4: a pow per pixel costs more than the rest
    features.append(np.stack([np.log(spread), np.square(squared).mean(1) / spread**4, np.abs(flat).mean(1) / spread, (np.abs(flat) < 0.5).mean(1)]))
    # Channels first and contiguous: strided channel slices cost more than the residuals themselves.
    planes = np.ascontiguousarray(rgb.transpose(0, 3, 1, 2)).reshape(-1, *rgb.shape[1:3])
    colour = prediction_residual(planes).reshape(len(rgb), 3, -1)
    colour -= colour.mean(2, keepdims=True)
    covariance = torch.bmm(torch.from_numpy(colour), torch.from_numpy(colour).transpose(1, 2)).numpy()
    scale = np.sqrt(np.einsum("nii->ni", covariance)) + 1e-6
    correlation = covariance / scale[:, :, None] / scale[:, None, :]
    features.append(np.stack([correlation[:, 0, 1], correlation[:, 0, 2], correlation[:, 1, 2]]))
    return np.concatenate(features, 0).T.astype(np.float32)
