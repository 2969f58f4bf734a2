"""Run one external super-resolution network (ncnn `.param`/`.bin`) on CPU, padded and post-processed as its own tool does.

Real-CUGAN (after realcugan-ncnn-vulkan's `process_cpu`): the input in [0, 1] is reflect-padded by 18 px
per side at 2x, 14 at 3x and 19 at 4x, and on the bottom and right up to a multiple of 4 (3x) or 2 (2x, 4x);
the unpadded convolutions consume the padding, so the output's top-left `h*scale x w*scale` is the
image. The 4x networks predict a residual: the tool adds the input, nearest-upsampled, before
`x * 255 + 0.5`. SPAN (span-ncnn-vulkan, whose convolutions are padded): 10 px of reflect padding, the
output cropped by `10 * scale` on each side. Both end as ncnn's `to_pixels` does: truncate and clamp to
0..255.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from fingerprinting.zoo.external.packages import import_ncnn


class UpscaleCheckFailed(RuntimeError):
    """An external network's output is out of range or does not look like its input upscaled."""


@dataclass(frozen=True)
class Layout:
    """How a family's networks are fed and read."""

    input_blob: str
    output_blob: str
    pad: dict[int, int]  # scale -> reflect padding per side, in input pixels
    pad_multiple: dict[int, int]  # scale -> bottom/right padding rounds the input up to a multiple of this
    output_consumes_padding: bool  # unpadded convolutions: the output is (padded - 2 * pad) * scale
    residual_scales: tuple[int, ...]  # scales whose network predicts a residual over the nearest-upsampled input


REALCUGAN = Layout("in0", "out0", {2: 18, 3: 14, 4: 19}, {2: 2, 3: 4, 4: 2}, True, (4,))
SPAN = Layout("data", "output", {2: 10, 4: 10}, {2: 1, 4: 1}, False, ())

# Raw outputs (0..1 scale) overshoot at hard edges (Real-CUGAN pro 2x conservative rings from -6.5 to 3.1 on
# a black/white edge, 2.6 % of its values), which the clamp keeps as the tool does; a broken run (misread
# blobs, a missing residual) is far outside over much of the image.
RANGE_SLACK = 0.1
MAX_OUT_OF_RANGE = 0.1
# "Looks like its input upscaled", lenient enough for denoising models on noisy or flat patches (measured over
# all 25 networks: correlation with a bicubic upscale at least 0.72 on patches of std >= 8, mean absolute
# difference at most 37 grey levels); a misaligned or garbage output fails both.
MIN_BICUBIC_CORRELATION = 0.5
CORRELATION_MIN_STD = 8.0
MAX_BICUBIC_DIFFERENCE = 48.0


class Upscaler:
    """One network loaded once; `upscale` maps an (h, w, 3) uint8 image to (h*scale, w*scale, 3) uint8."""

    def __init__(self, param: Path, weights: Path, scale: int, layout: Layout, threads: int = 1) -> None:
        ncnn = import_ncnn()
        self.scale, self.layout, self._ncnn = scale, layout, ncnn
        self.net = ncnn.Net()
        self.net.opt.use_vulkan_compute = False
        self.net.opt.num_threads = threads
        if self.net.load_param(str(param)) != 0 or self.net.load_model(str(weights)) != 0:
            raise UpscaleCheckFailed(f"ncnn could not load {param} / {weights}")

    def raw(self, pixels: np.ndarray) -> np.ndarray:
        """The network's output as float (3, H, W) on the 0..1 scale, any residual added, before clamping."""
        layout, scale = self.layout, self.scale
        height, width = pixels.shape[:2]
        pad, multiple = layout.pad[scale], layout.pad_multiple[scale]
        padded = np.pad(pixels, ((pad, pad + (-height) % multiple), (pad, pad + (-width) % multiple), (0, 0)), mode="reflect")
        # a named array: ncnn reads this buffer while building the Mat (never hand it a temporary)
        padded = np.ascontiguousarray(padded, dtype=np.uint8)
        mat = self._ncnn.Mat.from_pixels(padded, self._ncnn.Mat.PixelType.PIXEL_RGB, padded.shape[1], padded.shape[0])
        mat.substract_mean_normalize([], [1 / 255.0] * 3)
        extractor = self.net.create_extractor()
        extractor.input(layout.input_blob, mat)
        status, out = extractor.extract(layout.output_blob)
        if status != 0:
            raise UpscaleCheckFailed(f"ncnn extraction failed ({status}) on a {width}x{height} input")
        result = np.array(out, dtype=np.float32, copy=True)
        offset = 0 if layout.output_consumes_padding else pad * scale
        result = result[:, offset : offset + height * scale, offset : offset + width * scale]
        if result.shape[1:] != (height * scale, width * scale):
            raise UpscaleCheckFailed(f"output {result.shape[1:]} from a {width}x{height} input at {scale}x")
        if scale in layout.residual_scales:
            source = pixels.astype(np.float32).transpose(2, 0, 1) / 255
            result = result + source.repeat(scale, axis=1).repeat(scale, axis=2)
        return result

    def upscale(self, pixels: np.ndarray) -> np.ndarray:
        """The network's image of `pixels`, checked (in range, like a bicubic upscale of the input)."""
        result = self.raw(pixels)
        outside = np.mean((result < -RANGE_SLACK) | (result > 1 + RANGE_SLACK))
        if outside > MAX_OUT_OF_RANGE:
            raise UpscaleCheckFailed(f"{outside:.1%} of the output is far outside 0..1 (range {result.min():.2f}..{result.max():.2f})")
        image = np.clip(np.floor(result * 255 + 0.5), 0, 255).astype(np.uint8).transpose(1, 2, 0)
        reference = bicubic(pixels, image.shape[1::-1])
        difference = float(np.abs(reference - image).mean())
        if difference > MAX_BICUBIC_DIFFERENCE:
            raise UpscaleCheckFailed(f"the output differs by {difference:.1f} grey levels on average from a bicubic upscale of the input")
        if pixels.std() >= CORRELATION_MIN_STD and (correlation := bicubic_correlation(pixels, image)) < MIN_BICUBIC_CORRELATION:
            raise UpscaleCheckFailed(f"the output correlates {correlation:.2f} with a bicubic upscale of the input (< {MIN_BICUBIC_CORRELATION})")
        return image


def bicubic(small: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """`small` resized to (width, height) `size` with a bicubic filter, as float."""
    return np.asarray(Image.fromarray(small).resize(size, Image.Resampling.BICUBIC), dtype=np.float64)


def bicubic_correlation(small: np.ndarray, large: np.ndarray) -> float:
    """Pearson correlation between `large` and `small` upscaled to its size with a bicubic filter."""
    return float(np.corrcoef(bicubic(small, large.shape[1::-1]).ravel(), large.astype(np.float64).ravel())[0, 1])
