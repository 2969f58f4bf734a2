"""Batched generation of a trained member's images: samples from its prior and reconstructions of real crops."""
from __future__ import annotations

from typing import Iterator

import numpy as np
import torch
from torch import nn

from fingerprinting.zoo.plan import MemberSpec
from fingerprinting.zoo.training import degrade, to_model_space, to_uint8

GENERATION_BATCH = 128
# Which kinds of images each family emits: fraction of samples, the rest are reconstructions of real crops.
SAMPLE_FRACTION = {"dcgan": 1.0, "style": 1.0, "vae": 0.0, "autoencoder": 0.0, "unet": 0.0}


def sample_count(family: str, images: int) -> int:
    return round(images * SAMPLE_FRACTION[family])


@torch.no_grad()
def generate(model: nn.Module, spec: MemberSpec, samples: int, sources: np.ndarray) -> Iterator[tuple[str, np.ndarray]]:
    """Yield (kind, uint8 NHWC batch): first `samples` samples, then one reconstruction per source crop."""
    noise = torch.Generator().manual_seed(spec.seed + 2)
    for start in range(0, samples, GENERATION_BATCH):
        n = min(GENERATION_BATCH, samples - start)
        yield "sample", to_uint8(model.sample(n, noise), spec.last_activation)
    for start in range(0, len(sources), GENERATION_BATCH):
        real = to_model_space(sources[start : start + GENERATION_BATCH], spec.last_activation)
        source = degrade(real, noise) if spec.family == "unet" else real
        yield "reconstruction", to_uint8(model.reconstruct(source), spec.last_activation)
