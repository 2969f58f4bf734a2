"""Synthetic fingerprints that mimic the zoo, for tests and scale benchmarks of clustering/.

Each vector = a content component (low-rank, shared by fakes and reals: content must not
cluster) + an origin signal (origins of one design sit close together, as seeds of one
architecture do) + per-image noise. Real images carry no origin signal: they form a diffuse
background that must not be absorbed into clusters.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

REAL = -1
_CHUNK = 65_536


@dataclass
class SyntheticFingerprints:
    vectors: np.ndarray  # (n, dim) float32, L2-normalised
    origins: np.ndarray  # (n,) int64, origin id, REAL (-1) for real images

    @property
    def generated(self) -> np.ndarray:
        return self.origins != REAL


def _unit(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    x = rng.standard_normal((n, dim))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def make_fingerprints(
    n_origins: int = 40,
    images_per_origin: int = 100,
    n_real: int = 1_000,
    dim: int = 64,
    origins_per_design: int = 2,
    seed_distance: float = 0.5,
    noise: float = 1.3,
    content: float = 0.5,
    content_rank: int = 8,
    seed: int = 0,
) -> SyntheticFingerprints:
    """`n_origins` groups of about `images_per_origin` vectors (sizes vary 0.5-1.5x) plus `n_real`
    real-image vectors. Signals are unit-norm; `seed_distance` is the distance between origins of
    one design (their centres differ by that, in signal units); `noise` the per-image noise norm."""
    rng = np.random.default_rng(seed)
    n_designs = -(-n_origins // origins_per_design)
    designs = _unit(rng, n_designs, dim)
    centres = designs[np.arange(n_origins) // origins_per_design] + seed_distance * _unit(
        rng, n_origins, dim
    ) / np.sqrt(2)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    sizes = np.maximum(2, np.round(images_per_origin * rng.uniform(0.5, 1.5, n_origins)).astype(int))
    origins = np.r_[np.repeat(np.arange(n_origins), sizes), np.full(n_real, REAL)]
    content_basis = _unit(rng, content_rank, dim)
    content_coefficients = rng.standard_normal((len(origins), content_rank))
    # Built in row chunks (the same random stream as one draw): at a million vectors the float64
    # temporaries of one whole-array expression would need several GB.
    vectors = np.empty((len(origins), dim), np.float32)
    for start in range(0, len(origins), _CHUNK):
        rows = slice(start, start + _CHUNK)
        signal = np.where((origins[rows] >= 0)[:, None], centres[np.maximum(origins[rows], 0)], 0.0)
        content_part = content_coefficients[rows] @ content_basis
        noise_part = rng.standard_normal((len(signal), dim)) * noise / np.sqrt(dim)
        chunk = (signal + content * content_part / np.sqrt(content_rank) + noise_part).astype(np.float32)
        vectors[rows] = chunk / np.linalg.norm(chunk, axis=1, keepdims=True)
    order = rng.permutation(len(origins))
    return SyntheticFingerprints(vectors[order], origins[order].astype(np.int64))
