"""OriginClusterer: group fingerprints by origin generator (PCA, HDBSCAN, pooled refinement)."""
from __future__ import annotations

import time

import hdbscan
import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin, clone
from sklearn.decomposition import PCA

from clustering import refine
from clustering.cohesive_selection import cohesion, cohesive_eom_labels
from clustering.graph import mutual_reachability_tree
from clustering.loose_split import split_loose_clusters

# PCA is fitted on at most this many points: the components are stable long before.
PCA_SAMPLE = 100_000


class _Clock:
    """Wall-clock seconds per named step (for `timings_`), summed when a step runs again."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round(self.laps.get(name, 0.0) + now - self._last, 3)
        self._last = now


class LinearProjection:
    """A fitted PCA's transform (no whitening) from its arrays, as restored from saved state."""

    def __init__(self, mean: np.ndarray, components: np.ndarray) -> None:
        self.mean_, self.components_ = np.asarray(mean), np.asarray(components)

    def transform(self, X: np.ndarray) -> np.ndarray:
        return (np.asarray(X, np.float64) - self.mean_) @ self.components_.T


ASSIGNMENT_STATE = ("pca_mean", "pca_components", "reduced_centroids", "bounds", "typical", "cluster_ids")


class OriginClusterer(ClusterMixin, BaseEstimator):
    """Same-origin clustering of fingerprint vectors.

    Steps: L2-normalise; PCA to `n_components` and re-normalise (cosine geometry); HDBSCAN
    (exact up to `graph_threshold` points, above it on a FAISS k-NN mutual-reachability graph,
    see `clustering.graph`: same grouping, several times faster from a few thousand points on);
    then, with `refine`, pooled refinement (`clustering.refine`): split clusters while held-out
    evidence says they hold two origins (> `split_evidence` nats), merge neighbouring clusters
    whose pooled fingerprints agree (evidence < `merge_evidence` nats; None skips a step), and
    re-assign every point, noise included, to its nearest pooled fingerprint when it is as close
    as the cluster's own members (within `assign_mads` robust deviations), else noise.

    Refinement is off by default (`refine=False`; with it on, splitting stays off unless
    `split_evidence` is given). Its steps pay on synthetic origins in pairs sharing a design
    (`python -m bench.clustering_scale refine`), not on zoo fingerprints: a generator's images fall in a
    few output modes, which the split step cuts apart, while re-assignment and merging draw
    photographs into generated clusters. Measured with `min_cluster_size` 10 on two tuning zoos
    (never the benchmark's; 100 images a member, 400 reals), ARI for HDBSCAN only / + merge +
    re-assign / + split + merge + re-assign: shipped model, the 24 members of the seed-0 zoo 0.68 /
    0.68 / 0.53, the 15 unseen-architecture members of the seed-7 zoo 0.71 / 0.60 / 0.53 (reals
    in generated clusters 0.00 / 0.20 / 0.01); spectral 0.32 / 0.27 / 0.22 and 0.58 / 0.51 / 0.46
    (reals in generated clusters 0.00 / 0.03-0.04 / 0.01-0.04). Noise is a little higher without
    re-assignment (0.155 against 0.123 on the seed-0 zoo, learned).

    A cluster must be cohesive: the mean cosine similarity between two of its members (on the
    normalised input vectors) at least `min_cohesion`, or its members become noise. Images of one
    generator share its fingerprint; photographs from many cameras share none, and a group of them
    is no origin however HDBSCAN drew it. With excess-of-mass selection the bound holds inside
    HDBSCAN's selection (`clustering.cohesive_selection`): a loose cluster gives way to its
    cohesive sub-clusters instead of becoming noise whole (after a 0.75x rescale of the paper-scale
    zoo, hdbscan's own selection kept one loose cluster of 41,362 images, and 97 % became noise).
    Leaf selection and refinement are checked afterwards.

    A cluster that passes the bound but stays below `split_cohesion` is clustered again on its own,
    in a PCA fitted to its members (`clustering.loose_split`): after JPEG re-encoding, generators
    of one design merge in the batch's projection and come apart in their own.

    When no cluster is left, the whole set is tried as one group in the input space (PCA centring
    would remove the very fingerprint that one origin's images share) and refined (merge,
    re-assign; whatever `refine` says): a batch from one generator, with a few strays, becomes one
    cluster. Measured on the 24-member default zoo
    (64 px): a member's images have cohesion 0.57 to 0.94 with the learned fingerprint (clean or
    JPEG 50) and 0.62 to 0.96 with the spectral one; 30 real photographs at most 0.19 (learned) and
    0.26 (spectral; JPEG-compressed photographs share the codec's trace there: up to 0.54).

    Parameters a user can reason about: `min_cluster_size` is the smallest origin group worth
    reporting, and it should grow with the batch: a generator's several modes each pass a small
    one. On 34 never-seen generators of 1000 images each (shipped model), 10 / 30 / 100 gave
    183 / 92 / 46 clusters and ARI 0.65 / 0.69 / 0.76. `min_samples` is how conservative density
    estimation is (higher = more noise);
    `min_cohesion` how much of a fingerprint a cluster's members must share (None: no check, and
    no single-group try); `split_cohesion` below which a cluster is tried as several origins (None:
    never).

    Learned state: `labels_` (-1 noise, clusters numbered by decreasing size), `probabilities_`
    (1 = at least as close to the pooled fingerprint as the median member, falling to 0 at the
    acceptance bound), `outlier_scores_` (HDBSCAN's GLOSH), `centroids_` (k, dim) float32
    normalised pooled fingerprints in the input space, `cluster_ids_` (label of each row),
    `hdbscan_labels_` (before refinement), `pca_` (None: clustered in the input space, as after
    the single-group try) and `timings_` (seconds per step).
    """

    def __init__(
        self,
        min_cluster_size: int = 10,
        min_samples: int | None = 5,
        n_components: int | None = 64,
        refine: bool = False,
        merge_evidence: float | None = 2.0,
        split_evidence: float | None = None,
        assign_mads: float = 3.0,
        min_cohesion: float | None = 0.3,
        split_cohesion: float | None = 0.7,
        graph_threshold: int = 5_000,
        n_neighbors: int = 15,
        cluster_selection_method: str = "eom",
        random_state: int = 0,
    ) -> None:
        self.min_cluster_size = min_cluster_size
        self.min_samples = min_samples
        self.n_components = n_components
        self.refine = refine
        self.merge_evidence = merge_evidence
        self.split_evidence = split_evidence
        self.assign_mads = assign_mads
        self.min_cohesion = min_cohesion
        self.split_cohesion = split_cohesion
        self.graph_threshold = graph_threshold
        self.n_neighbors = n_neighbors
        self.cluster_selection_method = cluster_selection_method
        self.random_state = random_state

    # ---- fitting ------------------------------------------------------------------------------

    def fit(self, X: np.ndarray, y: None = None) -> OriginClusterer:
        clock = _Clock()
        X = refine.normalise(X)
        self.n_features_in_ = X.shape[1]
        self._fit_reduction(X)
        reduced = self.reduce(X)
        clock.lap("reduce")
        labels, self.outlier_scores_ = self._density_clusters(X, reduced)
        self.hdbscan_labels_ = labels
        clock.lap("hdbscan")
        if self.refine:
            labels = self._refine(reduced, labels, clock)
        labels = self._drop_loose(X, labels)
        labels = self._split_loose(X, labels)
        clock.lap("split_loose")
        if labels.max(initial=-1) < 0:
            labels, reduced = self._one_group(X, labels, reduced, clock)
        self._set_clusters(X, reduced, refine.compact(labels))
        clock.lap("pool")
        self.timings_ = clock.laps
        return self

    def _fit_reduction(self, X: np.ndarray) -> None:
        n, dim = X.shape
        if self.n_components is None or self.n_components >= min(n, dim):
            self.pca_ = None
            return
        rng = np.random.default_rng(self.random_state)
        sample = X if n <= PCA_SAMPLE else X[np.sort(rng.choice(n, PCA_SAMPLE, replace=False))]
        self.pca_ = PCA(self.n_components, random_state=self.random_state).fit(sample)

    def reduce(self, X: np.ndarray) -> np.ndarray:
        """The space clustering happens in: normalised PCA projection of normalised vectors."""
        X = refine.normalise(X)
        if self.pca_ is None:
            return X
        return refine.normalise(self.pca_.transform(X))

    @property
    def _min_samples(self) -> int:
        return self.min_samples or self.min_cluster_size

    def _density_clusters(self, X: np.ndarray, reduced: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(labels, GLOSH outlier scores) of HDBSCAN on `reduced`; with excess of mass and a
        `min_cohesion`, the selection skips clusters of `X` below it (`clustering.cohesive_selection`)."""
        if len(reduced) < max(self.min_cluster_size, 2):  # no cluster is possible
            return np.full(len(reduced), -1, np.int64), np.zeros(len(reduced), np.float32)
        if len(reduced) <= self.graph_threshold:
            model = hdbscan.HDBSCAN(
                min_cluster_size=self.min_cluster_size,
                min_samples=self._min_samples,
                cluster_selection_method=self.cluster_selection_method,
                core_dist_n_jobs=1,
            ).fit(reduced.astype(np.float64))
        else:
            tree = mutual_reachability_tree(reduced, self._min_samples, self.n_neighbors)
            model = hdbscan.HDBSCAN(
                min_cluster_size=self.min_cluster_size,
                min_samples=1,  # the tree already holds mutual reachability distances
                metric="precomputed",
                cluster_selection_method=self.cluster_selection_method,
            ).fit(tree)
        labels = model.labels_.astype(np.int64)
        if self.cluster_selection_method == "eom" and self.min_cohesion is not None:
            labels = cohesive_eom_labels(model.condensed_tree_.to_numpy(), X, self.min_cohesion)
        return labels, model.outlier_scores_.astype(np.float32)

    def _refine(self, reduced: np.ndarray, labels: np.ndarray, clock: _Clock) -> np.ndarray:
        rng = np.random.default_rng(self.random_state)
        labels = refine.compact(labels)
        if self.split_evidence is not None:
            labels = refine.split_disagreeing(
                reduced, labels, self.split_evidence, self.min_cluster_size, rng
            )
            clock.lap("split")
        if self.merge_evidence is not None:
            labels = refine.compact(refine.merge_agreeing(reduced, labels, self.merge_evidence, rng))
            clock.lap("merge")
        n_clusters = labels.max(initial=-1) + 1
        if n_clusters == 0:
            return labels
        centroids = refine.pooled_centroids(reduced, labels, n_clusters)
        bounds, _ = refine.acceptance_bounds(reduced, labels, centroids, self.assign_mads)
        labels, _ = refine.reassign(reduced, centroids, bounds)
        clock.lap("reassign")
        return labels

    def _drop_loose(self, X: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """Labels with the clusters less cohesive than `min_cohesion` turned to noise."""
        if self.min_cohesion is None:
            return labels
        labels = refine.compact(labels)
        loose = np.r_[cohesion(X, labels) < self.min_cohesion, True]  # the last entry stands for noise
        return refine.compact(np.where(loose[labels], -1, labels))

    def _split_loose(self, X: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """Labels with the clusters less cohesive than `split_cohesion` clustered again on their own
        (`clustering.loose_split`), by a clusterer with these parameters that does not recurse itself."""
        if self.split_cohesion is None or labels.max(initial=-1) < 0:
            return labels
        inner = clone(self).set_params(split_cohesion=None)
        return split_loose_clusters(
            X, refine.compact(labels), self.split_cohesion, self.min_cluster_size, inner.fit_predict
        )

    def _one_group(
        self, X: np.ndarray, labels: np.ndarray, reduced: np.ndarray, clock: _Clock
    ) -> tuple[np.ndarray, np.ndarray]:
        """With no cluster found: every point as one cluster in the input space, refined (split if
        asked, merge, re-assign), loose parts dropped; (labels, space clustered in), unchanged if
        nothing stays."""
        if self.min_cohesion is None or len(X) < self.min_cluster_size:
            return labels, reduced
        grouped = self._drop_loose(X, self._refine(X, np.zeros(len(X), np.int64), clock))
        clock.lap("one_group")
        if grouped.max(initial=-1) < 0:
            return labels, reduced
        self.pca_ = None  # `reduce` (and so `assign`) now works in the input space too
        return grouped, X

    def _set_clusters(self, X: np.ndarray, reduced: np.ndarray, labels: np.ndarray) -> None:
        n_clusters = labels.max(initial=-1) + 1
        self.labels_ = labels
        self.cluster_ids_ = np.arange(n_clusters, dtype=np.int64)
        self.centroids_ = refine.pooled_centroids(X, labels, n_clusters)
        self.reduced_centroids_ = refine.pooled_centroids(reduced, labels, n_clusters)
        if n_clusters == 0:
            self.bounds_ = self.typical_ = np.empty(0, np.float32)
            self.probabilities_ = np.zeros(len(labels), np.float32)
            return
        # Bounds come from the members HDBSCAN itself placed (as in refinement): members that
        # re-assignment added at the edge would otherwise loosen the bound run after run.
        core = np.where(self.hdbscan_labels_ >= 0, labels, -1)
        has_core = np.bincount(core[core >= 0], minlength=n_clusters) > 0
        core = np.where(has_core[np.maximum(labels, 0)], core, labels)
        self.bounds_, self.typical_ = refine.acceptance_bounds(
            reduced, core, self.reduced_centroids_, self.assign_mads
        )
        sims = np.einsum("ij,ij->i", reduced, self.reduced_centroids_[np.maximum(labels, 0)])
        self.probabilities_ = np.where(labels >= 0, self._probability(sims, np.maximum(labels, 0)), 0.0)
        self.probabilities_ = self.probabilities_.astype(np.float32)

    def _probability(self, sims: np.ndarray, rows: np.ndarray) -> np.ndarray:
        bound, typical = self.bounds_[rows], self.typical_[rows]
        return np.clip((sims - bound) / np.maximum(typical - bound, 1e-6), 0.0, 1.0)

    def fit_predict(self, X: np.ndarray, y: None = None) -> np.ndarray:
        return self.fit(X).labels_

    # ---- new points ---------------------------------------------------------------------------

    def assign(
        self, X: np.ndarray, max_distance: float | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(labels, probabilities) of new points, without refitting.

        A point joins the cluster with the nearest pooled fingerprint when it is as close to it
        as the cluster's own members were (the calibrated bound), or, with `max_distance`, when
        its cosine distance to it (in the reduced space) is at most that; otherwise -1.
        """
        reduced = self.reduce(X)
        if len(self.cluster_ids_) == 0:
            return np.full(len(reduced), -1, np.int64), np.zeros(len(reduced), np.float32)
        bounds = self.bounds_ if max_distance is None else np.full_like(self.bounds_, 1.0 - max_distance)
        rows, sims = refine.reassign(reduced, self.reduced_centroids_, bounds)
        labels = np.where(rows >= 0, self.cluster_ids_[np.maximum(rows, 0)], -1)
        probabilities = np.where(rows >= 0, self._probability(sims, np.maximum(rows, 0)), 0.0)
        return labels.astype(np.int64), probabilities.astype(np.float32)

    # ---- saving what `assign` needs ----------------------------------------------------------

    def assignment_state(self) -> dict[str, np.ndarray]:
        """Plain arrays (np.savez-able, no pickle) from which `from_assignment_state` rebuilds a
        clusterer that assigns exactly as this one. `cluster_ids` may be rewritten (e.g. to
        stable ids) before saving: `assign` returns whatever it holds."""
        pca = self.pca_
        return {
            "pca_mean": np.zeros(0) if pca is None else np.asarray(pca.mean_, np.float64),
            "pca_components": np.zeros((0, 0)) if pca is None else np.asarray(pca.components_, np.float64),
            "reduced_centroids": self.reduced_centroids_,
            "bounds": self.bounds_,
            "typical": self.typical_,
            "cluster_ids": self.cluster_ids_,
        }

    @classmethod
    def from_assignment_state(cls, state: dict[str, np.ndarray]) -> OriginClusterer:
        missing = [key for key in ASSIGNMENT_STATE if key not in state]
        if missing:
            raise ValueError(f"assignment state lacks {missing}")
        clusterer = cls()
        has_pca = np.asarray(state["pca_components"]).size > 0
        clusterer.pca_ = LinearProjection(state["pca_mean"], state["pca_components"]) if has_pca else None
        clusterer.reduced_centroids_ = np.asarray(state["reduced_centroids"], np.float32)
        clusterer.bounds_ = np.asarray(state["bounds"], np.float32)
        clusterer.typical_ = np.asarray(state["typical"], np.float32)
        clusterer.cluster_ids_ = np.asarray(state["cluster_ids"], np.int64)
        return clusterer
