"""An ncnn `.param` file read as layers, and the design facts of a network read from them.

Layer types that decide the zoo's hyperparameters: `Deconvolution` (transposed convolution), `PixelShuffle`
and `Interp` (interpolation) upsample; `BatchNorm`/`InstanceNorm`/`LayerNorm`/`GroupNorm` normalise;
activations are layers of their own (`ReLU`, `Swish`, `Sigmoid`, ...) or fused into a convolution as its
`activation_type` (param 9).
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

PARAM_MAGIC = "7767517"
CONV_TYPES = ("Convolution", "ConvolutionDepthWise", "Deconvolution", "DeconvolutionDepthWise")
WEIGHTED_TYPES = (*CONV_TYPES, "InnerProduct")
NORM_TYPES = {"BatchNorm": "batch", "InstanceNorm": "instance", "LayerNorm": "group", "GroupNorm": "group"}
# ncnn's fused activation_type values and stand-alone activation layers, in the zoo's vocabulary
FUSED_ACTIVATIONS = {1: "relu", 2: "leaky_relu", 3: "clip", 4: "sigmoid", 5: "mish", 6: "hardswish"}
ACTIVATION_LAYERS = {"ReLU": "relu", "Swish": "silu", "Sigmoid": "sigmoid", "TanH": "tanh", "ELU": "elu", "Mish": "mish",
                     "HardSwish": "hardswish", "HardSigmoid": "hardsigmoid", "PReLU": "leaky_relu", "GELU": "gelu"}
PASS_THROUGH = ("PixelShuffle", "Crop", "Split", "Interp", "BinaryOp", "Concat", "Padding", "Reshape")


@dataclass(frozen=True)
class Layer:
    """One line of a `.param` file: type, name, input and output blobs, and its `key=value` parameters."""

    type: str
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    params: dict[str, str]

    def int_param(self, key: str, default: int = 0) -> int:
        return int(self.params.get(key, default))

    @property
    def fused_activation(self) -> str | None:
        if self.type not in WEIGHTED_TYPES:
            return None
        kind = self.int_param("9")
        if kind == 1 and "-23310" in self.params and float(self.params["-23310"].split(",")[1]) != 0:
            return "leaky_relu"  # ReLU with a slope in its activation parameters
        return FUSED_ACTIVATIONS.get(kind)

    @property
    def activation(self) -> str | None:
        if self.type == "ReLU":
            return "leaky_relu" if float(self.params.get("0", 0)) != 0 else "relu"
        return ACTIVATION_LAYERS.get(self.type) or self.fused_activation

    @property
    def weight_count(self) -> int:
        """Parameters of a weighted layer: param 6 is the weight count, param 5 says there is one bias per output."""
        if self.type not in WEIGHTED_TYPES:
            return 0
        return self.int_param("6") + (self.int_param("0") if self.int_param("5") else 0)

    @property
    def upsampling(self) -> str | None:
        if self.type == "PixelShuffle":
            return "pixel_shuffle"
        if self.type in ("Deconvolution", "DeconvolutionDepthWise") and max(self.int_param("3", 1), self.int_param("13", self.int_param("3", 1))) > 1:
            return "transposed"
        if self.type == "Interp":
            return {1: "nearest", 2: "bilinear", 3: "bicubic"}.get(self.int_param("0"), "interpolation")
        return None


def read_layers(path: Path) -> list[Layer]:
    lines = Path(path).read_text().split("\n")
    if lines[0].strip() != PARAM_MAGIC:
        raise ValueError(f"{path} is not an ncnn .param file (first line {lines[0]!r})")
    layers = []
    for line in lines[2:]:
        fields = line.split()
        if not fields:
            continue
        kind, name, n_in, n_out = fields[0], fields[1], int(fields[2]), int(fields[3])
        blobs = fields[4 : 4 + n_in + n_out]
        params = dict(field.split("=", 1) for field in fields[4 + n_in + n_out :])
        layers.append(Layer(kind, name, tuple(blobs[:n_in]), tuple(blobs[n_in:]), params))
    return layers


def _last_activation(layers: list[Layer], output_blob: str) -> str:
    """The nonlinearity that produces the output: walk back through layers that only move or add pixels to the first activation or weighted layer."""
    producer = {blob: layer for layer in layers for blob in layer.outputs}
    blob = output_blob
    while blob in producer:
        layer = producer[blob]
        if layer.activation:
            return layer.activation
        if layer.type in WEIGHTED_TYPES:
            return "none"
        if layer.type not in PASS_THROUGH or not layer.inputs:
            return "none"
        blob = layer.inputs[0]
    return "none"


def design_facts(path: Path, output_blob: str) -> dict:
    """The zoo's architecture hyperparameters that a `.param` file shows, plus what it is made of.

    `upsampling` is the last upsampling layer (the one that gives the output its resolution);
    `upsampling_layers` every kind present, in order of first use. `activation` is the most common
    nonlinearity, `last_activation` the one on the output.
    """
    layers = read_layers(path)
    ups = [layer.upsampling for layer in layers if layer.upsampling]
    activations = Counter(layer.activation for layer in layers if layer.activation)
    norms = sorted({NORM_TYPES[layer.type] for layer in layers if layer.type in NORM_TYPES})
    params = sum(layer.weight_count for layer in layers)
    return {
        "upsampling": ups[-1] if ups else "none",
        "upsampling_layers": list(dict.fromkeys(ups)),
        "up_blocks": float(len(ups)),
        "norm": norms[0] if len(norms) == 1 else "+".join(norms) if norms else "none",
        "activation": activations.most_common(1)[0][0] if activations else "none",
        "last_activation": _last_activation(layers, output_blob),
        "conv_layers": float(sum(layer.type in CONV_TYPES for layer in layers)),
        "param_count": params,
        "log10_params": math.log10(params),
        "layer_types": sorted({layer.type for layer in layers}),
    }
