"""The learned fingerprint network: a cheap residual estimator, an encoder and its heads."""
from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fingerprinting.design import HYPERPARAMETERS, LOSS_TYPES


@dataclass(frozen=True)
class HeadSpec:
    """What the parsing heads predict; stored in every checkpoint so old ones decode after the space changes."""

    continuous: tuple[tuple[str, float, float], ...]  # (name, low, high): regressed on the min-max scale
    discrete: tuple[tuple[str, tuple[str, ...]], ...]  # (name, choices): classified
    loss_types: tuple[str, ...]  # multi-label

    @classmethod
    def from_space(cls) -> HeadSpec:
        return cls(
            continuous=tuple((h.name, float(h.low), float(h.high)) for h in HYPERPARAMETERS if h.kind == "continuous"),
            discrete=tuple((h.name, tuple(h.choices)) for h in HYPERPARAMETERS if h.kind == "discrete"),
            loss_types=tuple(LOSS_TYPES),
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HeadSpec:
        return cls(
            continuous=tuple((str(n), float(lo), float(hi)) for n, lo, hi in data["continuous"]),
            discrete=tuple((str(n), tuple(str(c) for c in choices)) for n, choices in data["discrete"]),
            loss_types=tuple(str(t) for t in data["loss_types"]),
        )


@dataclass(frozen=True)
class NetworkConfig:
    """Architecture of `FingerprintNet`; everything needed to rebuild it from a checkpoint."""

    residual_width: int = 16
    encoder_widths: tuple[int, int, int] = (32, 64, 128)
    spectrum_bins: int = 32
    hidden_dim: int = 192
    embedding_dim: int = 128
    heads: HeadSpec = field(default_factory=HeadSpec.from_space)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NetworkConfig:
        return cls(
            residual_width=int(data["residual_width"]),
            encoder_widths=tuple(int(w) for w in data["encoder_widths"]),  # type: ignore[arg-type]
            spectrum_bins=int(data["spectrum_bins"]),
            hidden_dim=int(data["hidden_dim"]),
            embedding_dim=int(data["embedding_dim"]),
            heads=HeadSpec.from_dict(data["heads"]),
        )


class NetworkOutput(NamedTuple):
    residual: Tensor  # (n, 3, h, w): the estimated fingerprint, on which the four constraints act
    embedding: Tensor  # (n, embedding_dim), L2-normalised
    fake_logit: Tensor  # (n,), uncalibrated
    continuous: Tensor  # (n, n_continuous), on the min-max scale [0, 1]
    discrete: tuple[Tensor, ...]  # one (n, n_choices) logit tensor per discrete hyperparameter
    loss_logits: Tensor  # (n, n_loss_types)


def to_network_input(crops: Tensor) -> Tensor:
    """uint8 crops (n, h, w, 3) -> float (n, 3, h, w) in [-1, 1]; odd sides lose their last row/column."""
    h, w = crops.shape[1] - crops.shape[1] % 2, crops.shape[2] - crops.shape[2] % 2
    x = crops[:, :h, :w].permute(0, 3, 1, 2).float()
    return x / 127.5 - 1.0


def to_unshuffled_input(crops: Tensor) -> Tensor:
    """``pixel_unshuffle(to_network_input(crops), 2)`` in one gather from the uint8 crops: (n, 12, h/2, w/2), several times faster."""
    n, h, w = crops.shape[0], crops.shape[1] // 2, crops.shape[2] // 2
    blocks = crops[:, : 2 * h, : 2 * w].reshape(n, h, 2, w, 2, 3).permute(0, 5, 2, 4, 1, 3)  # (n, colour, i, j, y, x)
    return blocks.reshape(n, 12, h, w).float() / 127.5 - 1.0


def polyphase_kernel(kernel: Tensor) -> Tensor:
    """A per-colour full-resolution 3x3 filter as the equivalent 3x3 convolution on ``pixel_unshuffle(x, 2)``."""
    weight = torch.zeros(12, 12, 3, 3)
    for colour in range(3):
        for i in range(2):
            for j in range(2):
                for dy in (-1, 0, 1):
                    for dx in (-1, 0, 1):
                        (block_y, i_in), (block_x, j_in) = divmod(i + dy, 2), divmod(j + dx, 2)
                        weight[colour * 4 + i * 2 + j, colour * 4 + i_in * 2 + j_in, block_y + 1, block_x + 1] += kernel[dy + 1, dx + 1]
    return weight


HIGH_PASS = torch.eye(3)[1][:, None] * torch.eye(3)[1][None, :] - torch.full((3, 3), 1.0 / 9.0)  # image minus its 3x3 mean


class ResidualEstimator(nn.Module):
    """A learned linear high-pass (starting as image minus its 3x3 mean) plus a small nonlinear correction.

    It works on the space-to-depth image (12 channels at half resolution): every pixel kept, no
    interpolation, and convolutions four times cheaper per pixel than at full resolution. The
    high-pass start keeps content out from the first step; the correction, zero at start, learns
    the rest under the four constraints. About 3 MFLOPs per 64 px crop, against the FEN's 5 GFLOPs.
    """

    def __init__(self, width: int) -> None:
        super().__init__()
        self.high_pass = nn.Conv2d(12, 12, 3, padding=1, padding_mode="reflect", bias=False)
        self.expand = nn.Conv2d(12, width, 1)
        self.project = nn.Conv2d(width, 12, 1)
        with torch.no_grad():
            self.high_pass.weight.copy_(polyphase_kernel(HIGH_PASS))
        nn.init.zeros_(self.project.weight)
        nn.init.zeros_(self.project.bias)

    def forward(self, unshuffled: Tensor) -> Tensor:
        residual = self.high_pass(unshuffled)
        return residual + self.project(F.leaky_relu(self.expand(residual), 0.1))


def conv_block(c_in: int, c_out: int, stride: int, kernel: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


def log_power_spectrum(residual: Tensor, bins: int) -> Tensor:
    """Log power spectrum of the windowed channel-mean residual, pooled to bins x bins normalised frequencies.

    Translation-invariant and size-agnostic (crops of 32 to 64 px land on the same frequency grid);
    periodic upsampling traces show up as peaks here.
    """
    n, c, h, w = residual.shape
    window = torch.outer(torch.hann_window(h, periodic=False, device=residual.device), torch.hann_window(w, periodic=False, device=residual.device))
    spectrum = torch.fft.fft2(residual.mean(1, keepdim=True) * window, norm="ortho")
    power = torch.fft.fftshift(spectrum.real.square() + spectrum.imag.square(), dim=(-2, -1))
    return torch.log(F.adaptive_avg_pool2d(power, bins) + 1e-8).flatten(1)


class FingerprintNet(nn.Module):
    """Space-to-depth -> residual -> (strided convolutions + global pooling) and (pooled log spectrum) -> vector and heads.

    Fully convolutional up to global pooling, so it takes any crop side from 32 to 64 px and more.
    Space-to-depth keeps every pixel (no interpolation) while making the convolutions cheap at half
    resolution; period-2 upsampling traces become patterns across its channels.
    """

    def __init__(self, config: NetworkConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or NetworkConfig()
        w1, w2, w3 = config.encoder_widths
        self.residual = ResidualEstimator(config.residual_width)
        self.encoder = nn.Sequential(conv_block(12, w1, 2), conv_block(w1, w2, 2), conv_block(w2, w3, 1), conv_block(w3, w3, 1, kernel=1))
        self.spectrum_norm = nn.BatchNorm1d(config.spectrum_bins**2)
        self.spectrum_proj = nn.Sequential(nn.Linear(config.spectrum_bins**2, config.hidden_dim // 2), nn.ReLU(inplace=True))
        self.mix = nn.Sequential(nn.Linear(2 * w3 + config.hidden_dim // 2, config.hidden_dim), nn.BatchNorm1d(config.hidden_dim), nn.ReLU(inplace=True))
        self.embed = nn.Linear(config.hidden_dim, config.embedding_dim)
        heads = config.heads
        # Detection gets a little depth of its own: the trunk is shaped mostly by the metric objective.
        self.fake_head = nn.Sequential(nn.Linear(config.hidden_dim, 64), nn.ReLU(inplace=True), nn.Linear(64, 1))
        self.continuous_head = nn.Linear(config.hidden_dim, len(heads.continuous))
        self.discrete_heads = nn.ModuleList(nn.Linear(config.hidden_dim, len(choices)) for _, choices in heads.discrete)
        self.loss_head = nn.Linear(config.hidden_dim, len(heads.loss_types))

    def forward(self, x: Tensor, with_residual: bool = True) -> NetworkOutput:
        """x: float (n, 3, h, w) in [-1, 1] with even h and w (see `to_network_input`).

        ``with_residual=False`` (inference) leaves the full-resolution residual out: an empty tensor.
        """
        return self.forward_unshuffled(F.pixel_unshuffle(x, 2), with_residual)

    def forward_unshuffled(self, unshuffled: Tensor, with_residual: bool = True) -> NetworkOutput:
        """`forward` from the space-to-depth input (see `to_unshuffled_input`)."""
        unshuffled_residual = self.residual(unshuffled)
        maps = self.encoder(unshuffled_residual)
        mean = maps.mean((2, 3), keepdim=True)
        pooled = torch.cat([mean.flatten(1), _spatial_std(maps, mean)], 1)
        # The spectrum only needs the colour mean: taken on the space-to-depth channels (colour-major, as
        # slices: faster than a strided mean), then one map shuffled back to full resolution.
        colour_mean = (unshuffled_residual[:, 0:4] + unshuffled_residual[:, 4:8] + unshuffled_residual[:, 8:12]) / 3
        channel_mean = F.pixel_shuffle(colour_mean, 2)
        spectrum = self.spectrum_proj(self.spectrum_norm(log_power_spectrum(channel_mean, self.config.spectrum_bins)))
        hidden = self.mix(torch.cat([pooled, spectrum], 1))
        return NetworkOutput(
            residual=F.pixel_shuffle(unshuffled_residual, 2) if with_residual else torch.empty(0),
            embedding=F.normalize(self.embed(hidden), dim=1),
            fake_logit=self.fake_head(hidden).squeeze(1),
            continuous=torch.sigmoid(self.continuous_head(hidden)),
            discrete=tuple(head(hidden) for head in self.discrete_heads),
            loss_logits=self.loss_head(hidden),
        )


def _spatial_std(maps: Tensor, mean: Tensor) -> Tensor:
    """``maps.std((2, 3))`` (unbiased) from the given spatial mean: several times faster than ``Tensor.std`` on CPU."""
    return (maps - mean).square().sum((2, 3)).div(maps.shape[2] * maps.shape[3] - 1).sqrt()


def inference_copy(net: FingerprintNet) -> FingerprintNet:
    """An eval-mode copy for inference only: batch norms folded into the layer before them, weights channels_last.

    Same outputs to float rounding, about a third less CPU time on small crops. The copy's modules
    differ from the checkpoint's (no batch norm after a convolution), so it is never saved or trained.
    """
    from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

    fused = copy.deepcopy(net).eval()
    for block in fused.encoder:
        block[0], block[1] = fuse_conv_bn_eval(block[0], block[1]), nn.Identity()
    fused.mix[0], fused.mix[1] = fuse_linear_bn_eval(fused.mix[0], fused.mix[1]), nn.Identity()
    return fused.to(memory_format=torch.channels_last)


def flops_per_crop(net: FingerprintNet, size: int = 64) -> int:
    """Floating-point operations (a multiply-add counts 2) of one forward pass on one size x size crop."""
    from torch.utils.flop_counter import FlopCounterMode

    was_training = net.training
    net.eval()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        net(torch.zeros(1, 3, size, size))
    net.train(was_training)
    return int(counter.get_total_flops())
