"""Brief training of one zoo member on patches of its own photographs, with its own objective."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

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

GAN_LR = 5e-4  # latent generators and critics: a few hundred steps need more than the usual 2e-4
CRITIC_LR = 5e-4
RECONSTRUCTION_LR = 1e-3
DEGRADE_NOISE = 0.04  # the U-Net restores crops that were blurred (2x down and up) and given this noise
LATENT_FAMILIES = ("dcgan", "style")
IMLE_CANDIDATES = 2  # prior samples drawn per real patch; the nearest one is pulled towards it
WARMUP_FRACTION = 0.5  # latent generators start with IMLE alone, then add their adversarial loss


@contextmanager
def reproducible_torch() -> Iterator[None]:
    """Deterministic algorithms on one thread: the bits then do not depend on the machine's core count."""
    previous = torch.are_deterministic_algorithms_enabled(), torch.get_num_threads()
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous[0])
        torch.set_num_threads(previous[1])


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


def train_member(spec: MemberSpec, size: int, batch_size: int = 16) -> nn.Module:
    """Build the member's generator from its seed and train it for `spec.train_steps` steps; returns it in eval mode."""
    torch.manual_seed(spec.seed)  # weight initialisation
    noise = torch.Generator().manual_seed(spec.seed + 1)
    rng = np.random.default_rng([spec.seed, 0x7EA])
    model = build_generator(spec.family, spec.architecture(), size)
    gan = _gan_loss(spec)
    critic = Critic(size) if gan else None
    latent = spec.family in LATENT_FAMILIES
    betas = (0.0, 0.9) if gan == "wgan_gp" else (0.5, 0.999)
    lr = GAN_LR if latent else RECONSTRUCTION_LR
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, betas=betas)
    critic_optimizer = torch.optim.Adam(critic.parameters(), lr=CRITIC_LR, betas=betas) if critic else None
    regions = training_regions(spec.photos, size)
    model.train()
    adversarial_from = round(WARMUP_FRACTION * spec.train_steps) if latent else 0
    for step in range(spec.train_steps):
        crops, _ = sample_crops(regions, batch_size, size, rng)
        flip = rng.random(batch_size) < 0.5
        crops[flip] = crops[flip, :, ::-1]
        real = to_model_space(crops, spec.last_activation)
        fake, loss = _forward(spec, model, real, noise)
        if critic is not None and step >= adversarial_from:
            critic_optimizer.zero_grad(set_to_none=True)
            critic_loss(gan, critic, real, fake.detach()).backward()
            critic_optimizer.step()
            loss = loss + ADVERSARIAL_WEIGHT * generator_adversarial_loss(gan, critic, fake)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return model.eval()


def _forward(spec: MemberSpec, model: nn.Module, real: torch.Tensor, noise: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(generated batch, non-adversarial part of the loss) for one training step."""
    if spec.family in LATENT_FAMILIES:
        fake = _imle_matches(model, real, noise)
        return fake, _reconstruction_terms(spec, fake, real)
    if spec.family == "vae":
        mean, log_var = model.posterior(real)
        z = mean + torch.randn(mean.shape, generator=noise) * (0.5 * log_var).exp()
        fake = model.decode(z)
        return fake, _reconstruction_terms(spec, fake, real) + KL_WEIGHT * kl_loss(mean, log_var)
    source = degrade(real, noise) if spec.family == "unet" else real
    fake = model.reconstruct(source)
    return fake, _reconstruction_terms(spec, fake, real)


def _imle_matches(model: nn.Module, real: torch.Tensor, noise: torch.Generator) -> torch.Tensor:
    """Implicit maximum likelihood (Li and Malik, 2018): for each real patch, the nearest of a few prior samples.

    The match is found without gradients on 4x-pooled pixels, then only the matched samples are
    synthesised again with gradients; every real patch pulls some sample towards it, so the generator
    covers the data instead of collapsing onto one mode, and its samples are natural patches early.
    """
    n = real.shape[0]
    latents = model.draw_latents(IMLE_CANDIDATES * n, noise)
    with torch.no_grad():
        candidates = F.avg_pool2d(model.synthesize(latents), 4).flatten(1)
        nearest = torch.cdist(F.avg_pool2d(real, 4).flatten(1), candidates).argmin(1)
    return model.synthesize(tuple(t[nearest] for t in latents))
