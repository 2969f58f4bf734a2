"""The scale path of HDBSCAN: a mutual-reachability minimum spanning tree from a FAISS k-NN graph.

hdbscan's own algorithms need all pairwise structure (time grows fast with dimension); here the
k nearest neighbours of every point come from FAISS, mutual reachability distances are computed
on those edges only (core distance = distance to the `min_samples`-th neighbour, as hdbscan's
Boruvka path does), disconnected pieces are joined through their representatives, and scipy
returns the spanning tree. Handed to hdbscan as a sparse precomputed matrix with min_samples=1
(mutual reachability of a tree's edges is the edge itself) it gives nearly the grouping hdbscan
builds from all pairs (ARI >= 0.97 in tests/test_origin.py), in O(n k) memory, and from a few
thousand points on it is faster (1e4 points at 64-d: 2.8 s against 16.6 s, measured).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse import csgraph

from clustering.index import FingerprintIndex

# Distances are stored in sparse matrices where an explicit 0 would read as "no edge".
MIN_DISTANCE = 1e-9
# Up to this many disconnected pieces are joined by an exact MST over their representatives.
DENSE_JOIN_MAX = 2048


def knn_graph(vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(neighbours (n, k) int64, euclidean distances (n, k)) of L2-normalised vectors, self
    excluded; -1 / inf where the approximate search found fewer."""
    n = len(vectors)
    index = FingerprintIndex.from_vectors(vectors, np.arange(n, dtype=np.int64))
    if index.nlist is not None:
        # The spanning tree barely moves for missed neighbours: 1/128 of the lists is enough
        # (measured at 3e5: probing 4x more lists cost 1.7x the time for the same ARI).
        index.nprobe = max(8, index.nlist // 128)
    sims, neighbours = index.search(vectors, min(k + 1, n))
    # Drop each point itself (or, if the search missed it, the farthest hit), keeping order.
    is_self = neighbours == np.arange(n)[:, None]
    is_self[~is_self.any(axis=1), -1] = True
    keep = np.argsort(is_self, axis=1, kind="stable")[:, : neighbours.shape[1] - 1]
    neighbours = np.take_along_axis(neighbours, keep, axis=1)
    sims = np.take_along_axis(sims, keep, axis=1).astype(np.float64)
    distances = np.sqrt(np.clip(2.0 - 2.0 * sims, 0.0, None))
    distances[neighbours < 0] = np.inf
    return neighbours, distances


def _join_components(
    graph: sp.csr_matrix, vectors: np.ndarray, core: np.ndarray
) -> sp.csr_matrix:
    """Add mutual-reachability edges between representatives until the graph is connected."""
    n_pieces, piece = csgraph.connected_components(graph, directed=False)
    while n_pieces > 1:
        # Representative of a piece: its member closest to the piece's mean direction.
        indicator = sp.csr_matrix((np.ones(len(piece)), (piece, np.arange(len(piece)))))
        sums = np.asarray(indicator @ vectors)
        closeness = np.einsum("ij,ij->i", vectors, sums[piece])
        order = np.lexsort((-closeness, piece))
        reps = order[np.r_[0, np.flatnonzero(np.diff(piece[order])) + 1]]
        rep_vectors = vectors[reps]
        if n_pieces <= DENSE_JOIN_MAX:
            gram = np.clip(2.0 - 2.0 * rep_vectors @ rep_vectors.T, 0.0, None)
            tree = csgraph.minimum_spanning_tree(np.maximum(np.sqrt(gram), MIN_DISTANCE))
            tree = tree.tocoo()
            a, b, d = tree.row, tree.col, tree.data
        else:
            neighbours, dist = knn_graph(rep_vectors, k=8)
            a = np.repeat(np.arange(n_pieces), neighbours.shape[1])
            b, d = neighbours.ravel(), dist.ravel()
            ok = b >= 0
            a, b, d = a[ok], b[ok], d[ok]
        a, b = reps[a], reps[b]
        weights = np.maximum(np.maximum(d, core[a]), core[b])
        extra = sp.csr_matrix((weights, (a, b)), shape=graph.shape)
        graph = graph.maximum(extra).maximum(extra.T).tocsr()
        n_pieces, piece = csgraph.connected_components(graph, directed=False)
    return graph


def mutual_reachability_tree(
    vectors: np.ndarray, min_samples: int, n_neighbors: int
) -> sp.csr_matrix:
    """Symmetric sparse (n, n) minimum spanning tree of the mutual reachability graph."""
    n = len(vectors)
    k = min(max(n_neighbors, min_samples), n - 1)
    neighbours, distances = knn_graph(vectors, k)
    core = distances[:, min(min_samples, k) - 1]
    core = np.where(np.isfinite(core), core, distances[np.isfinite(distances)].max(initial=2.0))
    rows = np.repeat(np.arange(n), neighbours.shape[1])
    cols, dist = neighbours.ravel(), distances.ravel()
    ok = (cols >= 0) & np.isfinite(dist)
    rows, cols, dist = rows[ok], cols[ok], dist[ok]
    weights = np.maximum(np.maximum(dist, core[rows]), core[cols])
    weights = np.maximum(weights, MIN_DISTANCE)
    graph = sp.csr_matrix((weights, (rows, cols)), shape=(n, n))
    graph = graph.maximum(graph.T).tocsr()
    graph = _join_components(graph, vectors, np.maximum(core, MIN_DISTANCE))
    tree = csgraph.minimum_spanning_tree(graph)
    return (tree + tree.T).tocsr()
