"""The spectral fingerprint: shape and norm, any crop size, and upsampling traces told apart."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fingerprinting.fingerprinter import FingerprintOutput, Fingerprinter
from fingerprinting.spectral import SpectralFingerprinter, _median3x3

RNG = np.random.default_rng(11)


def upsampled_noise(count: int, mode: str) -> np.ndarray:
    """Random 32 px colour noise upsampled x2 to 64 px by ``mode`` (the 'generator')."""
    noise = torch.from_numpy(RNG.integers(0, 256, (count, 3, 32, 32)).astype(np.float32))
    options = {"align_corners": False} if mode == "bilinear" else {}
    big = F.interpolate(noise, scale_factor=2, mode=mode, **options)
    return big.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


@pytest.fixture(scope="module")
def spectral() -> SpectralFingerprinter:
    return SpectralFingerprinter()


def test_is_a_fingerprinter_with_normalised_vectors(spectral: SpectralFingerprinter) -> None:
    assert isinstance(spectral, Fingerprinter)
    output = spectral.fingerprint(RNG.integers(0, 256, (5, 64, 64, 3), dtype=np.uint8))
    assert isinstance(output, FingerprintOutput)
    assert output.vectors.shape == (5, spectral.dim) and output.vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(output.vectors, axis=1), 1.0, atol=1e-5)
    assert output.fake_scores is None and output.parsed is None


def test_deterministic_and_independent_of_batching(spectral: SpectralFingerprinter) -> None:
    crops = RNG.integers(0, 256, (70, 64, 64, 3), dtype=np.uint8)  # spans several internal blocks
    together = spectral.fingerprint(crops).vectors
    alone = np.concatenate([spectral.fingerprint(crops[i : i + 1]).vectors for i in range(len(crops))])
    np.testing.assert_array_equal(together, alone)  # one image, one vector, whatever the batch


@pytest.mark.parametrize("size", [32, 40, 64, 96])
def test_any_square_crop_size_gives_the_same_layout(spectral: SpectralFingerprinter, size: int) -> None:
    vectors = spectral.fingerprint(RNG.integers(0, 256, (3, size, size, 3), dtype=np.uint8)).vectors
    assert vectors.shape == (3, spectral.dim) and np.isfinite(vectors).all()


def test_flat_image_gives_a_finite_vector(spectral: SpectralFingerprinter) -> None:
    vectors = spectral.fingerprint(np.full((2, 64, 64, 3), 128, dtype=np.uint8)).vectors
    assert np.isfinite(vectors).all()


def test_rejects_non_square_crops(spectral: SpectralFingerprinter) -> None:
    with pytest.raises(ValueError, match="shape"):
        spectral.fingerprint(np.zeros((1, 64, 48, 3), dtype=np.uint8))


def test_median_is_the_exact_3x3_median() -> None:
    images = RNG.random((4, 20, 24), dtype=np.float32)
    padded = np.pad(images, ((0, 0), (1, 1), (1, 1)), mode="reflect")
    windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3), axis=(1, 2)).reshape(4, 20, 24, 9)
    np.testing.assert_array_equal(_median3x3(images), np.median(windows, axis=-1))
    ties = RNG.integers(0, 3, (3, 9, 13), dtype=np.uint8)  # uint8, as the fingerprint uses it, with many ties
    windows = np.lib.stride_tricks.sliding_window_view(np.pad(ties, ((0, 0), (1, 1), (1, 1)), mode="reflect"), (3, 3), axis=(1, 2))
    np.testing.assert_array_equal(_median3x3(ties), np.median(windows.reshape(3, 9, 13, 9), axis=-1).astype(np.uint8))
    # Every order of nine distinct values: the centre of a 3x3 image is their median.
    orders = np.array(list(itertools.permutations(range(9))), dtype=np.uint8).reshape(-1, 3, 3)
    assert (_median3x3(orders)[:, 1, 1] == 4).all()


def test_same_upsampling_is_closer_than_different_upsampling(spectral: SpectralFingerprinter) -> None:
    nearest = spectral.fingerprint(upsampled_noise(24, "nearest")).vectors
    bilinear = spectral.fingerprint(upsampled_noise(24, "bilinear")).vectors
    vectors = np.concatenate([nearest, bilinear])
    labels = np.repeat([0, 1], 24)
    similarity = vectors @ vectors.T
    same = labels[:, None] == labels[None, :]
    off_diagonal = ~np.eye(len(labels), dtype=bool)
    assert similarity[same & off_diagonal].mean() > similarity[~same].mean() + 0.2
    np.fill_diagonal(similarity, -np.inf)
    assert (labels[similarity.argmax(axis=1)] == labels).all()  # every nearest neighbour same type
