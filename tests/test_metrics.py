"""Clustering and open-set metrics against small cases computed by hand."""
from __future__ import annotations

import numpy as np
import pytest

from clustering import metrics

# Five points: true classes {0,1,2} and {3,4}; predicted {0,1}, {2,3}, point 4 noise.
TRUE = np.array([0, 0, 0, 1, 1])
PRED = np.array([0, 0, 1, 1, -1])


def test_noise_becomes_singletons():
    labels = metrics.noise_as_singletons(np.array([-1, 0, -1, 2]))
    assert labels[1] == 0 and labels[3] == 2
    assert len(set(labels)) == 4


def test_bcubed_by_hand():
    # precision: 1, 1, 1/2, 1/2, 1 -> 4/5; recall: 2/3, 2/3, 1/3, 1/2, 1/2 -> 8/15.
    precision, recall, f1 = metrics.bcubed(TRUE, PRED)
    assert precision == pytest.approx(0.8)
    assert recall == pytest.approx(8 / 15)
    assert f1 == pytest.approx(2 * 0.8 * (8 / 15) / (0.8 + 8 / 15))


def test_ari_counts_noise_as_singletons():
    # Pair counts: 1 agreeing pair; row pairs 3 + 1 = 4; column pairs 1 + 1 = 2; 10 pairs in all.
    expected = (1 - 4 * 2 / 10) / ((4 + 2) / 2 - 4 * 2 / 10)
    assert metrics.adjusted_rand(TRUE, PRED) == pytest.approx(expected)


def test_purity_noise_fraction_and_report():
    assert metrics.purity(TRUE, PRED) == pytest.approx(3 / 4)
    assert metrics.noise_fraction(PRED) == pytest.approx(0.2)
    report = metrics.clustering_report(TRUE, PRED)
    assert report["clusters_found"] == 2 and report["clusters_true"] == 2
    assert np.isnan(metrics.purity(TRUE, -np.ones(5, int)))


def test_perfect_clustering_scores_one_under_relabelling():
    report = metrics.clustering_report(TRUE, np.array([7, 7, 7, 3, 3]))
    for key in ("ari", "nmi", "purity", "bcubed_precision", "bcubed_recall", "bcubed_f1"):
        assert report[key] == pytest.approx(1.0)
    assert report["noise_fraction"] == 0.0


def test_all_noise_has_full_precision_and_low_recall():
    precision, recall, _ = metrics.bcubed(TRUE, -np.ones(5, int))
    assert precision == 1.0
    assert recall == pytest.approx((3 * (1 / 3) + 2 * (1 / 2)) / 5)


def test_closed_set_accuracy_counts_unknown_as_wrong():
    assert metrics.closed_set_accuracy(["a", "b", "a", "b"], ["a", "b", None, "a"]) == 0.5


def test_open_set_auroc_by_hand():
    # Known above unknown in 3 of the 4 pairs.
    assert metrics.open_set_auroc([0.9, 0.4], [0.5, 0.1]) == pytest.approx(0.75)


def test_oscr_by_hand():
    # Thresholds 0.9, 0.8, 0.6, 0.4, 0.3 give (FPR, CCR) = (0, 1/3), (0, 1/3), (1/2, 1/3),
    # (1/2, 2/3), (1, 2/3): area 1/2 * 1/3 + 1/2 * 2/3 = 1/2.
    score = metrics.oscr([0.9, 0.8, 0.4], [True, False, True], [0.6, 0.3])
    assert score == pytest.approx(0.5)


def test_oscr_extremes():
    assert metrics.oscr([0.9, 0.8], [True, True], [0.1, 0.2]) == pytest.approx(1.0)
    assert metrics.oscr([0.1, 0.2], [True, True], [0.8, 0.9]) == pytest.approx(0.0)
    # Perfect separation but half the known images misnamed: the curve tops out at 1/2.
    assert metrics.oscr([0.9, 0.8], [True, False], [0.1]) == pytest.approx(0.5)


def test_real_in_generated_clusters_ignores_clusters_of_real_photos():
    pred = np.array([0, 0, 0, 1, 1, 1, -1, 0])
    is_generated = np.array([True, True, False, False, False, True, False, True])
    # Cluster 0 is mostly generated (one real inside); cluster 1 mostly real; one real is noise.
    assert metrics.real_in_generated_clusters(pred, is_generated) == pytest.approx(1 / 4)
    assert np.isnan(metrics.real_in_generated_clusters(pred, np.ones(8, bool)))
