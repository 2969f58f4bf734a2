"""Small super-resolution networks trained on the zoo's photographs: a zoo family like the restoration networks uploads come from.

The zoo's generators are trained briefly on its content; the super-resolution networks users meet
(Real-CUGAN, SPAN, ...) are trained to convergence on photographs. These upscalers (a head conv, a
few body convs, one upsampling layer per factor of two, an optional bicubic shortcut) are trained on
crops of the zoo's photographs' training regions, each downscaled by a random filter, so their
output shows the traces such networks leave. The stacked detector learns from them (``fingerprinting.detector_material``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch import nn

from fingerprinting.zoo.external.build import DOWNSCALE_FILTERS
from fingerprinting.zoo.layers import act_layer, conv3x3, upsample_layer
from fingerprinting.zoo.photos import sample_crops, training_regions, usable_photos

HR_SIDE = 64  # the high-resolution crops they learn to restore


@dataclass(frozen=True)
class UpscalerDesign:
    upsampling: str
    scale: int
    width: int
    body_convs: int
    activation: str
    bicubic_shortcut: bool
    loss: str


def sample_designs(count: int, seed: int) -> list[UpscalerDesign]:
    """`count` designs drawn uniformly from the space the docstring names; the four upsampling types in turn."""
    rng = np.random.default_rng(seed)
    types = ("pixel_shuffle", "transposed", "nearest", "bilinear")
    return [UpscalerDesign(types[i % 4], int(rng.choice([2, 4])), int(rng.choice([16, 24, 32, 48])), int(rng.integers(2, 7)),
                   str(rng.choice(["relu", "leaky_relu", "silu", "elu"])), bool(rng.random() < 0.5), str(rng.choice(["l1", "l2"])))
            for i in range(count)]


class Upscaler(nn.Module):
    """Head conv, `body_convs` convs, one upsampling layer per factor of two, to_rgb; output in [0, 1]."""

    def __init__(self, design: UpscalerDesign):
        super().__init__()
        w = design.width
        layers: list[nn.Module] = [conv3x3(3, w), act_layer(design.activation)]
        for _ in range(design.body_convs):
            layers += [conv3x3(w, w), act_layer(design.activation)]
        for _ in range(design.scale.bit_length() - 1):
            layers += [upsample_layer(design.upsampling, w, w), act_layer(design.activation)]
        layers.append(conv3x3(w, 3))
        self.net = nn.Sequential(*layers)
        self.design = design

    def forward(self, low: torch.Tensor) -> torch.Tensor:
        out = self.net(low)
        if self.design.bicubic_shortcut:
            out = out + nn.functional.interpolate(low, scale_factor=self.design.scale, mode="bicubic", align_corners=False)
        return out

    def upscale(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 HxWx3 -> uint8 (scale H)x(scale W)x3, as the external corpus's runner returns."""
        with torch.inference_mode():
            x = torch.from_numpy(np.array(pixels)).permute(2, 0, 1)[None].float().div(255)
            y = self(x)[0].clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).numpy()
        return y


def _low(rng: np.random.Generator, crop: np.ndarray, scale: int) -> np.ndarray:
    side = crop.shape[0] // scale
    return np.asarray(Image.fromarray(crop).resize((side, side), DOWNSCALE_FILTERS[rng.integers(len(DOWNSCALE_FILTERS))]))


def train_upscaler(design: UpscalerDesign, crops: np.ndarray, steps: int, seed: int) -> Upscaler:
    """Adam on batches of 16 random HR crops (flipped at random), each downscaled by a random filter of the corpus's."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = Upscaler(design)
    optimiser = torch.optim.Adam(model.parameters(), 1e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, steps)
    loss = nn.functional.l1_loss if design.loss == "l1" else nn.functional.mse_loss
    for _ in range(steps):
        batch = crops[rng.integers(len(crops), size=16)]
        batch = np.stack([b[:, ::-1] if rng.random() < 0.5 else b for b in batch])
        low = torch.from_numpy(np.stack([_low(rng, b, design.scale) for b in batch])).permute(0, 3, 1, 2).float().div(255)
        high = torch.from_numpy(np.ascontiguousarray(batch)).permute(0, 3, 1, 2).float().div(255)
        value = loss(model(low), high)
        optimiser.zero_grad()
        value.backward()
        optimiser.step()
        schedule.step()
    return model.eval()


def training_crops(count: int, seed: int) -> np.ndarray:
    """`count` HR_SIDE crops of the zoo's photographs' training regions: what the upscalers learn from."""
    crops, _ = sample_crops(training_regions(usable_photos(HR_SIDE), HR_SIDE), count, HR_SIDE, np.random.default_rng(seed))
    return crops
