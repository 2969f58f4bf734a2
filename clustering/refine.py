"""Pooled refinement of a clustering: pooled fingerprints, merge, split, and re-assignment.

Single-image fingerprints are noisy; a cluster's mean (its pooled fingerprint) is far less so.
Everything here works on L2-normalised (reduced) vectors and integer labels (-1 = noise).
"""
from __future__ import annotations

import faiss
import numpy as np
from sklearn.cluster import KMeans

# Median absolute deviation to standard deviation for a normal distribution.
MAD_TO_STD = 1.4826
# Members used per cluster when testing separations (enough for a stable estimate).
MAX_TEST_POINTS = 2_000


def normalise(x: np.ndarray) -> np.ndarray:
    x = np.array(x, dtype=np.float32, order="C", copy=True)
    faiss.normalize_L2(x)
    return x


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


def pooled_centroids(vectors: np.ndarray, labels: np.ndarray, n_clusters: int) -> np.ndarray:
    """Normalised mean of each cluster's members, (n_clusters, dim) float32."""
    sums = np.zeros((n_clusters, vectors.shape[1]), dtype=np.float64)
    kept = labels >= 0
    np.add.at(sums, labels[kept], vectors[kept])
    return normalise(sums)


def acceptance_bounds(
    vectors: np.ndarray, labels: np.ndarray, centroids: np.ndarray, n_mads: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per cluster (lowest accepted similarity, median member similarity) to its centroid.

    The bound is median - n_mads robust standard deviations of the members' similarities: a
    point is as close to the pooled fingerprint as the cluster's own members are.
    """
    kept = labels >= 0
    sims = np.einsum("ij,ij->i", vectors[kept], centroids[labels[kept]])
    order = np.argsort(labels[kept], kind="stable")
    groups = np.split(sims[order], np.cumsum(np.bincount(labels[kept], minlength=len(centroids)))[:-1])
    median = np.array([np.median(g) for g in groups], dtype=np.float32)
    mad = np.array([np.median(np.abs(g - m)) for g, m in zip(groups, median)], dtype=np.float32)
    return median - n_mads * MAD_TO_STD * mad, median


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


def separation(a: np.ndarray, b: np.ndarray, rng: np.random.Generator) -> float:
    """Cross-fitted separation of two groups of vectors, in within-group standard deviations.

    The direction between the group means is estimated on one half of each group and measured
    on the other half (then the other way round), so two samples of one distribution score about
    0 whatever the dimension, while groups with different means score their true separation.
    """
    a = a[rng.permutation(len(a))[:MAX_TEST_POINTS]]
    b = b[rng.permutation(len(b))[:MAX_TEST_POINTS]]
    halves = [(a[0::2], b[0::2], a[1::2], b[1::2]), (a[1::2], b[1::2], a[0::2], b[0::2])]
    scores = []
    for a_fit, b_fit, a_test, b_test in halves:
        direction = a_fit.mean(axis=0) - b_fit.mean(axis=0)
        direction /= max(np.linalg.norm(direction), 1e-12)
        pa, pb = a_test @ direction, b_test @ direction
        spread = np.sqrt((pa.var() + pb.var()) / 2)
        scores.append((pa.mean() - pb.mean()) / max(spread, 1e-12))
    return float(np.mean(scores))


def merge_agreeing(
    vectors: np.ndarray,
    labels: np.ndarray,
    max_separation: float,
    rng: np.random.Generator,
    n_candidates: int = 5,
) -> np.ndarray:
    """Merge clusters whose members cannot be told apart along the line between their pooled
    fingerprints (separation below `max_separation`); only near centroids are compared."""
    n_clusters = int(labels.max(initial=-1)) + 1
    if n_clusters < 2:
        return labels
    centroids = pooled_centroids(vectors, labels, n_clusters)
    index = faiss.IndexFlatIP(centroids.shape[1])
    index.add(centroids)
    sims, near = index.search(centroids, min(n_candidates + 1, n_clusters))
    members = [np.flatnonzero(labels == c) for c in range(n_clusters)]
    parent = np.arange(n_clusters)

    def root(c: int) -> int:
        while parent[c] != c:
            parent[c] = parent[parent[c]]
            c = parent[c]
        return c

    pairs = sorted(
        {(min(a, b), max(a, b), float(s)) for a, row, srow in zip(range(n_clusters), near, sims)
         for b, s in zip(row, srow) if b >= 0 and b != a},
        key=lambda p: -p[2],
    )
    for a, b, _ in pairs:
        if root(a) != root(b) and separation(vectors[members[a]], vectors[members[b]], rng) < max_separation:
            parent[root(b)] = root(a)
    roots = np.array([root(c) for c in range(n_clusters)])
    return np.where(labels >= 0, roots[np.maximum(labels, 0)], -1)


def split_disagreeing(
    vectors: np.ndarray,
    labels: np.ndarray,
    min_separation: float,
    min_cluster_size: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Split clusters in two (2-means) while the halves separate by more than `min_separation`
    and both keep at least `min_cluster_size` members; the parts are tested again."""
    labels = labels.copy()
    next_label = int(labels.max(initial=-1)) + 1
    queue = list(range(next_label))
    while queue:
        members = np.flatnonzero(labels == queue.pop())
        if len(members) < 2 * min_cluster_size:
            continue
        km = KMeans(2, n_init=3, random_state=int(rng.integers(2**31)))
        halves = km.fit_predict(vectors[members])
        if np.bincount(halves, minlength=2).min() < min_cluster_size:
            continue
        part_a, part_b = members[halves == 0], members[halves == 1]
        if separation(vectors[part_a], vectors[part_b], rng) > min_separation:
            labels[part_b] = next_label
            queue += [int(labels[part_a[0]]), next_label]
            next_label += 1
    return labels
