"""The verdict calibration: its thresholds hold on held-out reals, its out-of-distribution score, its file."""
from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from fingerprinting.calibration import GENERATED, REAL, UNSURE, VerdictCalibrator, sidecar_path, upper_quantile_bound
from fingerprinting.fingerprinter import verdict_calibrator
from fingerprinting.models import DEFAULT_CHECKPOINT, load_fingerprinter, load_learned

DIM = 16


def _photos(rng: np.random.Generator, photos: int, crops: int, centre: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Synthetic 'camera photographs': per photo a score offset and a fingerprint centre, crops scattered around both.

    Scores are logistic of a photo effect plus crop noise (photos differ, as real ones do); vectors
    are unit vectors near one region of the sphere (``centre``).
    """
    centre = np.eye(DIM)[0] if centre is None else centre
    effect = rng.normal(-3.0, 1.0, photos)
    logits = effect[:, None] + rng.normal(0, 1.0, (photos, crops))
    photo_centres = centre + 0.1 * rng.normal(size=(photos, DIM))
    vectors = photo_centres[:, None, :] + 0.03 * rng.normal(size=(photos, crops, DIM))
    vectors /= np.linalg.norm(vectors, axis=2, keepdims=True)
    groups = np.repeat(np.arange(photos), crops)
    return 1 / (1 + np.exp(-logits.ravel())), vectors.reshape(-1, DIM).astype(np.float32), groups


def test_generated_threshold_holds_the_false_positive_rate_on_held_out_reals() -> None:
    rng = np.random.default_rng(0)
    scores, vectors, groups = _photos(rng, photos=40, crops=30)
    calibrator = VerdictCalibrator(target_fpr=0.01).fit(scores, vectors, groups)
    held_scores, held_vectors, _ = _photos(rng, photos=400, crops=30)
    verdicts = calibrator.predict(held_scores, held_vectors)
    assert (verdicts == GENERATED).mean() <= 0.01
    assert calibrator.real_threshold_ < calibrator.generated_threshold_
    assert (verdicts == REAL).mean() > 0.5  # the lower threshold still calls most reals real
    # Every calibration photograph keeps at most the target share of its crops above the threshold.
    for group in np.unique(groups):
        assert (scores[groups == group] > calibrator.generated_threshold_).mean() <= 0.01


def test_upper_quantile_bound_is_conservative_and_falls_back_to_the_maximum() -> None:
    values = np.random.default_rng(1).uniform(size=2000)
    bound = upper_quantile_bound(values, 0.99, 0.95)
    assert np.quantile(values, 0.99) <= bound <= values.max()
    few = values[:50]  # too few for a 95 % bound on the 99th percentile
    assert upper_quantile_bound(few, 0.99, 0.95) == few.max()


def test_out_of_distribution_points_are_flagged_and_unsure() -> None:
    rng = np.random.default_rng(2)
    scores, vectors, groups = _photos(rng, photos=30, crops=20)
    calibrator = VerdictCalibrator().fit(scores, vectors, groups)
    _, near, _ = _photos(rng, photos=20, crops=20)
    _, far, _ = _photos(rng, photos=5, crops=20, centre=-np.eye(DIM)[0])
    near_ood, far_ood = calibrator.ood_score(near), calibrator.ood_score(far)
    assert near_ood.dtype == np.float32 and np.mean(near_ood <= 1) > 0.9
    assert (far_ood > 1).all()
    # Far away, even a score above the generated threshold says nothing: unsure.
    high = np.full(len(far), 1.0)
    assert set(calibrator.predict(high, far)) == {UNSURE}
    assert calibrator.predict(high[:5], near[:5])[near_ood[:5] <= 1].tolist() == [GENERATED] * int((near_ood[:5] <= 1).sum())


def test_verdict_rule_between_thresholds_and_without_a_score() -> None:
    rng = np.random.default_rng(3)
    scores, vectors, groups = _photos(rng, photos=30, crops=20)
    calibrator = VerdictCalibrator().fit(scores, vectors, groups)
    low, high = calibrator.real_threshold_, calibrator.generated_threshold_
    verdicts = calibrator.verdicts(np.array([low, (low + high) / 2, min(1.0, high + 1e-6), np.nan]), np.zeros(4))
    assert verdicts.tolist() == [REAL, UNSURE, GENERATED, None]


def test_fit_refuses_what_it_cannot_calibrate() -> None:
    vectors = np.eye(DIM, dtype=np.float32)[:4]
    with pytest.raises(ValueError, match="finite"):
        VerdictCalibrator().fit(np.array([0.1, np.nan, 0.2, 0.3]), vectors, np.arange(4))
    with pytest.raises(ValueError, match="two photographs"):
        VerdictCalibrator().fit(np.array([0.1, 0.2, 0.2, 0.3]), vectors, np.zeros(4))


def test_calibration_round_trips_through_its_file(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    scores, vectors, groups = _photos(rng, photos=20, crops=20)
    calibrator = VerdictCalibrator(target_fpr=0.02, n_neighbors=3).fit(scores, vectors, groups, model_version="v1")
    path = calibrator.save(tmp_path / "model.verdict.safetensors")
    loaded = VerdictCalibrator.load(path)
    assert loaded.get_params() == calibrator.get_params() and loaded.model_version_ == "v1"
    assert loaded.digest == calibrator.digest
    probe_scores, probe_vectors, _ = _photos(rng, photos=5, crops=10)
    assert loaded.predict(probe_scores, probe_vectors).tolist() == calibrator.predict(probe_scores, probe_vectors).tolist()
    np.testing.assert_array_equal(loaded.ood_score(probe_vectors), calibrator.ood_score(probe_vectors))
    (tmp_path / "other.safetensors").write_bytes(b"not a calibration")
    with pytest.raises(ValueError, match="not a genprint verdict calibration"):
        VerdictCalibrator.load(tmp_path / "other.safetensors")


def test_the_checkpoint_reads_its_sidecar_only_when_made_for_it(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    weights = tmp_path / "model.safetensors"
    shutil.copy(DEFAULT_CHECKPOINT, weights)
    shutil.copy(DEFAULT_CHECKPOINT.with_suffix(".json"), weights.with_suffix(".json"))
    assert sidecar_path(weights) == tmp_path / "model.verdict.safetensors"
    assert verdict_calibrator(load_learned(weights)) is None  # no sidecar: no verdicts
    rng = np.random.default_rng(5)
    scores, vectors, groups = _photos(rng, photos=10, crops=10)
    version = load_learned(weights).checkpoint.version
    VerdictCalibrator().fit(scores, vectors, groups, model_version="learned-1+stale").save(sidecar_path(weights))
    with caplog.at_level(logging.WARNING):
        assert verdict_calibrator(load_learned(weights)) is None
    assert "calibrated for learned-1+stale" in caplog.text
    VerdictCalibrator().fit(scores, vectors, groups, model_version=version).save(sidecar_path(weights))
    assert verdict_calibrator(load_learned(weights)).model_version_ == version
    assert verdict_calibrator(load_fingerprinter("spectral")) is None  # no detection head, no verdict


def test_the_shipped_checkpoint_ships_its_calibration() -> None:
    calibrator = verdict_calibrator(load_fingerprinter("default"))
    assert calibrator is not None and calibrator.target_fpr == 0.01
    assert 0 < calibrator.real_threshold_ < calibrator.generated_threshold_ <= 1


def test_without_groups_each_sample_stands_alone() -> None:
    scores, vectors, groups = _photos(np.random.default_rng(6), photos=40, crops=30)
    pooled = VerdictCalibrator().fit(scores, vectors)
    assert pooled.generated_threshold_ == upper_quantile_bound(scores, 0.99, 0.95) < scores.max()
    assert VerdictCalibrator().fit(scores, vectors, groups).generated_threshold_ >= pooled.generated_threshold_


def test_a_photograph_above_all_the_others_is_bounded_only_by_the_tolerance_bound() -> None:
    rng = np.random.default_rng(7)
    effects = rng.normal(-3.0, 1.0, 21)
    effects[0] = effects[1:].max() + 0.2  # one photograph scores higher than every other, as some camera photographs do
    logits = effects[:, None] + rng.normal(0, 0.3, (21, 100))
    scores = 1 / (1 + np.exp(-logits.ravel()))
    vectors = rng.normal(size=(len(scores), DIM)).astype(np.float32)
    groups = np.repeat(np.arange(21), 100)
    held = groups == 0
    order_statistics = VerdictCalibrator(photo_coverage=None).fit(scores[~held], vectors[~held], groups[~held])
    tolerant = VerdictCalibrator().fit(scores[~held], vectors[~held], groups[~held])
    # The order-statistic bounds cannot reach past the others' highest score; the held-out photograph does.
    assert order_statistics.generated_threshold_ <= scores[~held].max()
    assert (scores[held] > order_statistics.generated_threshold_).mean() > 0.01
    assert tolerant.generated_threshold_ > scores[~held].max()
    assert (scores[held] > tolerant.generated_threshold_).mean() <= 0.01
    # Too few photographs for a spread: the order-statistic bounds alone.
    two = groups < 2
    assert VerdictCalibrator().fit(scores[two], vectors[two], groups[two]).generated_threshold_ == (
        VerdictCalibrator(photo_coverage=None).fit(scores[two], vectors[two], groups[two]).generated_threshold_
    )
    with pytest.raises(ValueError, match="photo_coverage"):
        VerdictCalibrator(photo_coverage=1.0).fit(scores, vectors, groups)
