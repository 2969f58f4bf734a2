"""The learned fingerprint as a ``Fingerprinter``: vectors, calibrated fake scores and the parsed design."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch

from fingerprinting.checkpoint import Checkpoint
from fingerprinting.models import FingerprintOutput
from fingerprinting.network import HeadSpec, NetworkOutput, inference_copy, to_unshuffled_input
from fingerprinting.parsing import LOSS_TYPES_COLUMN, conform_parsed, decode_loss_types
from fingerprinting.runtime import map_batches
from fingerprinting.spectral import SpectralFingerprinter

if TYPE_CHECKING:
    from fingerprinting.calibration import VerdictCalibrator


def combine_vectors(learned: np.ndarray, spectral: np.ndarray | None, spectral_weight: float) -> np.ndarray:
    """Unit vectors [sqrt(1-w) learned, sqrt(w) spectral]: cosine similarity mixes the two with weight w.

    The learned part brings invariance (JPEG, rescaling); the training-free spectral part keeps the
    idiosyncratic detail (seed-level peaks) that an embedding trained on a few dozen generators
    does not learn to keep.
    """
    if spectral is None or spectral_weight == 0:
        return learned.astype(np.float32)
    return np.concatenate([np.sqrt(1 - spectral_weight) * learned, np.sqrt(spectral_weight) * spectral], 1).astype(np.float32)


class LearnedFingerprinter:
    """Runs a checkpoint's network on uint8 crops (any square side of 32 px and more), in batches."""

    name = "learned"
    size_agnostic = True
    # Naming in a space whitened against each generator's own scatter: a third to a half fewer
    # naming errors on three tuning zoos (see clustering.attribution.OpenSetAttributor).
    attributor_params = {"whiten": True}

    def __init__(
        self, checkpoint: Checkpoint, crop_size: int = 64, batch_size: int = 64, verdict_calibrator: VerdictCalibrator | None = None
    ) -> None:
        self.checkpoint = checkpoint
        # Fake score -> generated / real / unsure (fingerprinting.calibration); None: no verdicts.
        self.verdict_calibrator = verdict_calibrator
        self.net = inference_copy(checkpoint.net)
        self.crop_size = crop_size
        self.batch_size = batch_size
        self.spectral = SpectralFingerprinter(crop_size, **_spectral_arguments(checkpoint.spectral_options)) if checkpoint.spectral_weight > 0 else None
        self.dim = self.net.config.embedding_dim + (self.spectral.dim if self.spectral else 0)
        # The spectral part's own version too: its vectors change if that algorithm changes.
        self.version = checkpoint.version + (f"/spectral-{self.spectral.version}" if self.spectral else "")

    def fingerprint(self, crops: np.ndarray) -> FingerprintOutput:
        """(n, s, s, 3) uint8 crops -> L2-normalised vectors, fake scores in [0, 1] and parsed_* columns."""
        if crops.ndim != 4 or crops.shape[3] != 3:
            raise ValueError(f"expected crops of shape (n, s, s, 3), got {crops.shape}")
        # Batches side by side, each on one thread: see runtime.map_batches.
        outputs = map_batches(self._run, [crops[start : start + self.batch_size] for start in range(0, len(crops), self.batch_size)])
        if not outputs:
            return FingerprintOutput(np.zeros((0, self.dim), np.float32), np.zeros(0, np.float32), conform_parsed(pd.DataFrame(), 0))
        merged = NetworkOutput(*(_concat([getattr(o, f) for o, _ in outputs]) for f in NetworkOutput._fields))
        calibration = self.checkpoint.calibration
        scores = torch.sigmoid(calibration.scale * merged.fake_logit + calibration.bias)
        spectral = np.concatenate([vectors for _, vectors in outputs]) if self.spectral else None
        return FingerprintOutput(
            vectors=combine_vectors(merged.embedding.numpy(), spectral, self.checkpoint.spectral_weight),
            fake_scores=scores.numpy().astype(np.float32),
            parsed=decode_parsed(merged, self.net.config.heads),
        )

    def _run(self, crops: np.ndarray) -> tuple[NetworkOutput, np.ndarray | None]:
        """One batch: the network's outputs and the spectral vectors (its vectors do not depend on the batch)."""
        with torch.inference_mode():
            output = self.net.forward_unshuffled(to_unshuffled_input(torch.from_numpy(np.ascontiguousarray(crops))), with_residual=False)
        return output, self.spectral.fingerprint(crops).vectors if self.spectral else None


def _spectral_arguments(options: dict) -> dict:
    return {key: tuple(value) if isinstance(value, list) else value for key, value in options.items()}


def _concat(parts: list) -> torch.Tensor | tuple[torch.Tensor, ...]:
    if isinstance(parts[0], tuple):
        return tuple(torch.cat(column) for column in zip(*parts))
    return torch.cat(parts)


def decode_parsed(output: NetworkOutput, spec: HeadSpec) -> pd.DataFrame:
    """Head outputs -> the ``parsed_*`` columns of ``fingerprinting.parsing`` (natural units, choice names)."""
    columns: dict[str, object] = {}
    for (name, low, high), column in zip(spec.continuous, output.continuous.T):
        columns[f"parsed_{name}"] = (low + column.numpy() * (high - low)).astype(np.float32)
    for (name, choices), logits in zip(spec.discrete, output.discrete):
        confidence, index = torch.softmax(logits, 1).max(1)
        columns[f"parsed_{name}"] = np.asarray(choices, dtype=object)[index.numpy()]
        columns[f"parsed_{name}_confidence"] = confidence.numpy().astype(np.float32)
    probabilities = torch.sigmoid(output.loss_logits).numpy().astype(np.float32)
    for loss, column in zip(spec.loss_types, probabilities.T):
        columns[f"parsed_loss_{loss}"] = column
    columns[LOSS_TYPES_COLUMN] = decode_loss_types(probabilities, spec.loss_types)
    return conform_parsed(pd.DataFrame(columns), len(probabilities))
