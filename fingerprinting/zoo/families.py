"""The generator families of the zoo, each assembled from the layer factories by a member's hyperparameters."""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from fingerprinting.zoo.layers import act_layer, conv3x3, icnr_, last_act_layer, norm_layer, resize_by_two, upsample_layer

MAX_WIDTH = 128  # channel cap of the low-resolution blocks, so wide members stay trainable on two cores
LATENT_DIM = 64
VAE_LATENT_CHANNELS = 8


def block_widths(base_width: int, up_blocks: int) -> list[int]:
    """Channels entering block 0, then after each block: halving towards `base_width` at full resolution."""
    return [min(MAX_WIDTH, base_width * 2 ** (up_blocks - i)) for i in range(up_blocks + 1)]


class UpBlock(nn.Module):
    """Upsample (by the member's upsampling type), then `convs` convolutions; optional residual shortcut."""

    def __init__(self, in_ch: int, out_ch: int, convs: int, upsampling: str, norm: str, activation: str, residual: bool):
        super().__init__()
        layers: list[nn.Module] = [upsample_layer(upsampling, in_ch, out_ch), norm_layer(norm, out_ch), act_layer(activation)]
        for _ in range(convs - 1):
            layers += [conv3x3(out_ch, out_ch), norm_layer(norm, out_ch), act_layer(activation)]
        self.main = nn.Sequential(*layers)
        self.shortcut = nn.Conv2d(in_ch, out_ch, 1) if residual else None
        self.resize = resize_by_two(upsampling)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.main(x)
        if self.shortcut is not None:
            y = y + self.shortcut(self.resize(x))
        return y


class Decoder(nn.Module):
    """A stack of up blocks from `widths[0]` channels at low resolution to an image (to_rgb + last activation).

    `skip_channels[i]` > 0 concatenates an encoder feature to the input of block i (U-Net skips); the last
    entry is concatenated before to_rgb.
    """

    def __init__(self, widths: list[int], hp: dict, skip_channels: list[int] | None = None):
        super().__init__()
        skip_channels = skip_channels or [0] * len(widths)
        self.blocks = nn.ModuleList(
            UpBlock(widths[i] + skip_channels[i], widths[i + 1], hp["convs_per_block"], hp["upsampling"], hp["norm"],
                    hp["activation"], hp["skip"] == "residual")
            for i in range(len(widths) - 1)
        )
        self.to_rgb = conv3x3(widths[-1] + skip_channels[-1], 3)
        self.last = last_act_layer(hp["last_activation"])

    def forward(self, x: torch.Tensor, skips: list[torch.Tensor | None] | None = None) -> torch.Tensor:
        skips = skips or [None] * (len(self.blocks) + 1)
        for block, skip in zip(self.blocks, skips):
            x = block(x if skip is None else torch.cat([x, skip], 1))
        return self.last(self.to_rgb(x if skips[-1] is None else torch.cat([x, skips[-1]], 1)))


class Encoder(nn.Module):
    """Image -> features at every scale (full resolution first), by strided convolutions."""

    def __init__(self, widths: list[int], hp: dict):
        super().__init__()
        rev = widths[::-1]  # full resolution first
        self.stem = nn.Sequential(conv3x3(3, rev[0]), act_layer(hp["activation"]))
        self.downs = nn.ModuleList(
            nn.Sequential(nn.Conv2d(rev[i], rev[i + 1], 4, stride=2, padding=1), norm_layer(hp["norm"], rev[i + 1]),
                          act_layer(hp["activation"]))
            for i in range(len(rev) - 1)
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = [self.stem(x)]
        for down in self.downs:
            features.append(down(features[-1]))
        return features


class LatentGenerator(nn.Module):
    """DCGAN-like: latent vector -> linear -> low-resolution map -> up blocks -> image."""

    family = "dcgan"

    def __init__(self, hp: dict, size: int):
        super().__init__()
        widths = block_widths(hp["base_width"], hp["up_blocks"])
        self.start = size // 2 ** hp["up_blocks"]
        self.project = nn.Linear(LATENT_DIM, widths[0] * self.start**2)
        self.stem = nn.Sequential(norm_layer(hp["norm"], widths[0]), act_layer(hp["activation"]))
        self.decoder = Decoder(widths, hp)
        self.channels = widths[0]

    def draw_latents(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        return (torch.randn(n, LATENT_DIM, generator=generator),)

    def synthesize(self, latents: tuple[torch.Tensor, ...]) -> torch.Tensor:
        (z,) = latents
        return self.decoder(self.stem(self.project(z).view(len(z), self.channels, self.start, self.start)))

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return self.synthesize(self.draw_latents(n, generator))


class AutoEncoder(nn.Module):
    """Encoder -> bottleneck -> decoder; emits reconstructions of (held-out) real crops."""

    family = "autoencoder"

    def __init__(self, hp: dict, size: int):
        super().__init__()
        widths = block_widths(hp["base_width"], hp["up_blocks"])
        self.encoder = Encoder(widths, hp)
        self.bottleneck = nn.Conv2d(widths[0], widths[0], 1)
        self.decoder = Decoder(widths, hp)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.bottleneck(self.encoder(x)[-1]))


class VariationalAutoEncoder(nn.Module):
    """VAE with a spatial Gaussian latent (as the image codecs of latent diffusion): emits reconstructions.

    Samples from its prior are not emitted: after a few hundred steps they are texture noise, which
    would teach a detector that "noisy means fake".
    """

    family = "vae"

    def __init__(self, hp: dict, size: int):
        super().__init__()
        widths = block_widths(hp["base_width"], hp["up_blocks"])
        self.encoder = Encoder(widths, hp)
        self.to_posterior = nn.Conv2d(widths[0], 2 * VAE_LATENT_CHANNELS, 1)
        self.from_latent = nn.Conv2d(VAE_LATENT_CHANNELS, widths[0], 1)
        self.decoder = Decoder(widths, hp)

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_var = self.to_posterior(self.encoder(x)[-1]).chunk(2, 1)
        return mean, log_var.clamp(-10, 10)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.from_latent(z))

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.posterior(x)[0])


class UNet(nn.Module):
    """U-Net restorer: encoder features are concatenated into the decoder at every scale (skip = "unet").

    Trained to restore degraded crops (blurred, noisy), as image-to-image generators do; emits restorations of
    held-out real crops.
    """

    family = "unet"

    def __init__(self, hp: dict, size: int):
        super().__init__()
        widths = block_widths(hp["base_width"], hp["up_blocks"])
        self.encoder = Encoder(widths, hp)
        # Skips enter block i at its input resolution; the deepest one is the decoder input itself.
        self.decoder = Decoder(widths, hp, skip_channels=[0] + widths[1:])

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        features = self.encoder(x)[::-1]  # deepest first, like the decoder
        return self.decoder(features[0], [None] + features[1:])


class ModulatedConv(nn.Module):
    """StyleGAN2 modulated (and optionally demodulated) convolution, optionally transposed (2x up)."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, style_dim: int, demodulate: bool, transposed: bool = False):
        super().__init__()
        shape = (in_ch, out_ch, kernel, kernel) if transposed else (out_ch, in_ch, kernel, kernel)
        self.weight = nn.Parameter(torch.randn(shape) / math.sqrt(in_ch * kernel * kernel))
        self.bias = nn.Parameter(torch.zeros(out_ch))
        self.style = nn.Linear(style_dim, in_ch)
        nn.init.ones_(self.style.bias)
        self.demodulate, self.transposed, self.kernel = demodulate, transposed, kernel

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        # Scale the input by the style and the output by the demodulation coefficients: the same result as
        # modulating a per-sample weight (StyleGAN2's non-fused path), without a slow grouped convolution.
        s = self.style(w)  # (n, in)
        x = x * s[:, :, None, None]
        if self.transposed:
            out = F.conv_transpose2d(x, self.weight, stride=2, padding=1)
            weight = self.weight.transpose(0, 1)[None] * s[:, None, :, None, None]
        else:
            out = F.conv2d(x, self.weight, padding=self.kernel // 2)
            weight = self.weight[None] * s[:, None, :, None, None]
        if self.demodulate:
            out = out * torch.rsqrt(weight.pow(2).sum((2, 3, 4)) + 1e-8)[:, :, None, None]
        return out + self.bias[None, :, None, None]


class StyleLayer(nn.Module):
    """Modulated conv -> per-pixel noise -> (adaptive norm unless norm is "none") -> activation."""

    def __init__(self, in_ch: int, out_ch: int, hp: dict, style_dim: int, transposed: bool = False, shuffle: bool = False):
        super().__init__()
        demodulate = hp["norm"] == "none"  # StyleGAN2; otherwise StyleGAN1-like adaptive normalisation
        self.conv = ModulatedConv(in_ch, out_ch * (4 if shuffle else 1), 4 if transposed else 3, style_dim, demodulate, transposed)
        if shuffle:
            icnr_(self.conv)
        self.shuffle = nn.PixelShuffle(2) if shuffle else nn.Identity()
        self.noise_strength = nn.Parameter(torch.zeros(1, out_ch, 1, 1))  # StyleGAN: noise enters as training wants
        self.norm = None if demodulate else norm_layer(hp["norm"], out_ch)
        self.norm_style = None if demodulate else nn.Linear(style_dim, 2 * out_ch)
        self.act = act_layer(hp["activation"])

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        x = self.shuffle(self.conv(x, w))
        x = x + self.noise_strength * noise[:, None, : x.shape[2], : x.shape[3]]
        if self.norm is not None:
            scale, shift = self.norm_style(w)[:, :, None, None].chunk(2, 1)
            x = self.norm(x) * (1 + scale) + shift
        return self.act(x)


class StyleBlock(nn.Module):
    """One style-modulated up block: the member's upsampling, then `convs_per_block` modulated convolutions in all."""

    def __init__(self, in_ch: int, out_ch: int, hp: dict, style_dim: int):
        super().__init__()
        up = hp["upsampling"]
        self.resize = resize_by_two(up)
        self.pre_resize = up in ("nearest", "bilinear")
        first = StyleLayer(in_ch, out_ch, hp, style_dim, transposed=up == "transposed", shuffle=up == "pixel_shuffle")
        self.layers = nn.ModuleList([first] + [StyleLayer(out_ch, out_ch, hp, style_dim) for _ in range(hp["convs_per_block"] - 1)])
        self.shortcut = nn.Conv2d(in_ch, out_ch, 1) if hp["skip"] == "residual" else None

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        y = self.resize(x) if self.pre_resize else x
        for layer in self.layers:
            y = layer(y, w, noise)
        if self.shortcut is not None:
            y = y + self.shortcut(self.resize(x))
        return y


class StyleGenerator(nn.Module):
    """StyleGAN-like: mapping MLP z -> w, learned constant, style-modulated up blocks with noise, modulated to_rgb."""

    family = "style"

    def __init__(self, hp: dict, size: int):
        super().__init__()
        widths = block_widths(hp["base_width"], hp["up_blocks"])
        self.start, self.size = size // 2 ** hp["up_blocks"], size
        self.mapping = nn.Sequential(nn.Linear(LATENT_DIM, LATENT_DIM), nn.LeakyReLU(0.2), nn.Linear(LATENT_DIM, LATENT_DIM), nn.LeakyReLU(0.2))
        self.constant = nn.Parameter(torch.randn(1, widths[0], self.start, self.start))
        self.blocks = nn.ModuleList(StyleBlock(widths[i], widths[i + 1], hp, LATENT_DIM) for i in range(hp["up_blocks"]))
        self.to_rgb = ModulatedConv(widths[-1], 3, 1, LATENT_DIM, demodulate=False)
        self.last = last_act_layer(hp["last_activation"])

    def draw_latents(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        return torch.randn(n, LATENT_DIM, generator=generator), torch.randn(n, self.size, self.size, generator=generator)

    def synthesize(self, latents: tuple[torch.Tensor, ...]) -> torch.Tensor:
        z, noise = latents
        w = self.mapping(z)
        x = self.constant.expand(len(z), -1, -1, -1)
        for block in self.blocks:
            x = block(x, w, noise)
        return self.last(self.to_rgb(x, w))

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return self.synthesize(self.draw_latents(n, generator))


FAMILIES: dict[str, type[nn.Module]] = {
    cls.family: cls for cls in (LatentGenerator, AutoEncoder, VariationalAutoEncoder, UNet, StyleGenerator)
}


def build_generator(family: str, hp: dict, size: int) -> nn.Module:
    return FAMILIES[family](hp, size)


def count_convs(module: nn.Module) -> int:
    return sum(isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, ModulatedConv)) for m in module.modules())


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
