"""The design vocabulary: the hyperparameters of a generator's design and its loss types (zoo members, parsing heads)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["continuous", "discrete"]


@dataclass(frozen=True)
class Hyperparameter:
    """One column of generators.parquet and one parsing head.

    Continuous ones are regressed on the min-max scale [low, high]; discrete ones classified over
    `choices`.
    """

    name: str
    kind: Kind
    choices: tuple[str, ...] = ()
    low: float = 0.0
    high: float = 1.0
    description: str = ""


# Modelled on Asnani et al.'s 15 architecture hyperparameters (9 continuous, 6 discrete).
HYPERPARAMETERS: tuple[Hyperparameter, ...] = (
    Hyperparameter("up_blocks", "continuous", low=2, high=4, description="upsampling blocks"),
    Hyperparameter("convs_per_block", "continuous", low=1, high=3, description="convolutions in each block"),
    Hyperparameter("conv_layers", "continuous", low=3, high=24, description="total convolution layers (encoder included)"),
    Hyperparameter("base_width", "continuous", low=8, high=24, description="channels of the last block"),
    Hyperparameter("log10_params", "continuous", low=4.0, high=7.0, description="log10 of the parameter count"),
    Hyperparameter("upsampling", "discrete", ("transposed", "nearest", "bilinear", "pixel_shuffle")),
    Hyperparameter("norm", "discrete", ("batch", "instance", "group", "none")),
    Hyperparameter("activation", "discrete", ("relu", "leaky_relu", "elu", "silu")),
    Hyperparameter("last_activation", "discrete", ("tanh", "sigmoid", "none")),
    # "unet": encoder features concatenated into the decoder at every scale (the U-Net family).
    Hyperparameter("skip", "discrete", ("none", "residual", "unet")),
)

# The training objective, multi-label: a member is trained with one or more of these.
LOSS_TYPES: tuple[str, ...] = ("ns_gan", "lsgan", "wgan_gp", "hinge", "l1", "l2", "perceptual", "kl")


def hyperparameter(name: str) -> Hyperparameter:
    return next(h for h in HYPERPARAMETERS if h.name == name)
