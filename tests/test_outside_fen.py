"""FEN-style leave-one-family-out on a tiny external-style corpus: each fold's net really trains and
scores the rows it is judged on, and nothing else."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from bench import outside_part
from bench.baselines.fen import FenConfig
from bench.outside_fen import fen_fold_fingerprints
from external_style import tiny_external_corpus

TINY = FenConfig(layers=3, channels=8, hidden_dim=16, epochs=1, steps_per_epoch=3, batch_size=8, crop=32)


def test_each_fold_trains_and_scores_exactly_the_rows_it_is_judged_on(tmp_path: Path) -> None:
    images, generators = tiny_external_corpus(tmp_path)
    folds = list(outside_part.folds(images))
    prints = fen_fold_fingerprints(images, generators, folds, TINY, print)
    fake = images["is_fake"].to_numpy()
    for held, p, train, test in folds:
        vectors, scores = prints.fold(held, p)
        judged = (images["fold"].to_numpy() == p) | np.isin(np.arange(len(images)), train[~fake[train]])
        assert np.isfinite(scores[test]).all() and ((scores[test] >= 0) & (scores[test] <= 1)).all()
        assert np.isfinite(scores[judged]).all() and np.isnan(scores[~judged]).all()
        assert np.allclose(np.linalg.norm(vectors[test], axis=1), 1, atol=1e-4)
    # Trained per fold: the two photograph folds of one held-out family have different nets.
    a, b = prints.fold("span", 0)[1], prints.fold("span", 1)[1]
    both = np.isfinite(a) & np.isfinite(b)
    assert both.any() and not np.allclose(a[both], b[both])
    # Every table takes it: detection by its own head only; grouping and attribution per photograph fold.
    detection = outside_part.detection_table(images, {outside_part.FEN: prints})
    assert len(detection) == 2 * len(outside_part.VIEWS) and detection["auc"].between(0, 1).all()
    grouping = outside_part.grouping_table(images, {outside_part.FEN: prints})
    assert len(grouping) == 2 * len(outside_part.VIEWS) and grouping["ari"].between(-1, 1).all()
    attribution = outside_part.attribution_table(images, {outside_part.FEN: prints}, {outside_part.FEN: None})
    assert attribution["closed_set_accuracy"].between(0, 1).all()
