"""The stacked detector: noise statistics, fit / save / load, the checkpoint sidecar, and a tiny leave-one-family-out run on real pixels."""
from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import log_loss, roc_auc_score
from typer.testing import CliRunner

from fingerprinting.calibration import VerdictCalibrator
from fingerprinting.calibration import sidecar_path as verdict_sidecar
from fingerprinting.checkpoint import CheckpointError, load_checkpoint
from fingerprinting.detector_material import platform_view, real_images, upscaled_images
from fingerprinting.learned import LearnedFingerprinter
from fingerprinting.models import DEFAULT_CHECKPOINT, describe_learned, load_learned
from fingerprinting.noise_statistics import DIM, LUMA, gradient_magnitude, noise_statistics, prediction_residual
from fingerprinting.stacked import StackedDetector, crop_features, file_digest, sidecar_path
from fingerprinting.zoo.upscalers import UpscalerDesign, train_upscaler, training_crops
from flows.cli import app


def _noise(rng: np.random.Generator, n: int, side: int, sigma: float) -> np.ndarray:
    return np.clip(128 + rng.normal(0, sigma, (n, side, side, 3)), 0, 255).astype(np.uint8)


def _features(rng: np.random.Generator, n: int, shift: float) -> np.ndarray:
    x = rng.normal(0, 1, (n, 6)).astype(np.float32)
    x[:, 0] += shift
    return x


def test_noise_statistics_see_the_noise_floor():
    rng = np.random.default_rng(0)
    quiet, loud = noise_statistics(_noise(rng, 4, 64, 2.0)), noise_statistics(_noise(rng, 4, 64, 12.0))
    assert quiet.shape == loud.shape == (4, DIM) and np.isfinite(quiet).all()
    assert (loud[:, 0] > quiet[:, 0] + 1).all()  # log of the flattest block's residual spread: about log(6) apart
    assert noise_statistics(_noise(rng, 2, 16, 5.0)).shape == (2, DIM)  # the smallest crops a half-size view gives


def test_noise_statistics_correlations_and_gradients_are_numpys():
    """The hand-fused paths (no BLAS, gradients in place) against numpy's plain ones on correlated noisy crops."""
    rng = np.random.default_rng(2)
    shared = rng.normal(0, 8, (3, 40, 40, 1))
    pixels = np.clip(128 + shared + rng.normal(0, 4, (3, 40, 40, 3)), 0, 255).astype(np.uint8)
    stats = noise_statistics(pixels)
    for crop, row in zip(pixels.astype(np.float32), stats):
        residuals = prediction_residual(crop.transpose(2, 0, 1)).reshape(3, -1)
        expected = np.corrcoef(residuals)[[0, 0, 1], [1, 2, 2]]
        np.testing.assert_allclose(row[-3:], expected, atol=1e-4)
        assert (row[-3:] > 0.5).all()  # the shared noise ties the channels
    gray = pixels.astype(np.float32) @ LUMA
    plain = np.hypot(np.diff(gray, axis=2)[:, 1:-1, :-1], np.diff(gray, axis=1)[:, :-1, 1:-1])
    np.testing.assert_allclose(gradient_magnitude(gray), plain, rtol=1e-5, atol=1e-4)


def test_a_detector_round_trips_through_its_file(tmp_path: Path):
    rng = np.random.default_rng(1)
    features = np.concatenate([_features(rng, 200, 0), _features(rng, 200, 2)])
    is_fake = np.r_[np.zeros(200, bool), np.ones(200, bool)]
    detector = StackedDetector(max_iter=30).fit(features, is_fake, fitted_for="learned-1+abc")
    assert detector.digest_ == "unsaved"
    path = detector.save(tmp_path / "m.detector.skops")
    loaded = StackedDetector.load(path)
    assert loaded.fitted_for_ == "learned-1+abc" and loaded.max_iter == 30
    assert loaded.digest_ == detector.digest_ == file_digest(path)
    np.testing.assert_array_equal(loaded.predict_proba(features), detector.predict_proba(features))
    # it learnt: the training loss is below that of the base rate, and fakes score higher
    assert log_loss(is_fake, detector.predict_proba(features)) < 0.5 * log_loss(is_fake, np.full(len(is_fake), 0.5))


def test_what_a_detector_cannot_be_is_refused(tmp_path: Path):
    with pytest.raises(ValueError, match="fake and real"):
        StackedDetector().fit(np.zeros((10, 3)), np.ones(10, bool))
    foreign = tmp_path / "x.detector.skops"
    foreign.write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="not a genprint detector"):
        StackedDetector.load(foreign)


@pytest.fixture(scope="module")
def checkpoint_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    weights = tmp_path_factory.mktemp("stacked") / "model.safetensors"
    for suffix in (".safetensors", ".json"):
        shutil.copy(DEFAULT_CHECKPOINT.with_name("default" + suffix), weights.with_name("model" + suffix))
    return weights


def test_a_checkpoint_scores_with_the_detector_beside_it(checkpoint_copy: Path, caplog: pytest.LogCaptureFixture):
    rng = np.random.default_rng(2)
    crops = real_images(64, 24, rng)
    plain = load_learned(checkpoint_copy)
    head = plain.fingerprint(crops)
    groups = np.arange(len(crops)) % 6
    VerdictCalibrator().fit(head.fake_scores, head.vectors, groups, model_version=plain.scores_version).save(verdict_sidecar(checkpoint_copy))
    plain = load_learned(checkpoint_copy)
    assert plain.detector is None and plain.verdict_calibrator is not None and plain.scores_version == plain.checkpoint.version
    features = crop_features(plain, crops)
    detector = StackedDetector(max_iter=20).fit(features, np.arange(len(crops)) % 2 == 0, fitted_for=plain.checkpoint.version)
    detector.save(sidecar_path(checkpoint_copy))
    with caplog.at_level(logging.WARNING):
        stacked = load_learned(checkpoint_copy)
    # the verdicts were calibrated on the head's scores: not used with the detector's
    assert stacked.verdict_calibrator is None and "genprint calibrate" in caplog.text
    assert stacked.version == describe_learned(checkpoint_copy).version != plain.version
    assert f"detector-{file_digest(sidecar_path(checkpoint_copy))[:12]}" in stacked.version
    output = stacked.fingerprint(crops)
    head_scores = plain.fingerprint(crops).fake_scores
    np.testing.assert_allclose(output.fake_scores, np.maximum(head_scores, detector.predict_proba(features)), rtol=1e-6)
    assert (output.fake_scores > head_scores).any()  # the detector raised some: these reals are half labelled fake
    np.testing.assert_array_equal(output.vectors, plain.fingerprint(crops).vectors)  # the vectors are the network's
    np.testing.assert_array_equal(stacked.head_fingerprint(crops).fake_scores, plain.fingerprint(crops).fake_scores)


def test_a_detector_fitted_for_other_weights_is_an_error(checkpoint_copy: Path, tmp_path: Path):
    weights = tmp_path / "other.safetensors"
    shutil.copy(checkpoint_copy, weights)
    shutil.copy(checkpoint_copy.with_suffix(".json"), weights.with_suffix(".json"))
    rng = np.random.default_rng(3)
    StackedDetector(max_iter=5).fit(_features(rng, 40, 0), np.arange(40) % 2 == 0, fitted_for="learned-1+stale").save(sidecar_path(weights))
    with pytest.raises(CheckpointError, match="fit-detector"):
        load_learned(weights)


def test_a_tiny_leave_one_family_out_run_detects_upscalers_of_designs_it_never_saw():
    """Fitted on pixel-shuffle and transposed upscalers against photograph crops, it scores nearest and
    bilinear upscalers above new photograph crops, clean and JPEG 85 pooled."""
    fingerprinter = LearnedFingerprinter(load_checkpoint(DEFAULT_CHECKPOINT))
    high_res = training_crops(200, seed=0)
    rng = np.random.default_rng(0)
    images = {}
    for index, upsampling in enumerate(("pixel_shuffle", "transposed", "nearest", "bilinear")):
        # small networks, briefly trained: the test needs their traces, not their quality
        model = train_upscaler(UpscalerDesign(upsampling, 2, 16, 2, "relu", False, "l1"), high_res, steps=40, seed=index)
        images[upsampling] = upscaled_images(model, 64, 24, rng)

    def crops_of(group: list[np.ndarray]) -> np.ndarray:
        return np.stack([platform_view(image, view) for image in group for view in ("clean", "jpeg85")])

    seen, unseen = images["pixel_shuffle"] + images["transposed"], images["nearest"] + images["bilinear"]
    train_fake, train_real = crops_of(seen), crops_of(list(real_images(64, len(seen), rng)))
    test_fake, test_real = crops_of(unseen), crops_of(list(real_images(64, len(unseen), rng)))
    detector = StackedDetector(max_iter=60).fit(
        np.concatenate([crop_features(fingerprinter, train_fake), crop_features(fingerprinter, train_real)]),
        np.r_[np.ones(len(train_fake), bool), np.zeros(len(train_real), bool)])
    scores = detector.predict_proba(np.concatenate([crop_features(fingerprinter, test_fake), crop_features(fingerprinter, test_real)]))
    assert roc_auc_score(np.r_[np.ones(len(test_fake)), np.zeros(len(test_real))], scores) > 0.8  # 0.96-1.00 over three seeds


def test_fit_detector_then_calibrate_give_a_checkpoint_judged_on_the_detectors_scores(tiny_zoo, tmp_path: Path):
    weights = tmp_path / "model.safetensors"
    shutil.copy(DEFAULT_CHECKPOINT, weights)
    shutil.copy(DEFAULT_CHECKPOINT.with_suffix(".json"), weights.with_suffix(".json"))
    command = ["fit-detector", "--model", str(weights), "--zoo", str(tiny_zoo.root), "--upscalers", "2", "--upscaler-steps", "5",
               "--images-per-upscaler", "4", "--real-images", "8", "--threads", "2", "--work", str(tmp_path / "work")]
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 0, result.output
    assert "genprint calibrate" in result.output and "upscaler 2/2" in result.output and "trained and run" in result.output
    fingerprinter = load_learned(weights)
    assert fingerprinter.detector is not None and fingerprinter.detector.fitted_for_ == fingerprinter.checkpoint.version
    # 2 upscalers x 4 images x crops (64 px: 1 clean, 1 JPEG, 1 half; 128 px: 4, 4, 1), and the 32 px zoo's images
    # clean and JPEG (their 16 px half views are below what a run takes)
    zoo_fakes = int(tiny_zoo.images["member_id"].notna().sum())
    assert f"{2 * 4 * (1 + 1 + 1 + 4 + 4 + 1)} generated from upscalers" in result.output
    assert f"{2 * zoo_fakes} generated from zoo" in result.output and f"{2 * (len(tiny_zoo.images) - zoo_fakes)} real from zoo" in result.output
    again = CliRunner().invoke(app, command)  # the upscalers' features kept under --work: not trained again, the same detector
    assert again.exit_code == 0 and again.output.count("reused from") == 2 and "trained and run" not in again.output
    np.testing.assert_array_equal(load_learned(weights).detector.predict_proba(np.zeros((1, 297), np.float32)),
                                  fingerprinter.detector.predict_proba(np.zeros((1, 297), np.float32)))
    calibrated = CliRunner().invoke(app, ["calibrate", "--model", str(weights), "--crops-per-photo", "4", "--threads", "2"])
    assert calibrated.exit_code == 0, calibrated.output
    judged = load_learned(weights)  # the verdicts now judge the detector's scores
    assert judged.verdict_calibrator is not None and judged.verdict_calibrator.model_version_ == judged.scores_version != judged.checkpoint.version
    refused = CliRunner().invoke(app, ["fit-detector", "--model", "spectral"])
    assert refused.exit_code == 2 and "no head" in refused.output
