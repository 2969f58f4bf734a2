"""The safe checkpoint format: safetensors weights beside a json config; loading executes no code.

Only writing and loading weights import torch: the config and the sidecars read without it.

A checkpoint ``NAME.safetensors`` has a sibling ``NAME.json`` with the architecture, the head spec,
the detector's calibration, a version string, the training options and the sha256 of the weights
file. Only those two formats are ever read (never pickle), and the weights must match the recorded
checksum before they are parsed.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from safetensors import SafetensorError

from clustering.atomic_file import write_bytes_atomic, write_text_atomic

if TYPE_CHECKING:
    from fingerprinting.calibration import VerdictCalibrator
    from fingerprinting.network import FingerprintNet
    from fingerprinting.shown import ParsingPolicy
    from fingerprinting.stacked import StackedDetector

log = logging.getLogger(__name__)

FORMAT = "genprint-fingerprint-checkpoint"
FORMAT_VERSION = 1
BASE_VERSION = "learned-1"
WEIGHTS_SUFFIX = ".safetensors"


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: wrong format, missing config, checksum mismatch, bad weights.

    A ValueError, so every caller that turns bad arguments into a plain message (the CLI) does so here too.
    """


@dataclass(frozen=True)
class Calibration:
    """Platt scaling of the detector's logit: fake_score = sigmoid(scale * logit + bias)."""

    scale: float = 1.0
    bias: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"method": "platt", "scale": self.scale, "bias": self.bias}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibration:
        if data.get("method") != "platt":
            raise CheckpointError(f"unknown calibration method {data.get('method')!r}")
        return cls(scale=float(data["scale"]), bias=float(data["bias"]))


@dataclass
class Checkpoint:
    """A loaded (or about to be saved) fingerprint network with everything needed to use it."""

    net: FingerprintNet
    calibration: Calibration = field(default_factory=Calibration)
    training: dict[str, Any] = field(default_factory=dict)  # zoo options, seed, epochs, validation figures
    version: str = ""
    # Share of the vector's squared norm given to the training-free spectral fingerprint, appended to
    # the learned embedding (0: the learned embedding alone). Chosen on held-out members in training.
    spectral_weight: float = 0.0
    spectral_options: dict[str, Any] = field(default_factory=dict)  # SpectralFingerprinter arguments, pinned


def config_path(weights_path: Path) -> Path:
    return weights_path.with_suffix(".json")


def _weights_path(path: str | os.PathLike) -> Path:
    path = Path(path)
    if path.suffix == ".json":
        path = path.with_suffix(WEIGHTS_SUFFIX)
    if path.suffix != WEIGHTS_SUFFIX:
        raise CheckpointError(f"{path}: not a genprint checkpoint (expected a {WEIGHTS_SUFFIX} file with a .json beside it)")
    return path


def save_checkpoint(checkpoint: Checkpoint, path: str | os.PathLike) -> Path:
    """Write ``path`` (.safetensors) and its .json; returns the weights path. The version ends in the checksum."""
    from safetensors.torch import save as save_safetensors_bytes  # torch: only where weights are written or read

    weights_path = _weights_path(path)
    state = {name: tensor.detach().contiguous().cpu() for name, tensor in checkpoint.net.state_dict().items()}
    weights = save_safetensors_bytes(state)
    sha256 = hashlib.sha256(weights).hexdigest()
    outputs = {
        "calibration": checkpoint.calibration.to_dict(),
        "spectral_weight": checkpoint.spectral_weight,
        "spectral_options": checkpoint.spectral_options,
    }
    # The base names the architecture and training recipe; the suffix pins these exact weights and
    # every setting that changes the outputs.
    digest = hashlib.sha256(weights + json.dumps(outputs, sort_keys=True).encode()).hexdigest()
    version = f"{checkpoint.version.split('+')[0] or BASE_VERSION}+{digest[:12]}"
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "version": version,
        "network": checkpoint.net.config.to_dict(),
        **outputs,
        "training": checkpoint.training,
        "weights_file": weights_path.name,
        "weights_sha256": sha256,
    }
    write_bytes_atomic(weights_path, weights)
    write_text_atomic(config_path(weights_path), json.dumps(config, indent=2, sort_keys=True) + "\n")
    checkpoint.version = version
    return weights_path


def read_config(path: str | os.PathLike) -> dict[str, Any]:
    """The json config of a checkpoint, checked for format."""
    json_path = config_path(_weights_path(path))
    try:
        config = json.loads(json_path.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{json_path}: missing checkpoint config (every .safetensors needs its .json)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{json_path}: not valid json ({exc})") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise CheckpointError(f"{json_path}: not a genprint checkpoint config")
    if config.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{json_path}: checkpoint format version {config.get('format_version')}, this genprint reads {FORMAT_VERSION}")
    return config


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read, verify and rebuild a checkpoint (network in eval mode). Raises CheckpointError."""
    from safetensors.torch import load as load_safetensors_bytes

    from fingerprinting.network import FingerprintNet, NetworkConfig

    weights_path = _weights_path(path)
    config = read_config(weights_path)
    try:
        weights = weights_path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"{weights_path}: missing weights file") from None
    sha256 = hashlib.sha256(weights).hexdigest()
    if sha256 != config.get("weights_sha256"):
        raise CheckpointError(
            f"{weights_path}: checksum mismatch (sha256 {sha256[:12]}..., config expects "
            f"{str(config.get('weights_sha256'))[:12]}...): the weights were changed or damaged"
        )
    try:
        state = load_safetensors_bytes(weights)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{weights_path}: not a valid safetensors file ({exc})") from None
    try:
        net = FingerprintNet(NetworkConfig.from_dict(config["network"]))
        net.load_state_dict(state, strict=True)
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{weights_path}: weights do not fit the recorded architecture ({exc})") from None
    net.eval()
    return Checkpoint(
        net=net,
        calibration=Calibration.from_dict(config["calibration"]),
        training=dict(config.get("training", {})),
        version=str(config["version"]),
        spectral_weight=float(config.get("spectral_weight", 0.0)),
        spectral_options=dict(config.get("spectral_options", {})),
    )


def load_parsing_policy(path: str | os.PathLike, version: str) -> ParsingPolicy | None:
    """The sidecar parsing policy (``shown.sidecar_path``) of the checkpoint at ``path``, if there is one decided for this version."""
    from fingerprinting.shown import load_policy

    try:
        return load_policy(_weights_path(path), version)
    except ValueError as exc:
        raise CheckpointError(str(exc)) from None


def load_verdict_calibration(path: str | os.PathLike, version: str) -> VerdictCalibrator | None:
    """The sidecar calibration (``calibration.sidecar_path``) of the checkpoint at ``path``, if there is one made for this version.

    A calibration made for other weights (a retrained checkpoint beside an old sidecar) would give
    verdicts of thresholds that do not fit its scores: it is left out with a warning.
    """
    from fingerprinting.calibration import VerdictCalibrator, sidecar_path

    path = sidecar_path(_weights_path(path))
    if not path.is_file():
        return None
    try:
        calibrator = VerdictCalibrator.load(path)
    except ValueError as exc:
        raise CheckpointError(str(exc)) from None
    if calibrator.model_version_ != version:
        log.warning("%s was calibrated for %s, not %s: no verdicts until `genprint calibrate` is run again", path, calibrator.model_version_, version)
        return None
    return calibrator


def detector_digest(path: str | os.PathLike) -> str | None:
    """The digest of the stacked detector beside the checkpoint at ``path`` (``stacked.sidecar_path``), or None: it has none."""
    from fingerprinting.stacked import file_digest, sidecar_path

    sidecar = sidecar_path(_weights_path(path))
    return file_digest(sidecar) if sidecar.is_file() else None


def load_detector(path: str | os.PathLike, version: str) -> StackedDetector | None:
    """The stacked detector beside the checkpoint at ``path``, if there is one fitted for this version.

    A detector fitted on another checkpoint's vectors and head would score features it never saw; its
    digest is already part of the model's version (``describe_learned`` reads no more than the file's
    bytes), so it is an error rather than left out.
    """
    from fingerprinting.stacked import StackedDetector, sidecar_path

    sidecar = sidecar_path(_weights_path(path))
    if not sidecar.is_file():
        return None
    try:
        detector = StackedDetector.load(sidecar)
    except ValueError as exc:
        raise CheckpointError(str(exc)) from None
    if detector.fitted_for_ != version:
        raise CheckpointError(f"{sidecar} was fitted for checkpoint {detector.fitted_for_}, not {version}: "
                              "run `genprint fit-detector` for this checkpoint again, or remove the file")
    return detector
