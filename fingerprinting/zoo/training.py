"""Brief training of one zoo member on patches of its own photographs, with its own objective."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from fingerprinting.zoo.families import build_generator
from fingerprinting.zoo.losses import (
    ADVERSARIAL_WEIGHT, GAN_LOSSES, KL_WEIGHT, PERCEPTUAL_WEIGHT, Critic, critic_loss, generator_adversarial_loss,
    kl_loss, perceptual_loss, reconstruction_loss,
)
from fingerprinting.zoo.photos import sample_crops, training_regions
from fingerprinting.zoo.plan import MemberSpec

DEGRADE_NOISE = 0.04  # the U-Net restores crops that were blurred (2x down and up) and given this noise


def to_model_space(images: np.ndarray, last_activation: str) -> torch.Tensor:
    """uint8 NHWC -> float NCHW in the range the member's last activation produces ([0, 1] for sigmoid, else [-1, 1])."""
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
    return x if last_activation == "sigmoid" else x * 2 - 1


def to_uint8(x: torch.Tensor, last_activation: str) -> np.ndarray:
    """Model output -> uint8 NHWC, clipped (a member without a last activation can overshoot)."""
    unit = x if last_activation == "sigmoid" else (x + 1) / 2
    return (unit.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


def degrade(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    blurred = F.interpolate(F.avg_pool2d(x, 2), scale_factor=2, mode="bilinear", align_corners=False)
    return blurred + DEGRADE_NOISE * torch.randn(x.shape, generator=generator)


def _gan_loss(spec: MemberSpec) -> str | None:
    return next((t for t in spec.losses if t in GAN_LOSSES), None)


def _reconstruction_terms(spec: MemberSpec, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    loss = output.new_zeros(())
    for kind in ("l1", "l2"):
        if kind in spec.losses:
            loss = loss + reconstruction_loss(kind, output, target)
    if "perceptual" in spec.losses:
        loss = loss + PERCEPTUAL_WEIGHT * perceptual_loss(output, target)
    return loss


def train_member(spec: MemberSpec, size: int, batch_size: int = 32) -> nn.Module:
    """Build the member's generator from its seed and train it for `spec.train_steps` steps; returns it in eval mode."""
    torch.manual_seed(spec.seed)  # weight initialisation
    noise = torch.Generator().manual_seed(spec.seed + 1)
    rng = np.random.default_rng([spec.seed, 0x7EA])
    model = build_generator(spec.family, spec.architecture(), size)
    gan = _gan_loss(spec)
    critic = Critic(size) if gan else None
    adversarial_only = spec.family in ("dcgan", "style")
    betas = (0.0, 0.9) if gan == "wgan_gp" else (0.5, 0.999)
    lr = 2e-4 if adversarial_only else 1e-3
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, betas=betas)
    critic_optimizer = torch.optim.Adam(critic.parameters(), lr=2e-4, betas=betas) if critic else None
    regions = training_regions(spec.photos, size)
    model.train()
    for _ in range(spec.train_steps):
        crops, _ = sample_crops(regions, batch_size, size, rng)
        flip = rng.random(batch_size) < 0.5
        crops[flip] = crops[flip, :, ::-1]
        real = to_model_space(crops, spec.last_activation)
        fake, loss = _forward(spec, model, real, noise)
        if critic is not None:
            critic_optimizer.zero_grad(set_to_none=True)
            critic_loss(gan, critic, real, fake.detach()).backward()
            critic_optimizer.step()
            weight = 1.0 if adversarial_only else ADVERSARIAL_WEIGHT
            loss = loss + weight * generator_adversarial_loss(gan, critic, fake)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return model.eval()


def _forward(spec: MemberSpec, model: nn.Module, real: torch.Tensor, noise: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(generated batch, non-adversarial part of the loss) for one training step."""
    if spec.family in ("dcgan", "style"):
        fake = model.sample(real.shape[0], noise)
        return fake, fake.new_zeros(())
    if spec.family == "vae":
        mean, log_var = model.posterior(real)
        z = mean + torch.randn(mean.shape, generator=noise) * (0.5 * log_var).exp()
        fake = model.decode(z)
        return fake, _reconstruction_terms(spec, fake, real) + KL_WEIGHT * kl_loss(mean, log_var)
    source = degrade(real, noise) if spec.family == "unet" else real
    fake = model.reconstruct(source)
    return fake, _reconstruction_terms(spec, fake, real)
