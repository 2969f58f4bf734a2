"""OriginClusterer: group fingerprints by origin generator (PCA, HDBSCAN, cohesion, pooled fingerprints)."""
from __future__ import annotations

import json
import time

import hdbscan
import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin, clone
from sklearn.decomposition import PCA
from sklearn.utils.validation import check_is_fitted, validate_data

from clustering import refine
from clustering.cohesive_selection import cohesion, cohesive_eom_labels
from clustering.graph import mutual_reachability_tree
from clustering.loose_split import split_loose_clusters
from clustering.params import Flag, Number, OneOf, check_params
from clustering.pooled import absorb_noise, acceptance_bounds, compact, place_by_pooled, pooled_centroids, reassign
from clustering.vectors import normalise
from clustering.whitened_split import split_excess_scatter

# PCA is fitted on at most this many points: the components are stable long before.
PCA_SAMPLE = 100_000
# With `min_cluster_size=None`: the first pass's minimum cluster size, and the share of the median
# cluster size found then that the second pass asks for (`OriginClusterer._resolve_size`).
AUTO_FLOOR = 5
AUTO_SHARE = 1 / 3


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


def _project(pca: PCA | LinearProjection | None, X: np.ndarray) -> np.ndarray:
    """The space clustering happens in: the normalised projection of normalised `X` (`X` itself without one)."""
    return X if pca is None else normalise(pca.transform(X))


# Arrays of `assignment_state`, beside "params" (the parameters as JSON) and "timings".
STATE_ARRAYS = (
    "n_features_in", "pca_mean", "pca_components", "labels", "probabilities", "outlier_scores",
    "hdbscan_labels", "centroids", "reduced_centroids", "bounds", "typical", "cluster_ids",
)


class OriginClusterer(ClusterMixin, BaseEstimator):
    """Same-origin clustering of fingerprint vectors.

    Steps: L2-normalise; PCA to `n_components` and re-normalise (cosine geometry); HDBSCAN (exact
    up to `graph_threshold` points, above it on a FAISS k-NN mutual-reachability graph, see
    `clustering.graph`: the same grouping, faster on large batches). A cluster must be cohesive:
    the mean cosine similarity between two of its members (on the normalised input vectors) at
    least `min_cohesion`, else its members become noise. Images of one generator share its
    fingerprint; photographs from many cameras share none. With excess-of-mass selection the bound
    holds inside HDBSCAN's selection (`clustering.cohesive_selection`): a loose cluster gives way
    to its cohesive sub-clusters instead of becoming noise whole. A cluster that passes the bound
    but stays below `split_cohesion` is clustered again on its own, in a PCA fitted to its members
    (`clustering.loose_split`). When no cluster is left, the whole set is tried as one group in the
    input space (PCA centring would remove the very fingerprint one origin's images share), refined
    and stripped of loose parts: a batch from one generator, with a few strays, becomes one cluster.
    Last, with `absorb_noise`, each noise point joins the cluster with the nearest pooled
    fingerprint if it is as close to it as the cluster's members are (`clustering.pooled`): the
    more origins a batch holds, the more of each one's images HDBSCAN leaves as noise. It is off
    by default: where the fingerprint does not tell photographs from a generator's images (real
    generators outside the zoo) it draws photographs into generated clusters (`BENCHMARKS.md`,
    development note on absorbing noise).

    With `refine`, pooled refinement (`clustering.refine`) runs after HDBSCAN: split clusters while
    held-out evidence says they hold two origins, merge neighbouring clusters whose pooled
    fingerprints agree, and re-assign every point, noise included, to its nearest pooled
    fingerprint when it is as close as the cluster's own members, else noise. It is off by
    default: on zoo fingerprints a generator's images fall in a few output modes, which the split
    step cuts apart, while re-assignment and merging draw photographs into generated clusters. The
    measurements behind these choices and defaults are in `data/MODEL_CARD.md` ("Clustering and
    attribution: the measurements behind the defaults").

    With `split_excess`, clusters that spread further than the batch's clusters do, in the space
    whitened by their pooled within-cluster scatter, are split in two after HDBSCAN
    (`clustering.whitened_split`). It is off by default: it splits merged origins where single
    origins spread alike (synthetic origins in pairs sharing a design), but on zoo fingerprints
    single generators spread unevenly and it cuts them apart (`BENCHMARKS.md`, development note on
    batch-level grouping).

    Parameters
    ----------
    min_cluster_size : int or None, default=10
        The smallest origin group worth reporting (at least 2). It should grow with the batch: a
        generator's several output modes each pass a small one. None follows the batch: HDBSCAN
        runs at `AUTO_FLOOR`, then again (on the same graph) at `AUTO_SHARE` of the median size
        of the clusters it found, never below the floor; the size used is `min_cluster_size_`.
    min_samples : int or None, default=5
        How conservative density estimation is (higher: more noise); None uses `min_cluster_size`.
    n_components : int or None, default=64
        Dimensions kept by PCA; None, or at least the number of points or features, skips PCA.
    refine : bool, default=False
        Run pooled refinement (split, merge, re-assign) after HDBSCAN.
    absorb_noise : bool, default=False
        Let each point HDBSCAN left as noise join the cluster with the nearest pooled fingerprint
        when it is as close to it as the cluster's own members (`assign_mads`); clustered points
        stay where they are. Without `refine` only (its re-assignment covers noise).
    split_excess : float or None, default=None
        Split a cluster in two while its held-out whitened spread exceeds this many times the
        batch's typical within-cluster variance (`clustering.whitened_split`); None: never.
    merge_evidence : float or None, default=2.0
        With `refine`: merge two neighbouring clusters when the held-out evidence that they are two
        origins is below this many nats; None skips merging.
    split_evidence : float or None, default=None
        With `refine`: split a cluster in two while the evidence for two origins exceeds this many
        nats; None skips splitting.
    assign_mads : float, default=3.0
        Acceptance bound of each cluster: its members' median similarity to the pooled fingerprint
        minus this many robust standard deviations (used by re-assignment, `probabilities_` and
        `assign`).
    min_cohesion : float or None, default=0.3
        The mean cosine similarity between two members that a cluster must reach; None: no check,
        and no single-group try.
    split_cohesion : float or None, default=0.7
        Clusters less cohesive than this are clustered again on their own; None: never.
    graph_threshold : int, default=5000
        Above this many points HDBSCAN runs on a k-NN mutual-reachability graph instead of exactly.
    n_neighbors : int, default=15
        Neighbours per point of that graph.
    cluster_selection_method : {"eom", "leaf"}, default="eom"
        HDBSCAN's cluster selection (the cohesion bound applies inside "eom", after "leaf").
    random_state : int or None, default=0
        Seed of the PCA sample and solver and of refinement's random halves.

    Attributes
    ----------
    labels_ : ndarray of shape (n_samples,), int64
        Cluster of each point, -1 for noise; clusters numbered 0..k-1 by decreasing size.
    probabilities_ : ndarray of shape (n_samples,), float32
        1 for a point at least as close to its cluster's pooled fingerprint as the median member,
        falling to 0 at the acceptance bound; 0 for noise.
    outlier_scores_ : ndarray of shape (n_samples,), float32
        HDBSCAN's GLOSH outlier score of each point.
    hdbscan_labels_ : ndarray of shape (n_samples,), int64
        Labels as HDBSCAN's (cohesive) selection left them, before refinement and splitting.
    centroids_ : ndarray of shape (n_clusters, n_features_in_), float32
        Pooled fingerprint (normalised mean of the members) of each cluster, in the input space.
    reduced_centroids_ : ndarray of shape (n_clusters, n_reduced), float32
        The same in the space clustering happened in.
    bounds_, typical_ : ndarray of shape (n_clusters,), float32
        Lowest accepted and median member similarity to each reduced pooled fingerprint.
    cluster_ids_ : ndarray of shape (n_clusters,), int64
        The id `assign` returns for each cluster: its label, unless rewritten in the saved state
        (to stable ids, say) before `from_assignment_state`.
    pca_ : PCA, LinearProjection or None
        The projection into the clustering space; None when clustering happened in the input
        space (no PCA asked or possible, or after the single-group try).
    n_features_in_ : int
        Number of features seen during fit.
    min_cluster_size_ : int
        The minimum cluster size the fit used (`min_cluster_size`, or the one that followed the
        batch).
    timings_ : dict of str to float
        Wall-clock seconds of each step of the fit.

    Examples
    --------
    >>> from clustering.origin import OriginClusterer
    >>> from clustering.synthetic import make_fingerprints
    >>> data = make_fingerprints(n_origins=3, images_per_origin=40, n_real=0, dim=16, noise=0.5,
    ...                          origins_per_design=1, seed=0)
    >>> clusterer = OriginClusterer(min_cluster_size=10).fit(data.vectors)
    >>> len(clusterer.cluster_ids_)
    3
    >>> labels, probabilities = clusterer.assign(data.vectors[:5])
    >>> bool((labels == clusterer.labels_[:5]).all())
    True
    """

    _rules = {
        "min_cluster_size": Number(integer=True, low=2, optional=True),
        "min_samples": Number(integer=True, low=1, optional=True),
        "n_components": Number(integer=True, low=1, optional=True),
        "refine": Flag(),
        "absorb_noise": Flag(),
        "split_excess": Number(low=0, optional=True),
        "merge_evidence": Number(optional=True),
        "split_evidence": Number(optional=True),
        "assign_mads": Number(low=0),
        "min_cohesion": Number(low=-1, high=1, optional=True),
        "split_cohesion": Number(low=-1, high=1, optional=True),
        "graph_threshold": Number(integer=True, low=0),
        "n_neighbors": Number(integer=True, low=1),
        "cluster_selection_method": OneOf(("eom", "leaf")),
        "random_state": Number(integer=True, low=0, optional=True),
    }

    def __init__(
        self,
        *,
        min_cluster_size: int | None = 10,
        min_samples: int | None = 5,
        n_components: int | None = 64,
        refine: bool = False,
        absorb_noise: bool = False,
        split_excess: float | None = None,
        merge_evidence: float | None = 2.0,
        split_evidence: float | None = None,
        assign_mads: float = 3.0,
        min_cohesion: float | None = 0.3,
        split_cohesion: float | None = 0.7,
        graph_threshold: int = 5_000,
        n_neighbors: int = 15,
        cluster_selection_method: str = "eom",
        random_state: int | None = 0,
    ) -> None:
        self.min_cluster_size = min_cluster_size
        self.min_samples = min_samples
        self.n_components = n_components
        self.refine = refine
        self.absorb_noise = absorb_noise
        self.split_excess = split_excess
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
        """Cluster `X` (n_samples, n_features); `y` is ignored.

        Returns
        -------
        self : OriginClusterer
            The fitted clusterer.
        """
        check_params(self, self._rules)
        X = normalise(validate_data(self, X, dtype=np.float32))
        clock = _Clock()
        pca = self._fit_reduction(X)
        # Normalised a second time before projecting, as fits always did: HDBSCAN's ties follow those
        # last bits, and the same input keeps the same labels across versions.
        reduced = _project(pca, normalise(X))
        clock.lap("reduce")
        hdbscan_labels, outlier_scores = self._density_clusters(X, reduced)
        clock.lap("hdbscan")
        labels = hdbscan_labels
        if self.split_excess is not None:
            labels = split_excess_scatter(
                reduced, compact(labels), self.split_excess, self.min_cluster_size_,
                np.random.default_rng(self.random_state),
            )
            clock.lap("split_excess")
        labels = self._refine(reduced, labels, clock) if self.refine else labels
        labels = self._drop_loose(X, labels)
        labels = self._split_loose(X, labels)
        clock.lap("split_loose")
        if self.absorb_noise and not self.refine:  # refinement's re-assignment places noise already
            labels = absorb_noise(reduced, compact(labels), self.assign_mads)
            clock.lap("absorb_noise")
        if labels.max(initial=-1) < 0 and (grouped := self._one_group(X, clock)) is not None:
            labels, reduced, pca = grouped, X, None  # `assign` then works in the input space too
        self.pca_, self.hdbscan_labels_, self.outlier_scores_ = pca, hdbscan_labels, outlier_scores
        self._set_clusters(X, reduced, compact(labels))
        clock.lap("pool")
        self.timings_ = clock.laps
        return self

    def _fit_reduction(self, X: np.ndarray) -> PCA | None:
        n, dim = X.shape
        if self.n_components is None or self.n_components >= min(n, dim):
            return None
        rng = np.random.default_rng(self.random_state)
        sample = X if n <= PCA_SAMPLE else X[np.sort(rng.choice(n, PCA_SAMPLE, replace=False))]
        return PCA(self.n_components, random_state=self.random_state).fit(sample)

    def reduce(self, X: np.ndarray) -> np.ndarray:
        """The space clustering happened in: the normalised projection of the normalised `X`.

        Returns
        -------
        reduced : ndarray of shape (n_samples, n_reduced), float32
            Unit rows.
        """
        check_is_fitted(self)
        X = normalise(validate_data(self, X, dtype=np.float32, reset=False, ensure_min_samples=0))
        return _project(self.pca_, X)

    def _min_samples(self, min_cluster_size: int) -> int:
        return self.min_samples or min_cluster_size

    def _density_clusters(self, X: np.ndarray, reduced: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(labels, GLOSH outlier scores) of HDBSCAN on `reduced`; with excess of mass and a
        `min_cohesion`, the selection skips clusters of `X` below it (`clustering.cohesive_selection`).
        Sets `min_cluster_size_` (`min_cluster_size`, or with None the size that follows the batch)."""
        size = self.min_cluster_size or AUTO_FLOOR
        if len(reduced) < max(size, 2):  # no cluster is possible
            self.min_cluster_size_ = size
            return np.full(len(reduced), -1, np.int64), np.zeros(len(reduced), np.float32)
        # The k-NN graph is built once: only the tree's condensing depends on the minimum size.
        # min_samples (the density estimate) stays that of the first pass.
        min_samples = self._min_samples(size)
        data = reduced.astype(np.float64) if len(reduced) <= self.graph_threshold else (
            mutual_reachability_tree(reduced, min_samples, self.n_neighbors)
        )
        labels, scores = self._select(X, data, size, min_samples)
        if self.min_cluster_size is None:
            resolved = self._resolve_size(labels)
            if resolved != size:
                size = resolved
                labels, scores = self._select(X, data, size, min_samples)
        self.min_cluster_size_ = size
        return labels, scores

    @staticmethod
    def _resolve_size(labels: np.ndarray) -> int:
        """The minimum cluster size that follows the batch: a share of the median size of the
        clusters a first pass at `AUTO_FLOOR` found (a generator's images form clusters of about
        that size, its output modes smaller ones), never below the floor."""
        sizes = np.bincount(labels[labels >= 0])
        sizes = sizes[sizes > 0]
        if len(sizes) == 0:
            return AUTO_FLOOR
        return max(AUTO_FLOOR, int(round(AUTO_SHARE * float(np.median(sizes)))))

    def _select(
        self, X: np.ndarray, data: np.ndarray, size: int, min_samples: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """HDBSCAN's (labels, outlier scores) at minimum cluster size `size`, on points (dense
        `data`) or on their precomputed mutual-reachability tree (sparse `data`)."""
        if not hasattr(data, "tocsr"):
            model = hdbscan.HDBSCAN(
                min_cluster_size=size,
                min_samples=min_samples,
                cluster_selection_method=self.cluster_selection_method,
                core_dist_n_jobs=1,
            ).fit(data)
        else:
            model = hdbscan.HDBSCAN(
                min_cluster_size=size,
                min_samples=1,  # the tree already holds mutual reachability distances
                metric="precomputed",
                cluster_selection_method=self.cluster_selection_method,
            ).fit(data)
        labels = model.labels_.astype(np.int64)
        if self.cluster_selection_method == "eom" and self.min_cohesion is not None:
            labels = cohesive_eom_labels(model.condensed_tree_.to_numpy(), X, self.min_cohesion)
        return labels, model.outlier_scores_.astype(np.float32)

    def _refine(self, reduced: np.ndarray, labels: np.ndarray, clock: _Clock) -> np.ndarray:
        rng = np.random.default_rng(self.random_state)
        labels = compact(labels)
        if self.split_evidence is not None:
            labels = refine.split_disagreeing(
                reduced, labels, self.split_evidence, self.min_cluster_size_, rng
            )
            clock.lap("split")
        if self.merge_evidence is not None:
            labels = compact(refine.merge_agreeing(reduced, labels, self.merge_evidence, rng))
            clock.lap("merge")
        if labels.max(initial=-1) < 0:
            return labels
        labels = place_by_pooled(reduced, labels, self.assign_mads)
        clock.lap("reassign")
        return labels

    def _drop_loose(self, X: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """Labels with the clusters less cohesive than `min_cohesion` turned to noise."""
        if self.min_cohesion is None:
            return labels
        labels = compact(labels)
        loose = np.r_[cohesion(X, labels) < self.min_cohesion, True]  # the last entry stands for noise
        return compact(np.where(loose[labels], -1, labels))

    def _split_loose(self, X: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """Labels with the clusters less cohesive than `split_cohesion` clustered again on their own
        (`clustering.loose_split`), by a clusterer with these parameters that does not recurse itself
        (nor absorb noise: `fit` does that once, into the final clusters)."""
        if self.split_cohesion is None or labels.max(initial=-1) < 0:
            return labels
        inner = clone(self).set_params(split_cohesion=None, absorb_noise=False)  # noise is absorbed once, after
        return split_loose_clusters(
            X, compact(labels), self.split_cohesion, self.min_cluster_size_, inner.fit_predict
        )

    def _one_group(self, X: np.ndarray, clock: _Clock) -> np.ndarray | None:
        """With no cluster found: labels of every point as one cluster in the input space, refined
        (split if asked, merge, re-assign), loose parts dropped; None if no cluster stays."""
        if self.min_cohesion is None or len(X) < self.min_cluster_size_:
            return None
        grouped = self._drop_loose(X, self._refine(X, np.zeros(len(X), np.int64), clock))
        clock.lap("one_group")
        return grouped if grouped.max(initial=-1) >= 0 else None

    def _set_clusters(self, X: np.ndarray, reduced: np.ndarray, labels: np.ndarray) -> None:
        n_clusters = labels.max(initial=-1) + 1
        self.labels_ = labels
        self.cluster_ids_ = np.arange(n_clusters, dtype=np.int64)
        self.centroids_ = pooled_centroids(X, labels, n_clusters)
        self.reduced_centroids_ = pooled_centroids(reduced, labels, n_clusters)
        if n_clusters == 0:
            self.bounds_ = self.typical_ = np.empty(0, np.float32)
            self.probabilities_ = np.zeros(len(labels), np.float32)
            return
        # Bounds come from the members HDBSCAN itself placed (as in refinement): members that
        # re-assignment added at the edge would otherwise loosen the bound run after run.
        core = np.where(self.hdbscan_labels_ >= 0, labels, -1)
        has_core = np.bincount(core[core >= 0], minlength=n_clusters) > 0
        core = np.where(has_core[np.maximum(labels, 0)], core, labels)
        self.bounds_, self.typical_ = acceptance_bounds(
            reduced, core, self.reduced_centroids_, self.assign_mads
        )
        sims = np.einsum("ij,ij->i", reduced, self.reduced_centroids_[np.maximum(labels, 0)])
        self.probabilities_ = np.where(labels >= 0, self._probability(sims, np.maximum(labels, 0)), 0.0)
        self.probabilities_ = self.probabilities_.astype(np.float32)

    def _probability(self, sims: np.ndarray, rows: np.ndarray) -> np.ndarray:
        bound, typical = self.bounds_[rows], self.typical_[rows]
        return np.clip((sims - bound) / np.maximum(typical - bound, 1e-6), 0.0, 1.0)

    def fit_predict(self, X: np.ndarray, y: None = None) -> np.ndarray:
        """`fit(X).labels_`."""
        return self.fit(X).labels_

    # ---- new points ---------------------------------------------------------------------------

    def assign(
        self, X: np.ndarray, max_distance: float | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Labels and probabilities of new points, without refitting.

        A point joins the cluster with the nearest pooled fingerprint when it is as close to it
        as the cluster's own members were (the calibrated bound), or, with `max_distance`, when
        its cosine distance to it (in the reduced space) is at most that; otherwise -1.

        Returns
        -------
        labels : ndarray of shape (n_samples,), int64
            The cluster's entry of `cluster_ids_`, or -1.
        probabilities : ndarray of shape (n_samples,), float32
            As `probabilities_`, for these points.
        """
        reduced = self.reduce(X)
        if len(self.cluster_ids_) == 0:
            return np.full(len(reduced), -1, np.int64), np.zeros(len(reduced), np.float32)
        bounds = self.bounds_ if max_distance is None else np.full_like(self.bounds_, 1.0 - max_distance)
        rows, sims = reassign(reduced, self.reduced_centroids_, bounds)
        labels = np.where(rows >= 0, self.cluster_ids_[np.maximum(rows, 0)], -1)
        probabilities = np.where(rows >= 0, self._probability(sims, np.maximum(rows, 0)), 0.0)
        return labels.astype(np.int64), probabilities.astype(np.float32)

    # ---- saving and restoring a fitted clusterer ----------------------------------------------

    def assignment_state(self) -> dict[str, np.ndarray]:
        """Everything this fitted clusterer holds, as plain arrays (np.savez-able, no pickle).

        `from_assignment_state` rebuilds from them a clusterer with the same parameters and learned
        state, which assigns exactly as this one. `cluster_ids` may be rewritten (to stable ids,
        say) before saving: `assign` returns whatever it holds.
        """
        check_is_fitted(self)
        pca = self.pca_
        return {
            "params": np.array(json.dumps(self.get_params(), sort_keys=True)),
            "timings": np.array(json.dumps(self.timings_, sort_keys=True)),
            "n_features_in": np.array(self.n_features_in_, np.int64),
            "pca_mean": np.zeros(0) if pca is None else np.asarray(pca.mean_, np.float64),
            "pca_components": np.zeros((0, 0)) if pca is None else np.asarray(pca.components_, np.float64),
            "labels": self.labels_,
            "probabilities": self.probabilities_,
            "outlier_scores": self.outlier_scores_,
            "hdbscan_labels": self.hdbscan_labels_,
            "centroids": self.centroids_,
            "reduced_centroids": self.reduced_centroids_,
            "bounds": self.bounds_,
            "typical": self.typical_,
            "cluster_ids": self.cluster_ids_,
        }

    @classmethod
    def from_assignment_state(cls, state: dict[str, np.ndarray]) -> OriginClusterer:
        """The fitted clusterer that `assignment_state` described (its PCA as a `LinearProjection`)."""
        missing = [key for key in ("params", "timings", *STATE_ARRAYS) if key not in state]
        if missing:
            raise ValueError(f"assignment state lacks {missing}")
        clusterer = cls(**json.loads(str(state["params"])))
        has_pca = np.asarray(state["pca_components"]).size > 0
        clusterer.pca_ = LinearProjection(state["pca_mean"], state["pca_components"]) if has_pca else None
        clusterer.n_features_in_ = int(state["n_features_in"])
        clusterer.timings_ = json.loads(str(state["timings"]))
        for name, dtype in (("labels", np.int64), ("hdbscan_labels", np.int64), ("cluster_ids", np.int64),
                            ("probabilities", np.float32), ("outlier_scores", np.float32), ("centroids", np.float32),
                            ("reduced_centroids", np.float32), ("bounds", np.float32), ("typical", np.float32)):
            setattr(clusterer, f"{name}_", np.asarray(state[name], dtype))
        return clusterer
