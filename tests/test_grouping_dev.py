"""bench.grouping_dev: its rows count seed pairs told apart and measure what OriginClusterer found."""
from __future__ import annotations

import numpy as np

from bench.grouping_dev import measure, zoo_cases
from clustering.synthetic import make_fingerprints


def test_measure_counts_seed_pairs_and_reports_quality():
    data = make_fingerprints(n_origins=8, images_per_origin=60, n_real=60, dim=32, noise=0.5,
                             seed_distance=1.5, seed=3)
    case = ("pairs", data.vectors, data.origins, [(1, 0), (3, 2), (5, 4), (7, 6)])
    row = measure({}, case)
    assert row["set"] == "pairs" and row["true"] == 8
    assert row["pairs_told_apart"] == "4/4" and min(row["pair_ari"]) >= 0.8
    assert row["ari"] > 0.9 and row["real_in_generated"] <= 0.05


def test_zoo_cases_keep_never_seen_members_and_subsample(tiny_zoo, tmp_path):
    generators = tiny_zoo.generators
    codes = {m: i for i, m in enumerate(sorted(generators.member_id))}
    unseen = {codes[m] for m, split in zip(generators.member_id, generators.split) if split in ("unseen_seed", "unseen_arch")}
    whole = {name: truth for name, _, truth, _ in zoo_cases(tiny_zoo.root, tmp_path)}
    cases = list(zoo_cases(tiny_zoo.root, tmp_path, never_seen=True, per_member=1))
    assert [name.split()[-1] for name, *_ in cases] == ["learned", "spectral", "fused"]
    for name, vectors, truth, pairs in cases:
        assert "never-seen 1 per member" in name and pairs == [] and len(vectors) == len(truth)
        assert set(truth[truth >= 0]) == unseen and np.bincount(truth[truth >= 0]).max() == 1
        assert np.sum(truth < 0) == 10 < np.sum(next(iter(whole.values())) < 0)
