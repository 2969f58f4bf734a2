"""bench.grouping_dev: its rows count seed pairs told apart and measure what OriginClusterer found."""
from __future__ import annotations

from bench.grouping_dev import measure
from clustering.synthetic import make_fingerprints


def test_measure_counts_seed_pairs_and_reports_quality():
    data = make_fingerprints(n_origins=8, images_per_origin=60, n_real=60, dim=32, noise=0.5,
                             seed_distance=1.5, seed=3)
    case = ("pairs", data.vectors, data.origins, [(1, 0), (3, 2), (5, 4), (7, 6)])
    row = measure({}, case)
    assert row["set"] == "pairs" and row["true"] == 8
    assert row["pairs_told_apart"] == "4/4" and min(row["pair_ari"]) >= 0.8
    assert row["ari"] > 0.9 and row["real_in_generated"] <= 0.05
