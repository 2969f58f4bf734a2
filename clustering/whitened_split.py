"""Split clusters that spread further along some direction than the batch's clusters typically do.

Why the pooled split test of `clustering.refine` over-splits learned vectors: it asks whether a
cluster is bimodal along its 2-means direction, and one zoo generator's images are: each trained
on a few photographs, its outputs fall in a few modes, whose held-out 2-means halves lie about as
far apart as the pooled fingerprints of two seeds of one design. A bimodality test cannot tell the
two apart. The test here asks something else: whether a cluster spreads further than the batch's
clusters do, which two origins in one cluster do wherever single origins spread alike.

Here every cluster is measured in the space whitened by the pooled within-cluster covariance of the
current clustering (an LDA-like change of basis, with the clusters as pseudo-labels): there a
typical cluster has variance about 1 in every direction. Each cluster's excess is the
variance of a random half of its members along the top principal direction of the other half (held
out, so the choice of direction does not inflate it; both ways round, the smaller kept): about 1
for a cluster that spreads as the batch's clusters do. A cluster whose excess is above `min_excess`
is split in two (2-means in that space), and its parts are tested again. The whitening comes from
the batch, so the bound is a ratio to the fingerprint's own within-cluster scatter, whatever made
the vectors.

Where it pays and where not (`BENCHMARKS.md`, development note on batch-level grouping): on
synthetic origins, whose single origins spread alike, it splits merged seed pairs; on zoo
fingerprints single generators already spread unevenly (their excess ranges from below 1 to about
7), a merged seed pair does not stand out, and splitting cuts generators apart. So it is off by
default in `OriginClusterer`.
"""
from __future__ import annotations

import numpy as np

from clustering.pooled import bisect_clusters

# Ridge added to the within-cluster covariance, relative to its mean eigenvalue (directions with
# almost no within-cluster spread would otherwise turn into huge whitened variances).
RIDGE = 0.05
# Members used per cluster when measuring its spread (enough for a stable variance).
MAX_TEST_POINTS = 2_000


def whitening(vectors: np.ndarray, labels: np.ndarray) -> np.ndarray | None:
    """W^(-1/2) of the pooled within-cluster covariance W of `vectors` (dim x dim), None without
    two clusters or enough members to estimate it."""
    n_clusters = int(labels.max(initial=-1)) + 1
    kept = labels >= 0
    if n_clusters < 2 or kept.sum() <= vectors.shape[1] + n_clusters:
        return None
    x = np.asarray(vectors[kept], np.float64)
    means = np.zeros((n_clusters, x.shape[1]))
    np.add.at(means, labels[kept], x)
    means /= np.bincount(labels[kept], minlength=n_clusters)[:, None]
    centred = x - means[labels[kept]]
    scatter = centred.T @ centred / (len(x) - n_clusters)
    values, vecs = np.linalg.eigh(scatter)
    values = np.maximum(values, 0.0) + RIDGE * max(float(values.mean()), 1e-12)
    return (vecs / np.sqrt(values)) @ vecs.T


def held_out_excess(z: np.ndarray, rng: np.random.Generator) -> float:
    """Variance of one half of the whitened points `z` along the top principal direction of the
    other half, both ways round, the smaller of the two (1 for a typical cluster)."""
    order = rng.permutation(len(z))[:MAX_TEST_POINTS]
    halves = (z[order[0::2]], z[order[1::2]])
    excess = []
    for fit, test in (halves, halves[::-1]):
        fit = fit - fit.mean(0)
        direction = np.linalg.svd(fit, full_matrices=False)[2][0]
        excess.append(float(np.var((test - test.mean(0)) @ direction, ddof=1)))
    return min(excess)


def _two_means(z: np.ndarray, rng: np.random.Generator, n_iter: int = 20) -> np.ndarray:
    """Two-means sides (0/1) of `z`, started from the two ends of its top principal direction."""
    projection = (z - z.mean(0)) @ np.linalg.svd(z - z.mean(0), full_matrices=False)[2][0]
    side = (projection > np.median(projection)).astype(np.int64)
    for _ in range(n_iter):
        if side.min() == side.max():
            break
        centres = np.stack([z[side == 0].mean(0), z[side == 1].mean(0)])
        new = np.argmin(((z[:, None, :] - centres[None]) ** 2).sum(-1), axis=1)
        if np.array_equal(new, side):
            break
        side = new
    return side


def split_excess_scatter(
    vectors: np.ndarray,
    labels: np.ndarray,
    min_excess: float,
    min_size: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """`labels` (-1 noise, clusters 0..k-1) with every cluster of at least `2 * min_size` members
    whose held-out whitened excess is above `min_excess` split in two (both parts at least
    `min_size`), recursively; new parts take new numbers. The whitening is computed once, from the
    clustering as given."""
    transform = whitening(vectors, labels)
    if transform is None:
        return labels

    def split(members: np.ndarray) -> np.ndarray | None:
        z = np.asarray(vectors[members], np.float64) @ transform
        if held_out_excess(z, rng) <= min_excess:
            return None
        return _two_means(z, rng)

    return bisect_clusters(labels, min_size, split)
