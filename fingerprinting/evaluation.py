"""Held-out figures of a fingerprinter on a zoo: grouping, detection and parsing quality."""
from __future__ import annotations

import numpy as np


def nearest_neighbour_same_label_rate(vectors: np.ndarray, labels: np.ndarray) -> float:
    """Share of vectors whose nearest other vector (cosine) has the same label: how tight origins group."""
    if len(vectors) < 2:
        return float("nan")
    similarity = vectors @ vectors.T
    np.fill_diagonal(similarity, -np.inf)
    return float(np.mean(labels[similarity.argmax(1)] == labels))
