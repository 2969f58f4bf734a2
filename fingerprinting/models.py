"""``load_fingerprinter``: a fingerprint model by name ("spectral", "default") or checkpoint path."""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from fingerprinting.fingerprinter import Fingerprinter

if TYPE_CHECKING:
    from fingerprinting.learned import LearnedFingerprinter

log = logging.getLogger(__name__)

DEFAULT_CHECKPOINT = Path(__file__).resolve().parent / "weights" / "default.safetensors"


def load_fingerprinter(name: str | os.PathLike = "default") -> Fingerprinter:
    """``"spectral"``; ``"default"`` (the shipped checkpoint, else spectral with a warning); or a checkpoint path."""
    if name == "spectral":
        from fingerprinting.spectral import SpectralFingerprinter

        return SpectralFingerprinter()
    if name == "default":
        if DEFAULT_CHECKPOINT.is_file():
            return load_learned(DEFAULT_CHECKPOINT)
        log.warning("no shipped checkpoint at %s: using the training-free spectral fingerprint", DEFAULT_CHECKPOINT)
        return load_fingerprinter("spectral")
    path = Path(name)
    if path.is_file():
        return load_learned(path)
    raise ValueError(f"unknown fingerprinter {str(name)!r}: use 'spectral', 'default' or a checkpoint file path")


def load_learned(path: str | os.PathLike) -> LearnedFingerprinter:
    """A ``Fingerprinter`` from a checkpoint file (the .safetensors or its .json), with its verdict calibration and parsing policy where it has them."""
    # Imported here so loading, cropping and the spectral fingerprint work without the learned model.
    from fingerprinting.checkpoint import load_checkpoint, load_parsing_policy, load_verdict_calibration
    from fingerprinting.learned import LearnedFingerprinter

    checkpoint = load_checkpoint(path)
    return LearnedFingerprinter(
        checkpoint,
        verdict_calibrator=load_verdict_calibration(path, checkpoint.version),
        parsing_policy=load_parsing_policy(path, checkpoint.version),
    )
