"""Loose clusters clustered again in their own projection (clustering.loose_split)."""
from __future__ import annotations

import numpy as np

from clustering.loose_split import split_loose_clusters
from clustering.metrics import adjusted_rand
from clustering.origin import OriginClusterer
from clustering.vectors import normalise


def _origins(directions: list[np.ndarray], per_origin: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    points = [d / np.linalg.norm(d) + 0.08 * rng.standard_normal((per_origin, len(d))) for d in directions]
    return normalise(np.concatenate(points)), np.repeat(np.arange(len(directions)), per_origin)


def test_two_origins_merged_in_the_batch_projection_are_split_in_their_own():
    # Four far-apart origins take the batch's 4 components; two origins at cosine 0.34 differ along
    # a direction those components miss, so they fall into one cluster (cohesion about 0.64).
    axes = np.eye(16)
    X, truth = _origins([axes[0], axes[1], axes[4], axes[5], axes[2] + 0.7 * axes[3], axes[2] - 0.7 * axes[3]], 60)
    merged = OriginClusterer(min_cluster_size=15, n_components=4, split_cohesion=None).fit_predict(X)
    assert merged.max() + 1 == 5
    assert len(np.unique(merged[truth >= 4])) == 1

    split = OriginClusterer(min_cluster_size=15, n_components=4).fit_predict(X)
    assert split.max() + 1 == 6
    assert adjusted_rand(truth, split) == 1.0


def _split_off_lowest_axis(calls: list[int]):
    """A stand-in inner clusterer: the points whose largest coordinate is the lowest axis present
    form part 0, the rest part 1; the very first point of the first call is left as noise."""
    def cluster(rows: np.ndarray) -> np.ndarray:
        axis = np.argmax(rows[:, :3], axis=1)
        labels = (axis != axis.min()).astype(np.int64)
        if not calls:
            labels[0] = -1
        calls.append(len(rows))
        return labels
    return cluster


def test_loose_parts_are_split_again_and_the_inner_noise_joins_the_nearest_part():
    X, truth = _origins(list(np.eye(8)[:3]), 10)
    calls: list[int] = []
    labels = split_loose_clusters(X, np.zeros(30, np.int64), below=0.7, min_size=5, cluster=_split_off_lowest_axis(calls))
    # The whole (cohesion about 0.33) is split, then its loose part of two origins; each origin alone is cohesive.
    assert calls == [30, 20]
    assert adjusted_rand(truth, labels) == 1.0
    assert sorted(np.unique(labels)) == [0, 1, 2]
    assert labels[0] == 0  # the inner pass's noise point joined its own origin's part, which keeps the outer number


def test_cohesive_small_and_noise_points_are_left_alone():
    X, _ = _origins(list(np.eye(8)[:3]), 10)
    labels = np.r_[np.zeros(10, np.int64), -np.ones(20, np.int64)]  # one cohesive cluster, the rest noise
    calls: list[int] = []
    assert np.array_equal(split_loose_clusters(X, labels, 0.7, 5, _split_off_lowest_axis(calls)), labels)
    loose_but_small = np.zeros(30, np.int64)
    assert np.array_equal(split_loose_clusters(X, loose_but_small, 0.7, 16, _split_off_lowest_axis(calls)), loose_but_small)
    assert calls == []
