"""The whitened-scatter split: splits two origins held in one cluster, leaves single origins whole,
even when every origin has output modes along shared (content) directions."""
import numpy as np
from sklearn.metrics import adjusted_rand_score

from clustering.pooled import compact
from clustering.vectors import normalise
from clustering.whitened_split import held_out_excess, split_excess_scatter, whitening

DIM = 16


def _origins(n_origins: int, per_origin: int, rng: np.random.Generator, modes: float = 0.0):
    """Unit vectors around random centres; with `modes`, each image also sits at +-modes along one
    content direction shared by every origin (a generator's images falling in two output modes)."""
    centres = rng.standard_normal((n_origins, DIM)) * 2.0
    content = np.eye(DIM)[0]
    truth = np.repeat(np.arange(n_origins), per_origin)
    mode = rng.choice([-1.0, 1.0], len(truth))[:, None] * modes * content
    x = centres[truth] + mode + rng.standard_normal((len(truth), DIM)) * 0.5
    return normalise(x), truth


def test_splits_a_cluster_holding_two_origins():
    rng = np.random.default_rng(0)
    x, truth = _origins(12, 80, rng)
    merged = compact(np.where(truth == 1, 0, truth))  # origins 0 and 1 in one cluster
    labels = split_excess_scatter(x, merged, 3.0, 10, np.random.default_rng(1))
    assert labels.max() + 1 == 12
    assert adjusted_rand_score(truth, labels) > 0.95


def test_leaves_single_origins_whole():
    rng = np.random.default_rng(2)
    x, truth = _origins(8, 80, rng)
    labels = split_excess_scatter(x, truth, 3.0, 10, np.random.default_rng(3))
    np.testing.assert_array_equal(labels, truth)


def test_content_modes_shared_by_all_origins_are_not_split():
    # Every origin bimodal along the same direction: plain bimodality tests cut each in two; the
    # whitened spread is typical, so nothing splits.
    rng = np.random.default_rng(4)
    x, truth = _origins(8, 80, rng, modes=1.5)
    labels = split_excess_scatter(x, truth, 3.0, 10, np.random.default_rng(5))
    np.testing.assert_array_equal(labels, truth)


def test_noise_and_whitening_without_two_clusters():
    rng = np.random.default_rng(6)
    x, truth = _origins(3, 60, rng)
    labels = np.where(truth == 2, -1, 0)
    assert whitening(x, labels) is None
    np.testing.assert_array_equal(split_excess_scatter(x, labels, 3.0, 10, rng), labels)


def test_held_out_excess_is_about_one_for_white_points():
    z = np.random.default_rng(7).standard_normal((1000, DIM))
    assert 0.8 < held_out_excess(z, np.random.default_rng(8)) < 1.3
