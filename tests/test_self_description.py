"""The real-only detector: filters and density from camera-like crops, and generated-like crops scored as departures."""
import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import roc_auc_score

from fingerprinting.self_description import SelfDescriptionDetector, fit_predictive_filters, neighbourhood_masks


def camera_like(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """Smooth random scenes with independent per-pixel sensor noise: what a camera crop looks like to a residual."""
    scenes = []
    for _ in range(n):
        coarse = rng.uniform(0, 255, (size // 8, size // 8, 3)).astype(np.uint8)
        scene = np.asarray(Image.fromarray(coarse).resize((size, size), Image.Resampling.BICUBIC), np.float64)
        scenes.append(np.clip(scene + rng.normal(0, 3.0, scene.shape), 0, 255))
    return np.stack(scenes).astype(np.uint8)


def upscaled(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """Camera-like crops at half size, upsampled 2x by nearest neighbour: a periodic, generator-like residual."""
    small = camera_like(n, size // 2, rng)
    return np.stack([np.asarray(Image.fromarray(c).resize((size, size), Image.Resampling.NEAREST)) for c in small])


def test_masks_never_use_the_centre_and_filters_predict_it():
    for mask in neighbourhood_masks(2).values():
        assert not mask[2, 2] and mask.any()
    kernels = fit_predictive_filters(camera_like(20, 32, np.random.default_rng(0)), radius=2, scales=2)
    assert kernels.shape == (2, 5, 5, 5)
    assert np.allclose(kernels[:, :, 2, 2], 1.0)  # residual = centre minus prediction
    # A prediction of a smooth scene is a weighted average: its taps sum close to one.
    assert np.allclose(kernels.sum(axis=(2, 3)), 0.0, atol=0.1)


def test_generated_like_crops_depart_from_camera_crops_never_seen_in_fitting():
    rng = np.random.default_rng(1)
    detector = SelfDescriptionDetector(n_components=1).fit(camera_like(120, 32, rng))
    real, fake = detector.anomaly_score(camera_like(40, 32, rng)), detector.anomaly_score(upscaled(40, 32, rng))
    assert roc_auc_score(np.r_[np.zeros(40), np.ones(40)], np.r_[real, fake]) > 0.95
    assert np.median(real) < 2.0 < np.median(fake)


def test_deterministic_and_validated():
    crops = camera_like(50, 32, np.random.default_rng(2))
    a = SelfDescriptionDetector(n_components=2).fit(crops).anomaly_score(crops[:5])
    b = SelfDescriptionDetector(n_components=2).fit(crops).anomaly_score(crops[:5])
    assert np.array_equal(a, b)
    with pytest.raises(ValueError, match="at least"):
        SelfDescriptionDetector(n_components=1).fit(crops[:3])
    with pytest.raises(ValueError, match="uint8"):
        SelfDescriptionDetector().fit(crops.astype(np.float32))
