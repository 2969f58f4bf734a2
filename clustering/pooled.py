"""Pooled fingerprints of a clustering: labels renumbered, each cluster's pooled fingerprint, its
acceptance bound, and re-assignment of points to the nearest one.

Every clustering path uses these (a fit with or without refinement, and `assign` of new points);
`clustering.refine` builds its optional split and merge steps on them. Vectors are L2-normalised
(reduced) rows, labels integers with -1 for noise.
"""
from __future__ import annotations

from collections.abc import Callable

import faiss
import numpy as np

from clustering.vectors import normalise

# Median absolute deviation to standard deviation for a normal distribution.
MAD_TO_STD = 1.4826


def compact(labels: np.ndarray) -> np.ndarray:
    """Labels renumbered 0..k-1 by decreasing cluster size (ties by old label); -1 kept."""
    labels = np.asarray(labels)
    kept = labels >= 0
    values, counts = np.unique(labels[kept], return_counts=True)
    order = values[np.lexsort((values, -counts))]
    lookup = np.full(labels.max(initial=-1) + 2, -1, dtype=np.int64)
    lookup[order] = np.arange(len(order))
    out = np.full(len(labels), -1, dtype=np.int64)
    out[kept] = lookup[labels[kept]]
    return out


def members_of(labels: np.ndarray, n_clusters: int) -> list[np.ndarray]:
    """Indices of each cluster's members (one sort, not one scan per cluster)."""
    kept = np.flatnonzero(labels >= 0)
    order = kept[np.argsort(labels[kept], kind="stable")]
    return np.split(order, np.cumsum(np.bincount(labels[kept], minlength=n_clusters))[:-1])


def bisect_clusters(labels: np.ndarray, min_size: int, split: Callable[[np.ndarray], np.ndarray | None]) -> np.ndarray:
    """Split clusters in two while ``split(members)`` gives a side mask (None: keep it whole) and both
    parts keep ``min_size`` members; each part is tried again, new parts take new numbers."""
    labels = labels.copy()
    next_label = int(labels.max(initial=-1)) + 1
    members_by_label = dict(enumerate(members_of(labels, next_label)))
    queue = list(range(next_label))
    while queue:
        cluster = queue.pop()
        members = members_by_label[cluster]
        if len(members) < 2 * min_size:
            continue
        side = split(members)
        if side is None or min(side.sum(), len(side) - side.sum()) < min_size:
            continue
        labels[members[side == 1]] = next_label
        members_by_label[cluster], members_by_label[next_label] = members[side == 0], members[side == 1]
        queue += [cluster, next_label]
        next_label += 1
    return labels


def pooled_centroids(vectors: np.ndarray, labels: np.ndarray, n_clusters: int) -> np.ndarray:
    """Normalised mean of each cluster's members, (n_clusters, dim) float32."""
    import scipy.sparse as sp  # scipy only where clusters are pooled: a no-op run (which imports this) pools none

    kept = np.flatnonzero(labels >= 0)
    indicator = sp.csr_matrix(
        (np.ones(len(kept), np.float32), (labels[kept], kept)), shape=(n_clusters, len(labels))
    )
    return normalise(np.asarray(indicator @ vectors))


def acceptance_bounds(
    vectors: np.ndarray, labels: np.ndarray, centroids: np.ndarray, n_mads: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per cluster (lowest accepted similarity, median member similarity) to its centroid.

    The bound is median - n_mads robust standard deviations of the members' similarities: a
    point is as close to the pooled fingerprint as the cluster's own members are.
    """
    groups = [
        vectors[members] @ centroid
        for members, centroid in zip(members_of(labels, len(centroids)), centroids)
    ]
    median = np.array([np.median(g) for g in groups], dtype=np.float32)
    mad = np.array([np.median(np.abs(g - m)) for g, m in zip(groups, median)], dtype=np.float32)
    return median - n_mads * MAD_TO_STD * mad, median


def absorb_noise(vectors: np.ndarray, labels: np.ndarray, n_mads: float) -> np.ndarray:
    """Labels with each noise point joined to the nearest pooled fingerprint when it lies within
    that cluster's acceptance bound; clustered points keep their cluster.

    Density clustering leaves as noise the points that reach a cluster's density only after it has
    split from its neighbours; the more origins a batch holds, the closer those neighbours and the
    more such points (at a million the larger share). Their cluster's pooled fingerprint, averaged
    over many members, still places them.
    """
    noise = np.flatnonzero(labels < 0)
    if labels.max(initial=-1) < 0 or len(noise) == 0:
        return labels
    labels = labels.copy()
    labels[noise] = place_by_pooled(vectors, labels, n_mads, noise)
    return labels


def place_by_pooled(vectors: np.ndarray, labels: np.ndarray, n_mads: float, points: np.ndarray | None = None) -> np.ndarray:
    """Cluster of each of ``points`` (every point if None): the nearest pooled fingerprint of ``labels``'
    clusters when the point lies within that cluster's acceptance bound, else -1."""
    centroids = pooled_centroids(vectors, labels, int(labels.max(initial=-1)) + 1)
    bounds, _ = acceptance_bounds(vectors, labels, centroids, n_mads)
    return reassign(vectors if points is None else vectors[points], centroids, bounds)[0]


def reassign(
    vectors: np.ndarray, centroids: np.ndarray, bounds: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(label of the nearest centroid if within its bound else -1, similarity to it)."""
    index = faiss.IndexFlatIP(centroids.shape[1])
    index.add(np.ascontiguousarray(centroids, dtype=np.float32))
    sims, nearest = index.search(np.ascontiguousarray(vectors, dtype=np.float32), 1)
    sims, nearest = sims[:, 0], nearest[:, 0]
    labels = np.where(sims >= bounds[nearest], nearest, -1)
    return labels.astype(np.int64), sims
