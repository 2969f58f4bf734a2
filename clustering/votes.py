"""A cluster's name by its members' votes: plain numpy, so a store update can vote without loading scikit-learn."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def cluster_votes(labels: np.ndarray, names: Sequence[str | None], min_share: float = 0.5) -> dict[int, tuple[str | None, float]]:
    """Per cluster id (noise skipped): (winning name or None, its vote share among members).

    Every member votes for its predicted name or for unknown (None); the cluster takes the
    plurality name when it has at least `min_share` of the votes, else None.
    """
    labels = np.asarray(labels)
    votes = np.array(["" if n is None else str(n) for n in names], dtype=object)
    result: dict[int, tuple[str | None, float]] = {}
    for cluster in np.unique(labels[labels >= 0]):
        values, counts = np.unique(votes[labels == cluster].astype(str), return_counts=True)
        winner = int(np.argmax(counts))
        share = float(counts[winner] / counts.sum())
        name = values[winner] or None
        result[int(cluster)] = (name if share >= min_share else None, share)
    return result
