"""OriginClusterer's batch-level options: a minimum cluster size that follows the batch, and the
whitened-scatter split telling apart two origins of one design (a seed pair)."""
from __future__ import annotations

import numpy as np
import pytest

from clustering import metrics
from clustering.origin import AUTO_FLOOR, OriginClusterer
from clustering.synthetic import make_fingerprints


def _origins(per_origin: int):
    return make_fingerprints(n_origins=12, images_per_origin=per_origin, n_real=0, dim=16, noise=0.5,
                             origins_per_design=1, seed=0)


def test_minimum_cluster_size_follows_the_batch():
    small, large = _origins(10), _origins(200)
    fitted = {name: OriginClusterer(min_cluster_size=None).fit(d.vectors) for name, d in
              (("small", small), ("large", large))}
    assert fitted["small"].min_cluster_size_ == AUTO_FLOOR
    assert fitted["large"].min_cluster_size_ > 5 * AUTO_FLOOR
    # Ten images per origin: the fixed default of 10 loses the origins drawn smaller than that.
    fixed = OriginClusterer(min_cluster_size=10).fit_predict(small.vectors)
    auto = fitted["small"].labels_
    assert auto.max() + 1 > fixed.max() + 1
    assert metrics.adjusted_rand(small.origins, auto) > metrics.adjusted_rand(small.origins, fixed)
    assert metrics.adjusted_rand(large.origins, fitted["large"].labels_) > 0.8


def test_a_fixed_minimum_cluster_size_is_kept():
    assert OriginClusterer(min_cluster_size=12).fit(_origins(30).vectors).min_cluster_size_ == 12


@pytest.fixture(scope="module")
def seed_pairs():
    # Eight designs, two origins (seeds) each, and a few real images with no origin.
    return make_fingerprints(n_origins=16, images_per_origin=100, n_real=100, dim=64, noise=0.9,
                             seed_distance=1.0, seed=1)


def _pairs_told_apart(data, labels) -> int:
    designs = np.where(data.origins >= 0, data.origins // 2, -1)
    return sum(
        metrics.adjusted_rand(data.origins[designs == d], labels[designs == d]) >= 0.8
        for d in range(designs.max() + 1)
    )


def test_whitened_split_tells_seed_pairs_apart(seed_pairs):
    plain = OriginClusterer().fit_predict(seed_pairs.vectors)
    split = OriginClusterer(split_excess=3.0).fit_predict(seed_pairs.vectors)
    assert _pairs_told_apart(seed_pairs, plain) < 8
    assert _pairs_told_apart(seed_pairs, split) == 8
    generated = seed_pairs.generated
    assert metrics.adjusted_rand(seed_pairs.origins[generated], split[generated]) > 0.95
    assert metrics.real_in_generated_clusters(split, generated) <= 0.02


def test_whitened_split_is_deterministic_and_leaves_single_origins(seed_pairs):
    single = _origins(60)
    plain = OriginClusterer().fit_predict(single.vectors)
    np.testing.assert_array_equal(OriginClusterer(split_excess=3.0).fit_predict(single.vectors), plain)
    first = OriginClusterer(split_excess=3.0).fit_predict(seed_pairs.vectors)
    np.testing.assert_array_equal(OriginClusterer(split_excess=3.0).fit_predict(seed_pairs.vectors), first)
