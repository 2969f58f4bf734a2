"""Excess-of-mass selection over HDBSCAN's condensed tree that never picks a cluster below a cohesion bound.

HDBSCAN's own excess-of-mass selection keeps a parent cluster whenever its stability beats the sum
of its children's. On degraded fingerprints the root's first split can win that way: one cluster
holding every generator, which `OriginClusterer`'s cohesion check then turns wholesale into noise
(`data/MODEL_CARD.md`, "Clustering and attribution: the measurements behind the defaults"). Here a cluster less cohesive than the bound cannot be
selected, so the selection descends to its children instead, as if the loose parent were the root.
With no cluster below the bound this is exactly hdbscan's selection (``allow_single_cluster=False``).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def cohesive_eom_labels(condensed_tree: np.ndarray, X: np.ndarray, min_cohesion: float) -> np.ndarray:
    """Cluster labels (-1 noise, clusters numbered by tree order) of the excess-of-mass selection among
    clusters whose mean cosine similarity between two members of `X` (rows L2-normalised) is at least
    `min_cohesion`; `condensed_tree` is hdbscan's structured array (parent, child, lambda_val, child_size)."""
    n = len(X)
    parent, child = condensed_tree["parent"].astype(np.int64), condensed_tree["child"].astype(np.int64)
    size = condensed_tree["child_size"].astype(np.float64)
    if len(parent) == 0:
        return np.full(n, -1, np.int64)
    lam = condensed_tree["lambda_val"].astype(np.float64)
    finite = lam[np.isfinite(lam)]
    lam = np.where(np.isfinite(lam), lam, finite.max(initial=1.0) * 2)  # duplicate points: keep the arithmetic finite
    n_nodes = int(parent.max()) - n + 1  # node 0 is the root, cluster id n
    is_cluster = child >= n
    # hdbscan numbers clusters top-down, so every cluster's parent has a smaller id: one reverse pass sums subtrees.
    node_parent = np.full(n_nodes, -1, np.int64)
    node_parent[child[is_cluster] - n] = parent[is_cluster] - n
    if np.any(node_parent[1:] >= np.arange(1, n_nodes)):
        raise ValueError("condensed tree is not numbered top-down")

    birth = np.zeros(n_nodes)
    birth[child[is_cluster] - n] = lam[is_cluster]
    stability = np.bincount(parent - n, weights=(lam - birth[parent - n]) * size, minlength=n_nodes)
    cohesive = _subtree_cohesion(X, parent[~is_cluster] - n, child[~is_cluster], node_parent) >= min_cohesion

    selected = np.zeros(n_nodes, bool)
    children_best = np.zeros(n_nodes)
    for node in range(n_nodes - 1, 0, -1):  # the root is never a cluster of its own
        selected[node] = cohesive[node] and stability[node] >= children_best[node]
        children_best[node_parent[node]] += stability[node] if selected[node] else children_best[node]
    # Top-down: a point belongs to its highest selected ancestor (at most one stays selected on any path).
    owner = np.full(n_nodes, -1, np.int64)
    for node in range(1, n_nodes):
        owner[node] = owner[node_parent[node]] if owner[node_parent[node]] >= 0 else (node if selected[node] else -1)
    kept = np.unique(owner[owner >= 0])
    number = np.full(n_nodes + 1, -1, np.int64)  # the last entry maps owner -1 to noise
    number[kept] = np.arange(len(kept))
    labels = np.full(n, -1, np.int64)
    labels[child[~is_cluster]] = number[owner[parent[~is_cluster] - n]]
    return labels


def cohesion(X: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per cluster 0..k-1, the mean cosine similarity between two different members (rows of `X`
    L2-normalised; -1 = noise); 0 for a cluster of one."""
    kept = np.flatnonzero(labels >= 0)
    sums, counts = _group_sums(X, labels[kept], kept, int(labels.max(initial=-1)) + 1)
    return _mean_pair_similarity(sums, counts)


def _subtree_cohesion(X: np.ndarray, point_node: np.ndarray, point: np.ndarray, node_parent: np.ndarray) -> np.ndarray:
    """Per tree node, the mean cosine similarity between two different points of its subtree (0 below two points)."""
    sums, counts = _group_sums(X, point_node, point, len(node_parent))
    for node in range(len(node_parent) - 1, 0, -1):
        sums[node_parent[node]] += sums[node]
        counts[node_parent[node]] += counts[node]
    return _mean_pair_similarity(sums, counts)


def _group_sums(X: np.ndarray, group: np.ndarray, rows: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """(sum of the rows of `X` in each group, their count) for rows `rows` in groups `group`."""
    indicator = sp.csr_matrix((np.ones(len(rows)), (group, rows)), shape=(n_groups, len(X)))
    return np.asarray(indicator @ np.asarray(X, np.float64)), np.bincount(group, minlength=n_groups).astype(np.float64)


def _mean_pair_similarity(sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
    # |sum|^2 = counts (each member with itself) + the sum over ordered pairs of different members.
    pairs = counts * (counts - 1)
    return np.where(pairs > 0, (np.einsum("ij,ij->i", sums, sums) - counts) / np.maximum(pairs, 1), 0.0)
