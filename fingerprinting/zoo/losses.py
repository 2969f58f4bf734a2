"""Training objectives of zoo members: adversarial losses with a small critic, reconstruction, perceptual, KL."""
from __future__ import annotations

import functools

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import spectral_norm

GAN_LOSSES = ("ns_gan", "lsgan", "wgan_gp", "hinge")
RECONSTRUCTION_LOSSES = ("l1", "l2")
# Weight of the adversarial term beside a reconstruction term: pix2pix's ratio (1 : 100). A critic's gradient
# per image is of order one while an L1 gradient is spread over every pixel; larger weights turn a few
# hundred steps of training into noise.
ADVERSARIAL_WEIGHT = 0.01
PERCEPTUAL_WEIGHT = 0.5
KL_WEIGHT = 0.02
GRADIENT_PENALTY_WEIGHT = 10.0


class Critic(nn.Module):
    """Small spectrally normalised discriminator: strided 4x4 convs down to 4x4, then one logit per image.

    Spectral normalisation keeps the few hundred adversarial steps a member gets stable.
    """

    def __init__(self, size: int, width: int = 16):
        super().__init__()
        layers: list[nn.Module] = []
        channels, resolution, depth = 3, size, 0
        while resolution > 4:
            out = min(4 * width, width * 2**depth)
            layers += [spectral_norm(nn.Conv2d(channels, out, 4, stride=2, padding=1)), nn.LeakyReLU(0.2)]
            channels, resolution, depth = out, resolution // 2, depth + 1
        self.features = nn.Sequential(*layers)
        self.head = spectral_norm(nn.Linear(channels * resolution * resolution, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1)).squeeze(1)


def critic_loss(kind: str, critic: Critic, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    real_logits, fake_logits = critic(real), critic(fake)
    if kind == "ns_gan":
        return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
    if kind == "lsgan":
        return 0.5 * ((real_logits - 1).pow(2).mean() + fake_logits.pow(2).mean())
    if kind == "hinge":
        return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()
    if kind == "wgan_gp":
        mix = torch.rand(real.shape[0], 1, 1, 1)
        mixed = (mix * real + (1 - mix) * fake).requires_grad_(True)
        (grad,) = torch.autograd.grad(critic(mixed).sum(), mixed, create_graph=True)
        penalty = (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()
        drift = 1e-3 * real_logits.pow(2).mean()  # keeps the critic's outputs near zero
        return fake_logits.mean() - real_logits.mean() + GRADIENT_PENALTY_WEIGHT * penalty + drift
    raise KeyError(kind)


def generator_adversarial_loss(kind: str, critic: Critic, fake: torch.Tensor) -> torch.Tensor:
    logits = critic(fake)
    if kind == "ns_gan":
        return F.softplus(-logits).mean()
    if kind == "lsgan":
        return 0.5 * (logits - 1).pow(2).mean()
    if kind in ("hinge", "wgan_gp"):
        return -logits.mean()
    raise KeyError(kind)


def reconstruction_loss(kind: str, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.l1_loss(output, target) if kind == "l1" else F.mse_loss(output, target)


@functools.lru_cache(maxsize=1)
def _perceptual_features() -> nn.Module:
    """Fixed random convolutional features (seeded, never trained): the zoo's stand-in for a VGG loss."""
    generator = torch.Generator().manual_seed(20230101)
    convs = [nn.Conv2d(3, 16, 3, padding=1), nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.Conv2d(32, 32, 3, stride=2, padding=1)]
    for conv in convs:
        with torch.no_grad():
            conv.weight.copy_(torch.randn(conv.weight.shape, generator=generator) * (2.0 / conv.weight[0].numel()) ** 0.5)
            conv.bias.zero_()
    net = nn.ModuleList(convs).requires_grad_(False)
    return net


def perceptual_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    loss = output.new_zeros(())
    a, b = output, target
    for conv in _perceptual_features():
        a, b = F.relu(conv(a)), F.relu(conv(b))
        loss = loss + F.l1_loss(a, b)
    return loss


def kl_loss(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """KL(q(z|x) || N(0, I)), averaged over latent elements."""
    return 0.5 * (mean.pow(2) + log_var.exp() - 1 - log_var).mean()
