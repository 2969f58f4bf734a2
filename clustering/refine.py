"""Optional pooled refinement of a clustering: split clusters that hold two origins, merge those that hold one.

Single-image fingerprints are noisy; a cluster's mean (its pooled fingerprint, `clustering.pooled`)
is far less so, and held-out evidence over many members decides each split and merge.
Everything here works on L2-normalised (reduced) vectors and integer labels (-1 = noise).
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import faiss
import numpy as np

from clustering.pooled import MAD_TO_STD, bisect_clusters, members_of, pooled_centroids

# Cap on the evidence (nats) one point contributes to a split or merge decision.
MAX_POINT_EVIDENCE = 2.0
# Members used per cluster when testing separations (enough for a stable estimate).
MAX_TEST_POINTS = 2_000


def _robust_fit(x: np.ndarray) -> tuple[float, float]:
    """Location and scale that a few strays (a real image inside a cluster) do not move."""
    centre = float(np.median(x))
    return centre, max(MAD_TO_STD * float(np.median(np.abs(x - centre))), 1e-6)


def _log_density(x: np.ndarray, fit: tuple[float, float]) -> np.ndarray:
    from scipy import stats  # a second to import: only refinement needs it, not a store's plain update

    return stats.norm.logpdf(x, loc=fit[0], scale=fit[1])


def _two_vs_one_gaussian(fit_a: np.ndarray, fit_b: np.ndarray, test: np.ndarray) -> float:
    """Held-out evidence (nats, summed over `test`) that two groups are two origins.

    Everything is projected on the line between the medians of fit_a and fit_b; the test
    points' log-likelihood under two gaussians (one per group, fitted on fit_a and fit_b) minus
    under one fitted on both. Positive: two modes; negative: one. Robust fits, and each point's
    say capped at MAX_POINT_EVIDENCE nats, keep a few strays (a real image inside a cluster)
    from deciding.
    """
    direction = np.median(fit_a, axis=0) - np.median(fit_b, axis=0)
    direction /= max(float(np.linalg.norm(direction)), 1e-12)
    pa, pb, pt = fit_a @ direction, fit_b @ direction, test @ direction
    weight_a = len(pa) / (len(pa) + len(pb))
    two = np.logaddexp(
        np.log(weight_a) + _log_density(pt, _robust_fit(pa)),
        np.log(1 - weight_a) + _log_density(pt, _robust_fit(pb)),
    )
    one = _log_density(pt, _robust_fit(np.r_[pa, pb]))
    return float(np.clip(two - one, -MAX_POINT_EVIDENCE, MAX_POINT_EVIDENCE).sum())


@contextmanager
def _one_thread() -> Iterator[None]:
    """Run tiny FAISS calls on one thread: on a busy machine OpenMP start-up and spinning cost
    20x the work itself (measured: 2-means on 150 points, 3.5 ms on 1 thread, 80 ms on 2)."""
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(threads)


def _two_means(x: np.ndarray, seed: int) -> np.ndarray:
    kmeans = faiss.Kmeans(x.shape[1], 2, niter=20, nredo=2, seed=seed, min_points_per_centroid=1)
    kmeans.train(np.ascontiguousarray(x, dtype=np.float32))
    return kmeans.index.search(np.ascontiguousarray(x, dtype=np.float32), 1)[1][:, 0]


def split_evidence(x: np.ndarray, rng: np.random.Generator) -> float:
    """Evidence (nats) that a cluster holds two origins: 2-means on one half of its members,
    the two-vs-one gaussian test on the other half, both ways round, averaged."""
    order = rng.permutation(len(x))[:MAX_TEST_POINTS]
    halves = (x[order[0::2]], x[order[1::2]])
    evidence = []
    for fit, test in (halves, halves[::-1]):
        side = _two_means(fit, int(rng.integers(2**31)))
        if min(side.sum(), len(side) - side.sum()) < 2:
            return float("-inf")
        evidence.append(_two_vs_one_gaussian(fit[side == 0], fit[side == 1], test))
    return float(np.mean(evidence))


def merge_evidence(a: np.ndarray, b: np.ndarray, rng: np.random.Generator) -> float:
    """Evidence (nats) that clusters a and b are two origins (held-out halves, both ways)."""
    a = a[rng.permutation(len(a))[:MAX_TEST_POINTS]]
    b = b[rng.permutation(len(b))[:MAX_TEST_POINTS]]
    evidence = [
        _two_vs_one_gaussian(a[i::2], b[i::2], np.vstack([a[1 - i :: 2], b[1 - i :: 2]]))
        for i in (0, 1)
    ]
    return float(np.mean(evidence))


def merge_agreeing(
    vectors: np.ndarray,
    labels: np.ndarray,
    max_evidence: float,
    rng: np.random.Generator,
    n_candidates: int = 5,
) -> np.ndarray:
    """Merge clusters whose pooled fingerprints agree: held-out evidence that they are two
    origins below `max_evidence` nats; only each cluster's nearest centroids are compared."""
    n_clusters = int(labels.max(initial=-1)) + 1
    if n_clusters < 2:
        return labels
    centroids = pooled_centroids(vectors, labels, n_clusters)
    index = faiss.IndexFlatIP(centroids.shape[1])
    index.add(centroids)
    sims, near = index.search(centroids, min(n_candidates + 1, n_clusters))
    members = members_of(labels, n_clusters)
    parent = np.arange(n_clusters)

    def root(c: int) -> int:
        while parent[c] != c:
            parent[c] = parent[parent[c]]
            c = parent[c]
        return c

    closeness = {
        (min(a, b), max(a, b)): float(s)
        for a, row, srow in zip(range(n_clusters), near, sims)
        for b, s in zip(row, srow)
        if b >= 0 and b != a
    }
    for a, b in sorted(closeness, key=closeness.get, reverse=True):
        if root(a) != root(b) and merge_evidence(vectors[members[a]], vectors[members[b]], rng) < max_evidence:
            parent[root(b)] = root(a)
    roots = np.array([root(c) for c in range(n_clusters)])
    return np.where(labels >= 0, roots[np.maximum(labels, 0)], -1)


@_one_thread()
def split_disagreeing(
    vectors: np.ndarray,
    labels: np.ndarray,
    min_evidence: float,
    min_cluster_size: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Split clusters in two (2-means) while the held-out evidence for two origins exceeds
    `min_evidence` nats and both parts keep `min_cluster_size` members; parts are tested again."""

    def split(members: np.ndarray) -> np.ndarray | None:
        if split_evidence(vectors[members], rng) <= min_evidence:
            return None
        return _two_means(vectors[members], int(rng.integers(2**31)))

    return bisect_clusters(labels, min_cluster_size, split)
