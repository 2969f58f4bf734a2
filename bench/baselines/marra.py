"""Mean-residual correlation baseline (Marra, Gragnaniello, Verdoliva and Poggi, "Do GANs leave
artificial fingerprints?", MIPR 2019), written from the paper's description.

A generator's fingerprint is the average of the noise residuals (image minus its denoised version)
of its images; an image is attributed to the generator whose average residual it correlates with
best. Here each image's vector is its own residual, zero-mean and L2-normalised, so that:
- the nearest-prototype attribution of ``clustering.attribution.OpenSetAttributor(n_neighbors=None, naming_neighbors=None)``
  (prototype = normalised mean of a generator's vectors, score = cosine; ``attributor_params`` asks
  the bench for it) is exactly the paper's normalised correlation with the averaged residual;
- clustering works on the flattened residual itself.

Denoiser: an adaptive 3x3 Wiener filter per colour channel (the PRNU tradition the paper builds on;
its wavelet-domain variant needs PyWavelets, which the project does not depend on). Residuals of
images smaller than ``size`` (a rescaled copy) are zero-padded at the bottom and right, so the
correlation runs over the overlapping pixels, as the paper's method allows; larger ones are cropped.
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import uniform_filter

from fingerprinting.models import FingerprintOutput

# Analytic cost per pixel and channel of the 3x3 adaptive Wiener filter and the residual: local
# mean and mean square (9 + 9 multiply-adds), the gain and its application (~8), the subtraction.
FLOPS_PER_PIXEL_CHANNEL = 2 * 9 + 2 * 9 + 8 + 1


class MarraFingerprinter:
    """Zero-mean, L2-normalised denoiser residual of a crop, flattened (no detection or parsing heads)."""

    name = "marra2019"
    version = "wiener3x3-residual"
    size_agnostic = True
    attributor_params = {"n_neighbors": None, "naming_neighbors": None}  # the paper's rule: correlation with each generator's averaged residual

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self.crop_size = size
        self.dim = 3 * size * size

    def fingerprint(self, crops: np.ndarray) -> FingerprintOutput:
        vectors = np.zeros((len(crops), self.size, self.size, 3), np.float32)
        for i, crop in enumerate(crops):
            residual = noise_residual(crop)[: self.size, : self.size]
            vectors[i, : residual.shape[0], : residual.shape[1]] = residual
        vectors = vectors.reshape(len(crops), -1)
        vectors -= vectors.mean(1, keepdims=True)
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return FingerprintOutput(vectors=vectors)

    def flops_per_crop(self, side: int) -> int:
        return FLOPS_PER_PIXEL_CHANNEL * 3 * side * side + 3 * 3 * side * side  # + centring and normalising


def noise_residual(crop: np.ndarray) -> np.ndarray:
    """(h, w, 3) uint8 -> (h, w, 3) float32: each channel minus its adaptive-Wiener denoised version.

    Wiener (Lee) filter: local mean m and variance v over 3x3, noise power s = mean of v over the
    channel; denoised = m + max(v - s, 0) / max(v, s) * (x - m), so flat areas (v = 0) stay finite.
    """
    image = crop.astype(np.float64) / 255.0
    mean = uniform_filter(image, size=(3, 3, 1), mode="reflect")
    variance = np.maximum(uniform_filter(image * image, size=(3, 3, 1), mode="reflect") - mean * mean, 0.0)
    noise = variance.mean(axis=(0, 1), keepdims=True)
    gain = np.maximum(variance - noise, 0.0) / np.maximum(np.maximum(variance, noise), 1e-12)
    return ((image - mean) * (1.0 - gain)).astype(np.float32)
