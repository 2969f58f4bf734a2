"""The learned fingerprint as a ``Fingerprinter``: vectors, calibrated fake scores and the parsed design."""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from fingerprinting.checkpoint import Checkpoint
from fingerprinting.models import FingerprintOutput
from fingerprinting.network import HeadSpec, NetworkOutput, to_network_input
from fingerprinting.parsing import LOSS_THRESHOLD, LOSS_TYPES_COLUMN, conform_parsed


class LearnedFingerprinter:
    """Runs a checkpoint's network on uint8 crops (any square side of 32 px and more), in batches."""

    name = "learned"
    size_agnostic = True

    def __init__(self, checkpoint: Checkpoint, crop_size: int = 64, batch_size: int = 256) -> None:
        self.checkpoint = checkpoint
        self.net = checkpoint.net.eval()
        self.version = checkpoint.version
        self.dim = self.net.config.embedding_dim
        self.crop_size = crop_size
        self.batch_size = batch_size

    def fingerprint(self, crops: np.ndarray) -> FingerprintOutput:
        """(n, s, s, 3) uint8 crops -> L2-normalised vectors, fake scores in [0, 1] and parsed_* columns."""
        if crops.ndim != 4 or crops.shape[3] != 3:
            raise ValueError(f"expected crops of shape (n, s, s, 3), got {crops.shape}")
        outputs = [self._run(crops[start : start + self.batch_size]) for start in range(0, len(crops), self.batch_size)]
        if not outputs:
            return FingerprintOutput(np.zeros((0, self.dim), np.float32), np.zeros(0, np.float32), conform_parsed(pd.DataFrame(), 0))
        merged = NetworkOutput(*(_concat([getattr(o, f) for o in outputs]) for f in NetworkOutput._fields))
        calibration = self.checkpoint.calibration
        scores = torch.sigmoid(calibration.scale * merged.fake_logit + calibration.bias)
        return FingerprintOutput(
            vectors=merged.embedding.numpy().astype(np.float32),
            fake_scores=scores.numpy().astype(np.float32),
            parsed=decode_parsed(merged, self.net.config.heads),
        )

    def _run(self, crops: np.ndarray) -> NetworkOutput:
        with torch.inference_mode():
            output = self.net(to_network_input(torch.from_numpy(np.ascontiguousarray(crops))))
        return output._replace(residual=torch.empty(0))  # the residual is only needed in training


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
    columns[LOSS_TYPES_COLUMN] = [[loss for loss, p in zip(spec.loss_types, row) if p >= LOSS_THRESHOLD] for row in probabilities]
    return conform_parsed(pd.DataFrame(columns), len(probabilities))
