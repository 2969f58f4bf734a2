"""L2 normalisation of fingerprint vectors: the one place clustering/ does it."""
from __future__ import annotations

import faiss
import numpy as np


def normalise(x: np.ndarray) -> np.ndarray:
    """A float32, C-ordered copy of `x` with each row scaled to unit L2 norm (all-zero rows stay zero).

    Always a copy: FAISS normalises in place, and callers' arrays must not change under them.
    """
    x = np.array(x, dtype=np.float32, order="C", copy=True)
    faiss.normalize_L2(x)
    return x
