"""Clusters too loose to be one origin are clustered again on their own, in a projection fitted to them.

A projection fitted to the whole batch spends its components on what tells the batch's large
groups apart. After JPEG re-encoding or rescaling, generators of one design can differ only along
directions it barely keeps, and HDBSCAN then finds one cluster holding several of them, cohesive
enough to pass `OriginClusterer`'s `min_cohesion` but looser than one generator's images are. In
a PCA fitted to that cluster's own members (centred on their mean, re-normalised) those
differences are the largest there are. Clustering the members again there, recursively while a
part stays loose, splits such merges.

A generator's own output modes can be split this way too: they can be as loose, and as far apart,
as two generators. So only clusters below a cohesion bound are tried, set where most single
generators' images are (the bound and what it gains: `data/MODEL_CARD.md`, "Clustering and
attribution: the measurements behind the defaults").
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from clustering.cohesive_selection import cohesion


def split_loose_clusters(
    X: np.ndarray,
    labels: np.ndarray,
    below: float,
    min_size: int,
    cluster: Callable[[np.ndarray], np.ndarray],
) -> np.ndarray:
    """`labels` (-1 noise, clusters 0..k-1) of the L2-normalised rows `X`, with every cluster of at
    least `2 * min_size` points whose cohesion is under `below` replaced by the clusters that
    `cluster` (rows -> labels) finds among its points alone, recursively. The points that the inner
    pass leaves out join the cluster whose mean vector has the largest inner product with them (a
    tighter cluster has a longer mean): they were in the outer cluster, and splitting it is no
    reason to drop them. New clusters take new numbers."""
    labels = labels.copy()
    pending = list(range(labels.max(initial=-1) + 1))
    next_label = len(pending)
    while pending:
        members = np.flatnonzero(labels == pending.pop())
        if len(members) < 2 * min_size:
            continue
        points = X[members]
        if cohesion(points, np.zeros(len(members), np.int64))[0] >= below:
            continue
        inner = cluster(points)
        parts = inner.max(initial=-1) + 1
        if parts < 2:
            continue
        means = np.stack([points[inner == part].mean(0) for part in range(parts)])
        inner = np.where(inner >= 0, inner, np.argmax(points @ means.T, axis=1))
        # The first part keeps the outer cluster's number; the others are new.
        numbers = np.r_[labels[members[0]], np.arange(next_label, next_label + parts - 1)]
        labels[members] = numbers[inner]
        next_label += parts - 1
        pending.extend(numbers.tolist())
    return labels
