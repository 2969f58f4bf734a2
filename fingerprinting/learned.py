"""The learned fingerprint as a ``Fingerprinter``: vectors, calibrated fake scores (its head's, or the larger of its head's and its stacked detector's) and the parsed design."""
from __future__ import annotations

from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import pandas as pd
import torch

from fingerprinting.checkpoint import Checkpoint
from fingerprinting.fingerprinter import FingerprintOutput
from fingerprinting.network import HeadSpec, NetworkOutput, inference_copy, to_unshuffled_input
from fingerprinting.models import LEARNED_ATTRIBUTOR_PARAMS, LEARNED_NAME, learned_identity, scores_version, spectral_part
from fingerprinting.parsing import conform_parsed
from fingerprinting.shown import HeadOutputs, ParsingPolicy, decode_shown
from fingerprinting.noise_statistics import noise_statistics
from fingerprinting.stacked import stack_features
from fingerprinting.runtime import map_batches, pin_torch

if TYPE_CHECKING:
    from fingerprinting.calibration import VerdictCalibrator
    from fingerprinting.stacked import StackedDetector


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

    name = LEARNED_NAME
    size_agnostic = True
    attributor_params = LEARNED_ATTRIBUTOR_PARAMS

    def __init__(
        self, checkpoint: Checkpoint, crop_size: int = 64, batch_size: int = 64, verdict_calibrator: VerdictCalibrator | None = None,
        parsing_policy: ParsingPolicy | None = None, detector: StackedDetector | None = None,
    ) -> None:
        pin_torch()  # before the network first runs: the thread count pin_threads chose
        self.checkpoint = checkpoint
        # Which parsing heads are shown, calibrated how (fingerprinting.shown); None: all, uncalibrated.
        self.parsing_policy = parsing_policy
        # Fake score -> generated / real / unsure (fingerprinting.calibration); None: no verdicts.
        self.verdict_calibrator = verdict_calibrator
        # A second fake score from the fingerprint, head and noise statistics (fingerprinting.stacked); None: the head's alone.
        self.detector = detector
        self.net = inference_copy(checkpoint.net)
        self.crop_size = crop_size
        self.batch_size = batch_size
        self.spectral = spectral_part(checkpoint.spectral_weight, checkpoint.spectral_options, crop_size)
        # As models.describe_learned gives them without loading the network.
        self.scores_version = scores_version(checkpoint.version, detector.digest_ if detector is not None else None)
        self.version, self.dim = learned_identity(self.scores_version, self.net.config.embedding_dim, self.spectral)

    def fingerprint(self, crops: np.ndarray) -> FingerprintOutput:
        """(n, s, s, 3) uint8 crops -> L2-normalised vectors, fake scores in [0, 1] and parsed_* columns."""
        batches = self._run_all(crops, with_noise=self.detector is not None)
        output = self._output(batches)
        if self.detector is None or not batches:
            return output
        # The larger of the two: the detector finds what the head misses on networks trained to convergence by
        # others, and may call a zoo-like generator real that the head knows (a photographic autoencoder).
        stacked = self.detector.predict_proba(_detector_features(output, batches))
        return replace(output, fake_scores=np.maximum(output.fake_scores, stacked))

    def head_fingerprint(self, crops: np.ndarray) -> FingerprintOutput:
        """``fingerprint`` with the network's own head's fake scores, whatever detector is attached."""
        return self._output(self._run_all(crops))

    def detector_features(self, crops: np.ndarray) -> np.ndarray:
        """What a stacked detector sees of (n, s, s, 3) uint8 crops (``stacked.stack_features``): what one is fitted on."""
        batches = self._run_all(crops, with_noise=True)
        return _detector_features(self._output(batches), batches)

    def head_outputs(self, crops: np.ndarray) -> HeadOutputs:
        """The parsing heads' raw outputs for (n, s, s, 3) uint8 crops: what a parsing policy is fitted on."""
        return head_outputs(_merged(self._run_all(crops)), self.net.config.heads)

    def _output(self, batches: list[_Batch]) -> FingerprintOutput:
        if not batches:
            return FingerprintOutput(np.zeros((0, self.dim), np.float32), np.zeros(0, np.float32), conform_parsed(pd.DataFrame(), 0))
        merged = _merged(batches)
        calibration = self.checkpoint.calibration
        scores = torch.sigmoid(calibration.scale * merged.fake_logit + calibration.bias)
        spectral = np.concatenate([batch.spectral for batch in batches]) if self.spectral else None
        return FingerprintOutput(
            vectors=combine_vectors(merged.embedding.numpy(), spectral, self.checkpoint.spectral_weight),
            fake_scores=scores.numpy().astype(np.float32),
            parsed=decode_parsed(merged, self.net.config.heads, self.parsing_policy),
        )

    def _run_all(self, crops: np.ndarray, with_noise: bool = False) -> list[_Batch]:
        if crops.ndim != 4 or crops.shape[3] != 3:
            raise ValueError(f"expected crops of shape (n, s, s, 3), got {crops.shape}")
        # Batches side by side, each on one thread: see runtime.map_batches.
        return map_batches(partial(self._run, with_noise=with_noise),
                           [crops[start : start + self.batch_size] for start in range(0, len(crops), self.batch_size)])

    def _run(self, crops: np.ndarray, with_noise: bool) -> _Batch:
        """One batch: the network's outputs, the spectral vectors and noise statistics (none depends on the batch).
        The noise statistics are computed here, on the batch's own thread, so that both cores share them too."""
        with torch.inference_mode():
            output = self.net.forward_unshuffled(to_unshuffled_input(torch.from_numpy(np.ascontiguousarray(crops))), with_residual=False)
        return _Batch(output, self.spectral.fingerprint(crops).vectors if self.spectral else None,
                      noise_statistics(crops) if with_noise else None)


class _Batch(NamedTuple):
    network: NetworkOutput
    spectral: np.ndarray | None
    noise: np.ndarray | None


def _detector_features(output: FingerprintOutput, batches: list[_Batch]) -> np.ndarray:
    """The head's own scores (never a detector's) with the vectors and the batches' noise statistics."""
    return stack_features(output.vectors, output.fake_scores, np.concatenate([batch.noise for batch in batches]))


def _merged(batches: list[_Batch]) -> NetworkOutput:
    return NetworkOutput(*(_concat([getattr(batch.network, f) for batch in batches]) for f in NetworkOutput._fields))


def _concat(parts: list) -> torch.Tensor | tuple[torch.Tensor, ...]:
    if isinstance(parts[0], tuple):
        return tuple(torch.cat(column) for column in zip(*parts))
    return torch.cat(parts)


def head_outputs(output: NetworkOutput, spec: HeadSpec) -> HeadOutputs:
    """The network's parsing outputs as numpy, continuous ones in natural units."""
    return HeadOutputs(
        continuous={name: (low + column.numpy() * (high - low)).astype(np.float32) for (name, low, high), column in zip(spec.continuous, output.continuous.T)},
        discrete={name: (tuple(choices), logits.numpy()) for (name, choices), logits in zip(spec.discrete, output.discrete)},
        loss_types=tuple(spec.loss_types),
        loss_logits=output.loss_logits.numpy(),
    )


def decode_parsed(output: NetworkOutput, spec: HeadSpec, policy: ParsingPolicy | None = None) -> pd.DataFrame:
    """Head outputs -> the ``parsed_*`` columns of ``fingerprinting.parsing`` under ``policy`` (``fingerprinting.shown``)."""
    return decode_shown(head_outputs(output, spec), policy)
