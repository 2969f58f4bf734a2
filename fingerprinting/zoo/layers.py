"""Name -> layer factories (timm-style) that turn a member's hyperparameters into modules."""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

_ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": lambda: nn.ReLU(),
    "leaky_relu": lambda: nn.LeakyReLU(0.2),
    "elu": lambda: nn.ELU(),
    "silu": lambda: nn.SiLU(),
}

_LAST_ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "tanh": lambda: nn.Tanh(),
    "sigmoid": lambda: nn.Sigmoid(),
    "none": lambda: nn.Identity(),
}


def _groups(channels: int) -> int:
    """The largest of 8, 4, 2, 1 that divides `channels` (GroupNorm needs an exact split)."""
    return next(g for g in (8, 4, 2, 1) if channels % g == 0)


_NORMS: dict[str, Callable[[int], nn.Module]] = {
    "batch": lambda c: nn.BatchNorm2d(c),
    "instance": lambda c: nn.InstanceNorm2d(c, affine=True),
    "group": lambda c: nn.GroupNorm(_groups(c), c),
    "none": lambda c: nn.Identity(),
}


def act_layer(name: str) -> nn.Module:
    return _ACTIVATIONS[name]()


def last_act_layer(name: str) -> nn.Module:
    return _LAST_ACTIVATIONS[name]()


def norm_layer(name: str, channels: int) -> nn.Module:
    return _NORMS[name](channels)


def conv3x3(in_ch: int, out_ch: int) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, 3, padding=1)


def upsample_layer(name: str, in_ch: int, out_ch: int) -> nn.Module:
    """Double the resolution the way `name` does: each leaves its own trace in the spectrum."""
    if name == "transposed":
        return nn.ConvTranspose2d(in_ch, out_ch, 4, stride=2, padding=1)
    if name in ("nearest", "bilinear"):
        interpolate = nn.Upsample(scale_factor=2, mode=name, **({"align_corners": False} if name == "bilinear" else {}))
        return nn.Sequential(interpolate, conv3x3(in_ch, out_ch))
    if name == "pixel_shuffle":
        conv = conv3x3(in_ch, out_ch * 4)
        icnr_(conv)
        return nn.Sequential(conv, nn.PixelShuffle(2))
    raise KeyError(name)


def icnr_(conv: nn.Module, scale: int = 2) -> None:
    """ICNR initialisation (Aitken et al., 2017) of a conv feeding a pixel shuffle: the sub-pixel kernels start
    equal, as in common practice, so the layer starts as nearest upsampling and its checkerboard comes from
    training, not from initialisation. Works on any module with `weight` (out, in, k, k) and `bias` (out,)."""
    with torch.no_grad():
        conv.weight.copy_(conv.weight[:: scale**2].repeat_interleave(scale**2, dim=0))
        conv.bias.copy_(conv.bias[:: scale**2].repeat_interleave(scale**2))


def resize_by_two(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """Parameter-free 2x upsampling for shortcuts and style blocks (transposed / pixel shuffle use nearest)."""
    mode = "bilinear" if name == "bilinear" else "nearest"
    kwargs = {"align_corners": False} if mode == "bilinear" else {}
    return lambda x: nn.functional.interpolate(x, scale_factor=2, mode=mode, **kwargs)
