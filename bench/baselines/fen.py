"""FEN-style baseline from Asnani, Yin, Hassner and Liu ("Reverse Engineering of Generative Models",
TPAMI 2023), written from the paper's description.

A fingerprint estimation network (FEN: a DnCNN, by default 17 layers of 64 channels) maps an image
to its residual fingerprint under the paper's four constraints (low magnitude, energy away from the
lowest frequencies, repeated spectral peaks, a symmetric spectrum: ``fingerprinting.losses.
residual_constraints``). A small network on the fingerprint then classifies the generator (closed
set, the paper's attribution), scores fake vs real and parses the design (the same parsing targets
and losses as genprint's heads). Its penultimate features, normalised, are the vector used for
clustering and open-set attribution.

Trained on the same train members, reals and augmentation as genprint's network, with a given
number of epochs (one epoch = one pass over the training images, or a given number of batches).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fingerprinting.augment import Augmenter
from fingerprinting.learned import decode_parsed
from fingerprinting.losses import parsing_losses, residual_constraints
from fingerprinting.models import FingerprintOutput
from fingerprinting.network import HeadSpec, NetworkOutput, to_network_input
from fingerprinting.optimiser import OneCycleAdamW
from fingerprinting.train import LossWeights
from fingerprinting.training_data import LabelledImages


@dataclass(frozen=True)
class FenConfig:
    """Architecture and training budget. The paper's FEN is ``layers=17, channels=64``."""

    layers: int = 17
    channels: int = 64
    hidden_dim: int = 128
    epochs: int = 20
    steps_per_epoch: int | None = None  # None: one pass over the training images
    batch_size: int = 64
    crop: int = 64
    learning_rate: float = 1e-3
    seed: int = 0


class DnCNN(nn.Module):
    """Zhang et al.'s denoiser shape: conv-ReLU, (layers - 2) x conv-BN-ReLU, conv; outputs the residual."""

    def __init__(self, layers: int, channels: int) -> None:
        super().__init__()
        body: list[nn.Module] = [nn.Conv2d(3, channels, 3, padding=1), nn.ReLU(inplace=True)]
        for _ in range(layers - 2):
            body += [nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels), nn.ReLU(inplace=True)]
        body.append(nn.Conv2d(channels, 3, 3, padding=1))
        self.body = nn.Sequential(*body)

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


class FenNet(nn.Module):
    """FEN residual -> small strided encoder -> hidden features -> member, fake and parsing heads."""

    def __init__(self, config: FenConfig, members: int, heads: HeadSpec) -> None:
        super().__init__()
        self.config, self.heads = config, heads
        self.fen = DnCNN(config.layers, config.channels)
        self.encoder = nn.Sequential(
            nn.Conv2d(3, 32, 3, stride=2, padding=1), nn.BatchNorm2d(32), nn.ReLU(inplace=True),
            nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
        )
        self.hidden = nn.Sequential(nn.Linear(128, config.hidden_dim), nn.ReLU(inplace=True))
        self.member_head = nn.Linear(config.hidden_dim, members)
        self.fake_head = nn.Linear(config.hidden_dim, 1)
        self.continuous_head = nn.Linear(config.hidden_dim, len(heads.continuous))
        self.discrete_heads = nn.ModuleList(nn.Linear(config.hidden_dim, len(c)) for _, c in heads.discrete)
        self.loss_head = nn.Linear(config.hidden_dim, len(heads.loss_types))

    def forward(self, x: Tensor) -> tuple[NetworkOutput, Tensor]:
        residual = self.fen(x)
        maps = self.encoder(residual)
        hidden = self.hidden(torch.cat([maps.mean((2, 3)), maps.std((2, 3))], 1))
        output = NetworkOutput(
            residual=residual,
            embedding=F.normalize(hidden, dim=1),
            fake_logit=self.fake_head(hidden).squeeze(1),
            continuous=torch.sigmoid(self.continuous_head(hidden)),
            discrete=tuple(head(hidden) for head in self.discrete_heads),
            loss_logits=self.loss_head(hidden),
        )
        return output, self.member_head(hidden)


def fit_fen(data: LabelledImages, rows: np.ndarray, config: FenConfig, heads: HeadSpec | None = None) -> tuple[FenNet, float]:
    """Train on ``rows`` of ``data`` (fakes of train members and reals); returns the net (eval mode) and seconds."""
    started = time.perf_counter()
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    heads = heads or HeadSpec.from_space()
    net = FenNet(config, len(data.member_ids), heads)
    weights = LossWeights()
    augment = Augmenter()
    steps = (config.steps_per_epoch or max(1, len(rows) // config.batch_size)) * config.epochs
    optimiser = OneCycleAdamW(net.parameters(), config.learning_rate, weight_decay=1e-4, total_steps=steps)
    crop = min(config.crop, *data.pixels.shape[1:3])
    net.train()
    for _ in range(steps):
        batch = rng.choice(rows, min(config.batch_size, len(rows)), replace=False)
        x = to_network_input(torch.from_numpy(np.stack([augment(data.pixels[r], crop, rng) for r in batch])))
        output, member_logits = net(x)
        member = torch.from_numpy(data.member[batch])
        fake = member >= 0
        fakes = member[fake].numpy()
        parsing = parsing_losses(
            output.continuous[fake], tuple(d[fake] for d in output.discrete), output.loss_logits[fake],
            torch.from_numpy(data.continuous[fakes]), torch.from_numpy(data.discrete[fakes]), torch.from_numpy(data.losses[fakes]),
        )
        constraints = residual_constraints(output.residual[fake])
        loss = (
            F.cross_entropy(member_logits[fake], member[fake]) if fake.any() else member_logits.sum() * 0.0
        ) + F.binary_cross_entropy_with_logits(output.fake_logit, fake.float()) + sum(parsing.values()) + sum(
            getattr(weights, name) * value for name, value in constraints.items()
        )
        optimiser.step(loss)
    return net.eval(), time.perf_counter() - started


class FenFingerprinter:
    """A trained ``FenNet`` as a ``Fingerprinter``: vectors, fake scores and the parsed design."""

    name = "fen"
    size_agnostic = True

    def __init__(self, net: FenNet, crop_size: int = 64, batch_size: int = 128) -> None:
        self.net = net.eval()
        self.version = f"dncnn{net.config.layers}x{net.config.channels}-e{net.config.epochs}"
        self.dim = net.config.hidden_dim
        self.crop_size = crop_size
        self.batch_size = batch_size

    def fingerprint(self, crops: np.ndarray) -> FingerprintOutput:
        vectors, scores, parsed = [], [], []
        with torch.inference_mode():
            for start in range(0, len(crops), self.batch_size):
                output, _ = self.net(to_network_input(torch.from_numpy(np.ascontiguousarray(crops[start : start + self.batch_size]))))
                vectors.append(output.embedding.numpy())
                scores.append(torch.sigmoid(output.fake_logit).numpy())
                parsed.append(decode_parsed(output, self.net.heads))
        return FingerprintOutput(np.concatenate(vectors).astype(np.float32), np.concatenate(scores).astype(np.float32),
                                 pd.concat(parsed, ignore_index=True))

    def flops_per_crop(self, side: int) -> int:
        from torch.utils.flop_counter import FlopCounterMode

        counter = FlopCounterMode(display=False)
        with torch.no_grad(), counter:
            self.net(torch.zeros(1, 3, side, side))
        return int(counter.get_total_flops())
