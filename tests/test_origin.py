"""OriginClusterer: grouping, the k-NN graph path against exact HDBSCAN, assignment of new points."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse import csgraph

from clustering import metrics
from clustering.graph import mutual_reachability_tree
from clustering.origin import OriginClusterer, cohesion
from clustering.synthetic import REAL, make_fingerprints


@pytest.fixture(scope="module")
def data():
    # Pairs of origins share a design (seed_distance apart), as seeds of one architecture do.
    return make_fingerprints(n_origins=12, images_per_origin=60, n_real=300, dim=32, noise=0.9,
                             seed_distance=1.0, seed=1)


@pytest.fixture(scope="module")
def fitted(data):
    # Origins in pairs are what pooled refinement and its split step are for (off by default: zoo
    # generators' output modes are not).
    return OriginClusterer(min_cluster_size=10, refine=True, split_evidence=4.0).fit(data.vectors)


def test_groups_generated_images_and_leaves_real_ones_out(data, fitted):
    g = data.generated
    report = metrics.clustering_report(data.origins[g], fitted.labels_[g])
    assert report["ari"] > 0.85 and report["bcubed_f1"] > 0.85
    assert report["noise_fraction"] < 0.15
    assert (fitted.labels_[~g] >= 0).mean() <= 0.05


def test_learned_state_is_consistent(data, fitted):
    n, k = len(data.vectors), len(fitted.cluster_ids_)
    assert fitted.labels_.shape == fitted.probabilities_.shape == fitted.outlier_scores_.shape == (n,)
    assert fitted.centroids_.shape == (k, data.vectors.shape[1]) and fitted.centroids_.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(fitted.centroids_, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(np.unique(fitted.labels_[fitted.labels_ >= 0]), fitted.cluster_ids_)
    assert (fitted.probabilities_[fitted.labels_ < 0] == 0).all()
    assert ((fitted.probabilities_ >= 0) & (fitted.probabilities_ <= 1)).all()
    assert np.isfinite(fitted.outlier_scores_).all()
    sizes = np.bincount(fitted.labels_[fitted.labels_ >= 0])
    assert (np.diff(sizes) <= 0).all()  # numbered by decreasing size


def test_absorbing_noise_places_hdbscan_noise_and_moves_no_clustered_point():
    # Many origins close together: HDBSCAN leaves a large share of their images as noise.
    data = make_fingerprints(n_origins=60, images_per_origin=40, n_real=300, dim=64, noise=1.1,
                             seed_distance=1.0, seed=3)
    g = data.generated
    plain = OriginClusterer().fit(data.vectors)
    absorbed = OriginClusterer(absorb_noise=True).fit(data.vectors)
    assert metrics.noise_fraction(plain.labels_[g]) > 0.15
    assert metrics.noise_fraction(absorbed.labels_[g]) < 0.5 * metrics.noise_fraction(plain.labels_[g])
    assert metrics.adjusted_rand(data.origins[g], absorbed.labels_[g]) > metrics.adjusted_rand(
        data.origins[g], plain.labels_[g]
    ) + 0.05
    clustered = plain.labels_ >= 0
    assert metrics.adjusted_rand(plain.labels_[clustered], absorbed.labels_[clustered]) == 1.0
    # A photograph carries no origin's fingerprint: few are as close to a pooled one as its members.
    assert (absorbed.labels_[~g] >= 0).mean() <= 0.02
    assert "absorb_noise" in absorbed.timings_


def test_refinement_recovers_noise_hdbscan_left(data):
    g = data.generated
    raw = OriginClusterer(min_cluster_size=10, refine=False).fit(data.vectors)
    refined = OriginClusterer(min_cluster_size=10, refine=True).fit(data.vectors)
    assert metrics.noise_fraction(refined.labels_[g]) < metrics.noise_fraction(raw.labels_[g])
    assert metrics.bcubed(data.origins[g], refined.labels_[g])[2] >= metrics.bcubed(
        data.origins[g], raw.labels_[g]
    )[2]


def test_assign_places_new_points_of_known_origins_and_rejects_others(data, fitted):
    new = make_fingerprints(n_origins=12, images_per_origin=10, n_real=100, dim=32, noise=0.9,
                            seed_distance=1.0, seed=1)
    # Same seed = same origin centres, fresh images (the generator draws the same centres first).
    labels, probabilities = fitted.assign(new.vectors[: len(new.vectors)])
    g = new.generated
    fitted_of_origin = {
        o: np.bincount(fitted.labels_[(data.origins == o) & (fitted.labels_ >= 0)]).argmax()
        for o in np.unique(data.origins[data.generated])
    }
    expected = np.array([fitted_of_origin[o] for o in new.origins[g]])
    assert (labels[g] == expected).mean() > 0.85
    assert (labels[~g] >= 0).mean() <= 0.05
    assert ((probabilities > 0) <= (labels >= 0)).all()
    loose, _ = fitted.assign(new.vectors, max_distance=2.0)
    assert (loose >= 0).all()


def test_graph_path_matches_exact_hdbscan():
    data = make_fingerprints(n_origins=20, images_per_origin=120, n_real=600, dim=32, noise=0.9, seed=2)
    exact = OriginClusterer(min_cluster_size=15, refine=False, graph_threshold=10**9).fit(data.vectors)
    graph = OriginClusterer(min_cluster_size=15, refine=False, graph_threshold=0).fit(data.vectors)
    assert len(data.vectors) > 2_500
    same = metrics.adjusted_rand(metrics.noise_as_singletons(exact.labels_), graph.labels_)
    assert same > 0.97


def test_mutual_reachability_tree_is_a_connected_spanning_tree():
    rng = np.random.default_rng(0)
    # Two far-apart blobs and exact duplicates: the k-NN graph alone is disconnected and has
    # zero distances; the tree must still span everything with positive weights.
    blob = rng.standard_normal((40, 8)) * 0.01
    x = np.vstack([blob + 5, blob - 5, np.repeat(blob[:1] + 5, 10, axis=0)]).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    tree = mutual_reachability_tree(x, min_samples=3, n_neighbors=5)
    assert sp.issparse(tree) and (tree != tree.T).nnz == 0
    assert tree.nnz == 2 * (len(x) - 1) and (tree.data > 0).all()
    assert csgraph.connected_components(tree, directed=False)[0] == 1


def test_fit_predict_and_tiny_inputs():
    x = make_fingerprints(n_origins=2, images_per_origin=30, n_real=0, dim=16, noise=0.5,
                          origins_per_design=1).vectors
    labels = OriginClusterer(min_cluster_size=5).fit_predict(x)
    assert len(set(labels) - {-1}) == 2
    nothing = OriginClusterer(min_cluster_size=50).fit(x[:20])
    assert (nothing.labels_ == -1).all() and nothing.centroids_.shape == (0, 16)
    labels, probabilities = nothing.assign(x[:3])
    assert (labels == -1).all() and (probabilities == 0).all()
    single = OriginClusterer().fit(x[:1])
    assert single.labels_.tolist() == [-1] and single.outlier_scores_.shape == (1,)


def test_assignment_state_round_trip_through_npz(data, fitted, tmp_path):
    state = fitted.assignment_state()
    state["cluster_ids"] = state["cluster_ids"] + 100  # e.g. stable ids
    np.savez(tmp_path / "state.npz", **state)
    with np.load(tmp_path / "state.npz", allow_pickle=False) as saved:
        restored = OriginClusterer.from_assignment_state(dict(saved))
    labels, probabilities = restored.assign(data.vectors)
    expected, expected_p = fitted.assign(data.vectors)
    np.testing.assert_array_equal(labels, np.where(expected >= 0, expected + 100, -1))
    np.testing.assert_allclose(probabilities, expected_p, atol=1e-5)


def one_generator_and_photos(n_generated: int, n_real: int, dim: int, seed: int = 1):
    """`n_generated` images of one generator and `n_real` photographs (no shared fingerprint)."""
    data = make_fingerprints(n_origins=1, images_per_origin=max(n_generated, 2), n_real=max(n_real, 1), dim=dim,
                             noise=0.9, seed=seed)
    generated, real = np.flatnonzero(data.origins != REAL)[:n_generated], np.flatnonzero(data.origins == REAL)[:n_real]
    rows = np.random.default_rng(seed).permutation(np.r_[generated, real])
    return data.vectors[rows], data.origins[rows] != REAL


@pytest.mark.parametrize("n_real", [0, 8])
def test_one_generators_batch_is_one_cluster(n_real):
    # 128-d, so the usual path reduces by PCA first; HDBSCAN alone finds no cluster here.
    x, generated = one_generator_and_photos(60, n_real, dim=128)
    fitted = OriginClusterer(min_cluster_size=10).fit(x)
    assert len(fitted.cluster_ids_) == 1
    assert (fitted.labels_[generated] == 0).mean() >= 0.95
    assert (fitted.labels_[~generated] == -1).all()
    more, _ = one_generator_and_photos(10, 0, dim=128, seed=1)  # the same generator (same seed): new images
    assert (fitted.assign(more)[0] == 0).mean() >= 0.8
    photos, _ = one_generator_and_photos(0, 10, dim=128, seed=3)
    assert (fitted.assign(photos)[0] == -1).all()


@pytest.mark.parametrize(("n_generated", "dim"), [(0, 32), (0, 128), (60, 128)])
def test_photographs_from_many_cameras_are_not_made_a_cluster(n_generated, dim):
    # Without the cohesion check, the 32-d set of photographs alone became one cluster, and beside
    # one generator (128-d) 90 % of them made a second cluster.
    x, generated = one_generator_and_photos(n_generated, 300 if n_generated == 0 else 40, dim=dim)
    fitted = OriginClusterer(min_cluster_size=10).fit(x)
    assert (fitted.labels_[~generated] == -1).mean() >= 0.95
    assert len(fitted.cluster_ids_) == (1 if n_generated else 0)


def test_cohesion_is_the_mean_similarity_between_two_members():
    x = np.array([[1, 0], [1, 0], [0, 1], [0.6, 0.8], [1, 0]], np.float32)
    labels = np.array([0, 0, 0, 1, -1])
    # cluster 0: pairs (a, b) 1, (a, c) 0, (b, c) 0; cluster 1 has one member
    np.testing.assert_allclose(cohesion(x, labels), [1 / 3, 0.0])
