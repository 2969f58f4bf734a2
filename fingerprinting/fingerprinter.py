"""The fingerprinter interface every model implements (``fingerprinting.models`` loads one by name)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from fingerprinting.calibration import VerdictCalibrator
    from fingerprinting.shown import ParsingPolicy


@dataclass(frozen=True)
class FingerprintOutput:
    """What a fingerprinter says about n crops.

    ``vectors``: (n, dim) float32, L2-normalised. ``fake_scores``: (n,) float32 in [0, 1], or None
    without a detection head. ``parsed``: n rows of ``parsed_*`` columns (see ``parsing``), or None
    without parsing heads.
    """

    vectors: np.ndarray
    fake_scores: np.ndarray | None = None
    parsed: pd.DataFrame | None = None


class ModelIdentity(Protocol):
    """What a store records and checks of a fingerprint model: its name, version and vector size.

    Every ``Fingerprinter`` is one; ``models.describe_fingerprinter`` gives one without loading a
    network. The helpers below (attribution rule, verdict calibration, parsing policy) take either.
    """

    name: str
    version: str
    dim: int


@runtime_checkable
class Fingerprinter(ModelIdentity, Protocol):
    """A fingerprint model. ``fingerprint`` takes uint8 RGB crops (n, s, s, 3), s == ``crop_size``.

    A fingerprinter that also accepts smaller square crops (an image smaller than ``crop_size``,
    taken at its own size rather than padded) sets a class attribute ``size_agnostic = True``;
    without it the embedder pads such images (see ``crops``). One whose space calls for another
    attribution rule than ``clustering.attribution.OpenSetAttributor``'s defaults sets a class
    attribute ``attributor_params`` (keyword arguments of that class). One with a calibrated verdict
    (``fingerprinting.calibration``) has an attribute ``verdict_calibrator``; one with a parsing
    policy (``fingerprinting.shown``) an attribute ``parsing_policy``; a learned one whose fake scores
    also come from a stacked detector (``fingerprinting.stacked``) an attribute ``detector``.
    """

    crop_size: int

    def fingerprint(self, crops: np.ndarray) -> FingerprintOutput: ...


def is_size_agnostic(fingerprinter: Fingerprinter) -> bool:
    return bool(getattr(fingerprinter, "size_agnostic", False))


def verdict_calibrator(fingerprinter: ModelIdentity) -> VerdictCalibrator | None:
    """The fingerprinter's verdict calibration (``fingerprinting.calibration``), or None: no verdicts.

    None for a fingerprinter without a detection head (the spectral one: no fake score to judge) and
    for a checkpoint without a calibration made for it (``genprint calibrate`` makes one).
    """
    return getattr(fingerprinter, "verdict_calibrator", None)


def parsing_policy(fingerprinter: ModelIdentity) -> ParsingPolicy | None:
    """The fingerprinter's parsing policy (``fingerprinting.shown``): which heads it shows, calibrated how; None: all, uncalibrated."""
    return getattr(fingerprinter, "parsing_policy", None)


def attributor_params(fingerprinter: ModelIdentity) -> dict[str, object]:
    """Keyword arguments of ``OpenSetAttributor`` that suit this fingerprinter's vectors (empty: its defaults)."""
    return dict(getattr(fingerprinter, "attributor_params", {}))
