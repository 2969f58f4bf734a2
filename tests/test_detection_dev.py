"""bench.detection_dev's features and folds on images the test makes: each feature sees what it is meant to."""
from __future__ import annotations

import numpy as np
import pandas as pd

from bench import detection_dev


def _noise(rng: np.random.Generator, n: int, side: int, sigma: float) -> np.ndarray:
    return np.clip(128 + rng.normal(0, sigma, (n, side, side, 3)), 0, 255).astype(np.uint8)


def test_resampling_spectrum_finds_a_2x_upsampler_wherever_the_crop_starts():
    rng = np.random.default_rng(1)
    small = _noise(rng, 4, 40, 30.0).astype(np.float32)
    # 2x by keeping every pixel and putting midpoints between: the kept ones are what a smooth image cannot predict.
    upsampled = np.zeros((4, 80, 80, 3), np.float32)
    upsampled[:, ::2, ::2] = small
    upsampled[:, 1:-1:2] = (upsampled[:, :-2:2] + upsampled[:, 2::2]) / 2
    upsampled[:, :, 1:-1:2] = (upsampled[:, :, :-2:2] + upsampled[:, :, 2::2]) / 2
    upsampled = upsampled.round().astype(np.uint8)
    plain = detection_dev.resampling_spectrum(_noise(rng, 4, 64, 30.0))
    aligned, shifted = detection_dev.resampling_spectrum(upsampled[:, :64, :64]), detection_dev.resampling_spectrum(upsampled[:, 1:65, 1:65])
    period_2 = slice(0, 3)  # the three non-constant Fourier magnitudes of the 2 x 2 phase means
    assert (aligned[:, period_2].max(1) > plain[:, period_2].max(1) + 2).all()
    np.testing.assert_allclose(aligned[:, period_2], shifted[:, period_2], atol=0.5)  # blind to where the crop starts


def test_settings_never_train_on_a_test_photograph_and_hold_the_family_out_where_they_say_so():
    images = pd.DataFrame({"is_fake": [False] * 4 + [True] * 8, "family": [None] * 4 + ["a"] * 4 + ["b"] * 4,
                           "fold": [0, 1, 0, 1] + [0, 1] * 4, "photo": list("pqpq") + list("pq") * 4})
    seen = set()
    for setting, held, train, test in detection_dev.settings(images):
        seen.add((setting, held))
        assert not set(images["fold"].iloc[train]) & set(images["fold"].iloc[test])
        assert set(images["family"].iloc[test].dropna()) == {held}
        trained = set(images["family"].iloc[train].dropna())
        assert trained == {"leave-one-family-out": {"a", "b"} - {held}, "same family, new photographs": {held},
                           "both families, new photographs": {"a", "b"}}[setting]
    assert len(seen) == 6
