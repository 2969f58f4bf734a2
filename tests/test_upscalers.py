"""fingerprinting.zoo.upscalers on content the test makes: the upscalers learn, and keep the external corpus runner's contract."""
from __future__ import annotations

import numpy as np
import torch

from fingerprinting.zoo import upscalers


def _smooth_crops(n: int, side: int, seed: int) -> np.ndarray:
    """Random colour gradients plus a soft blob: content a 2x upscaler can learn in a few steps."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:side, 0:side] / side
    crops = []
    for _ in range(n):
        a, b, c = rng.uniform(0, 1, (3, 3))
        cy, cx = rng.uniform(0.2, 0.8, 2)
        blob = np.exp(-((y - cy) ** 2 + (x - cx) ** 2) * 20)
        crops.append(np.stack([a[i] * y + b[i] * x + c[i] * blob for i in range(3)], -1))
    crops = np.stack(crops)
    return (255 * crops / crops.max()).astype(np.uint8)


def _error(model: upscalers.Upscaler, crops: np.ndarray) -> float:
    rng = np.random.default_rng(9)
    return float(np.mean([np.abs(model.upscale(upscalers._low(rng, c, model.design.scale)).astype(float) - c).mean() for c in crops]))


def test_designs_cover_every_upsampling_type_and_are_reproducible():
    designs = upscalers.sample_designs(8, seed=3)
    assert designs == upscalers.sample_designs(8, seed=3)
    assert {d.upsampling for d in designs} == {"pixel_shuffle", "transposed", "nearest", "bilinear"}
    assert {d.scale for d in designs} <= {2, 4}


def test_an_upscaler_learns_to_upscale_and_keeps_the_corpus_runner_contract():
    torch.set_num_threads(1)
    crops = _smooth_crops(64, 32, seed=0)
    design = upscalers.UpscalerDesign("pixel_shuffle", 2, 16, 2, "relu", False, "l1")
    torch.manual_seed(0)  # the untrained network's weights: the same whichever tests ran before
    untrained = upscalers.Upscaler(design).eval()
    trained = upscalers.train_upscaler(design, crops, steps=150, seed=0)
    out = trained.upscale(crops[0, ::2, ::2])
    assert out.shape == (32, 32, 3) and out.dtype == np.uint8
    assert _error(trained, crops[:8]) < 0.5 * _error(untrained, crops[:8])
