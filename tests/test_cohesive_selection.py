"""Cohesion-bounded excess-of-mass selection: hdbscan's own when nothing is loose, children instead of a loose parent."""
from __future__ import annotations

import hdbscan
import numpy as np

from clustering.cohesive_selection import cohesion, cohesive_eom_labels
from clustering.origin import OriginClusterer
from clustering.synthetic import make_fingerprints
from clustering.vectors import normalise

TREE_DTYPE = [("parent", np.intp), ("child", np.intp), ("lambda_val", float), ("child_size", np.intp)]


def test_without_a_binding_bound_it_is_hdbscans_selection():
    for seed in range(3):
        data = make_fingerprints(n_origins=10, images_per_origin=40, n_real=100, dim=16, noise=0.9, seed=seed)
        model = hdbscan.HDBSCAN(min_cluster_size=15, min_samples=5).fit(data.vectors.astype(np.float64))
        labels = cohesive_eom_labels(model.condensed_tree_.to_numpy(), data.vectors, min_cohesion=-1.0)
        assert labels.max() >= 1
        np.testing.assert_array_equal(labels, model.labels_)


def _two_level_tree() -> tuple[np.ndarray, np.ndarray]:
    """Eight points; the root (8) splits into A (9: points 0-3) and B (10: points 4-7); A splits late
    into A1 (11: points 0, 1) and A2 (12: points 2, 3), so excess of mass prefers A. A1's points lie
    along e1, A2's along e2, B's along e3: A1, A2 and B are cohesive (1.0), A is not (1/3)."""
    rows = [(8, 9, 1.0, 4), (8, 10, 1.0, 4), (9, 11, 9.0, 2), (9, 12, 9.0, 2)]
    rows += [(11, 0, 10.0, 1), (11, 1, 10.0, 1), (12, 2, 10.0, 1), (12, 3, 10.0, 1)]
    rows += [(10, point, 10.0, 1) for point in range(4, 8)]
    X = np.eye(3)[[0, 0, 1, 1, 2, 2, 2, 2]]
    return np.array(rows, dtype=TREE_DTYPE), X


def test_a_loose_parent_gives_way_to_its_cohesive_children():
    tree, X = _two_level_tree()
    np.testing.assert_array_equal(cohesive_eom_labels(tree, X, min_cohesion=-1.0), [0, 0, 0, 0, 1, 1, 1, 1])
    np.testing.assert_array_equal(cohesive_eom_labels(tree, X, min_cohesion=0.5), [1, 1, 2, 2, 0, 0, 0, 0])
    # Above every cluster's cohesion nothing is selectable: all noise.
    np.testing.assert_array_equal(cohesive_eom_labels(tree, X, min_cohesion=1.5), [-1] * 8)


def test_points_that_leave_a_selected_cluster_early_still_belong_to_it():
    tree, X = _two_level_tree()
    # Point 4 drops out of B before B ends: it is B's all the same, as in hdbscan's labelling.
    tree["lambda_val"][tree["child"] == 4] = 2.0
    np.testing.assert_array_equal(cohesive_eom_labels(tree, X, min_cohesion=0.5), [1, 1, 2, 2, 0, 0, 0, 0])


def test_an_empty_tree_is_all_noise():
    np.testing.assert_array_equal(cohesive_eom_labels(np.array([], dtype=TREE_DTYPE), np.eye(3), 0.3), [-1, -1, -1])


def test_origin_clusterer_keeps_the_cohesive_parts_of_a_loose_cluster():
    # Designs of three origins each: hdbscan's own selection keeps one cluster spanning designs,
    # too loose to be an origin; dropping it left most images as noise.
    data = make_fingerprints(n_origins=8, images_per_origin=40, n_real=100, dim=16, origins_per_design=3,
                             seed_distance=1.5, noise=0.8, seed=0)
    clusterer = OriginClusterer(min_cluster_size=20).fit(data.vectors)
    X = normalise(data.vectors)
    assert (cohesion(X, clusterer.hdbscan_labels_) >= clusterer.min_cohesion).all()

    plain = hdbscan.HDBSCAN(min_cluster_size=20, min_samples=5).fit(clusterer.reduce(data.vectors).astype(np.float64)).labels_
    loose = np.r_[cohesion(X, plain) < clusterer.min_cohesion, True]
    plain_then_dropped = np.where(loose[plain], -1, plain)
    g = data.generated
    assert (clusterer.labels_[g] < 0).mean() < (plain_then_dropped[g] < 0).mean() - 0.2
    assert len(clusterer.cluster_ids_) > len(np.unique(plain_then_dropped[plain_then_dropped >= 0]))
