"""``load_fingerprinter``: a fingerprint model by name ("spectral", "default") or checkpoint path; ``describe_fingerprinter``: the same model's identity without loading it."""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fingerprinting.fingerprinter import Fingerprinter, ModelIdentity
from fingerprinting.spectral import SpectralFingerprinter

if TYPE_CHECKING:
    from fingerprinting.calibration import VerdictCalibrator
    from fingerprinting.learned import LearnedFingerprinter
    from fingerprinting.shown import ParsingPolicy

log = logging.getLogger(__name__)

DEFAULT_CHECKPOINT = Path(__file__).resolve().parent / "weights" / "default.safetensors"
LEARNED_NAME = "learned"
# Naming in a space whitened against each generator's own scatter: a third to a half fewer
# naming errors on three tuning zoos (see clustering.attribution.OpenSetAttributor).
LEARNED_ATTRIBUTOR_PARAMS: dict[str, Any] = {"whiten": True}
LEARNED_CROP_SIZE = 64


def load_fingerprinter(name: str | os.PathLike = "default") -> Fingerprinter:
    """``"spectral"``; ``"default"`` (the shipped checkpoint, else spectral with a warning); or a checkpoint path."""
    path = _checkpoint_of(name)
    return SpectralFingerprinter() if path is None else load_learned(path)


def describe_fingerprinter(name: str | os.PathLike = "default") -> ModelIdentity:
    """What ``load_fingerprinter(name)`` would give, as a store sees it, without loading a network (or importing torch).

    A checkpoint is described from its json config and sidecars (``LearnedDescription``); its weights
    are read, and checked against the config's checksum, only when the model is loaded to fingerprint.
    """
    path = _checkpoint_of(name)
    return SpectralFingerprinter() if path is None else describe_learned(path)


def _checkpoint_of(name: str | os.PathLike) -> Path | None:
    """The checkpoint file a model name stands for; None: the spectral fingerprint."""
    if name == "spectral":
        return None
    if name == "default":
        if DEFAULT_CHECKPOINT.is_file():
            return DEFAULT_CHECKPOINT
        log.warning("no shipped checkpoint at %s: using the training-free spectral fingerprint", DEFAULT_CHECKPOINT)
        return None
    path = Path(name)
    if path.is_file():
        return path
    raise ValueError(f"unknown fingerprinter {str(name)!r}: use 'spectral', 'default' or a checkpoint file path")


def load_learned(path: str | os.PathLike) -> LearnedFingerprinter:
    """A ``Fingerprinter`` from a checkpoint file (the .safetensors or its .json), with its verdict calibration and parsing policy where it has them."""
    # Imported here so loading, cropping and the spectral fingerprint work without the learned model.
    from fingerprinting.checkpoint import load_checkpoint, load_detector, load_parsing_policy, load_verdict_calibration
    from fingerprinting.learned import LearnedFingerprinter

    checkpoint = load_checkpoint(path)
    fingerprinter = LearnedFingerprinter(checkpoint, parsing_policy=load_parsing_policy(path, checkpoint.version),
                                         detector=load_detector(path, checkpoint.version))
    # Calibrated for the scores the fingerprinter gives, which its detector (if any) is part of.
    fingerprinter.verdict_calibrator = load_verdict_calibration(path, fingerprinter.scores_version)
    return fingerprinter


@dataclass(frozen=True)
class LearnedDescription:
    """A learned checkpoint as ``LearnedFingerprinter`` presents it to a store, from its config: no network.

    Attributes
    ----------
    version, dim : str, int
        ``LearnedFingerprinter``'s, from the checkpoint's version and vector parts (``learned_identity``).
    verdict_calibrator : VerdictCalibrator or None
        Its sidecar verdict calibration, as ``load_learned`` reads it.
    parsing_policy : ParsingPolicy or None
        Its sidecar parsing policy, as ``load_learned`` reads it.
    """

    version: str
    dim: int
    verdict_calibrator: VerdictCalibrator | None = None
    parsing_policy: ParsingPolicy | None = None
    name: str = LEARNED_NAME
    attributor_params: dict[str, Any] = field(default_factory=lambda: dict(LEARNED_ATTRIBUTOR_PARAMS))


def describe_learned(path: str | os.PathLike) -> LearnedDescription:
    """``load_learned(path)``'s name, version, dim, calibration and parsing policy, from the json config and sidecars only."""
    from fingerprinting.checkpoint import detector_digest, load_parsing_policy, load_verdict_calibration, read_config

    config = read_config(path)
    checkpoint_version = str(config["version"])
    scores = scores_version(checkpoint_version, detector_digest(path))
    spectral = spectral_part(float(config.get("spectral_weight", 0.0)), dict(config.get("spectral_options", {})))
    version, dim = learned_identity(scores, int(config["network"]["embedding_dim"]), spectral)
    return LearnedDescription(
        version=version, dim=dim, verdict_calibrator=load_verdict_calibration(path, scores),
        parsing_policy=load_parsing_policy(path, checkpoint_version),
    )


def spectral_part(spectral_weight: float, options: dict[str, Any], crop_size: int = LEARNED_CROP_SIZE) -> SpectralFingerprinter | None:
    """The spectral fingerprint a learned checkpoint appends to its embedding (None: weight 0, none appended)."""
    if spectral_weight <= 0:
        return None
    arguments = {key: tuple(value) if isinstance(value, list) else value for key, value in options.items()}
    return SpectralFingerprinter(crop_size, **arguments)


# How a learned model's head and stacked detector make one fake score (``LearnedFingerprinter.fingerprint``):
# part of the version, so that scores of another rule never pass for these.
SCORE_FUSION = "max"


def scores_version(checkpoint_version: str, detector_digest: str | None) -> str:
    """What a learned model's fake scores depend on: its checkpoint and, where one is beside it, its stacked detector
    (``fingerprinting.stacked``) and the rule fusing it with the head. Verdict calibrations are made for this version."""
    return checkpoint_version if detector_digest is None else f"{checkpoint_version}/detector-{detector_digest[:12]}-{SCORE_FUSION}"


def learned_identity(checkpoint_version: str, embedding_dim: int, spectral: SpectralFingerprinter | None) -> tuple[str, int]:
    """A learned fingerprint's (version, dim): the spectral part's own version too, since its vectors change if that algorithm does.
    ``checkpoint_version`` is its ``scores_version``."""
    if spectral is None:
        return checkpoint_version, embedding_dim
    return f"{checkpoint_version}/spectral-{spectral.version}", embedding_dim + spectral.dim
