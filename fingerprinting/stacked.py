"""``StackedDetector``: a crop's fake score from its fingerprint, its head's logit and its noise statistics.

The network's head learns what tells its training generators from photographs, and that carries
over poorly to designs it never saw (BENCHMARKS.md, outside section). Gradient boosting on the
frozen fingerprint, the head's logit and 24 noise statistics (``fingerprinting.noise_statistics``),
fitted on material unlike the zoo's briefly trained generators (``fingerprinting.detector_material``),
has few parameters to learn a design with. Saved beside a checkpoint as ``NAME.detector.skops``
(``skops.io``: scikit-learn's own types only, never an arbitrary pickle); the fingerprinter's fake
score is then the larger of its and the head's (``LearnedFingerprinter.fingerprint``).
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from fingerprinting.learned import LearnedFingerprinter

SUFFIX = ".detector.skops"
# The types a saved detector may hold beyond what skops trusts by default: the boosted trees themselves.
TRUSTED_TYPES = ["sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"]


def head_logit(fake_scores: np.ndarray) -> np.ndarray:
    """A head's fake probability back on the logit scale, where the trees see its spread instead of a saturated 1.0."""
    scores = np.asarray(fake_scores, np.float64)
    return (np.log(scores + 1e-7) - np.log1p(-scores + 1e-7)).astype(np.float32)


def stack_features(vectors: np.ndarray, head_scores: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """(n, dim + 1 + 24): each crop's fingerprint, its head's logit and its noise statistics (``noise_statistics``)."""
    return np.concatenate([vectors, head_logit(head_scores)[:, None], noise], 1).astype(np.float32)


class StackedDetector:
    """Histogram gradient boosting on ``stack_features``; ``predict_proba`` gives the fake score.

    Parameters
    ----------
    max_iter : int, default=200
        Boosting rounds.
    learning_rate : float, default=0.1
    random_state : int, default=0

    Attributes
    ----------
    model_ : sklearn.ensemble.HistGradientBoostingClassifier
    fitted_for_ : str
        The checkpoint version whose vectors and head it was fitted on; another checkpoint's are not its input.
    digest_ : str
        The sha256 of its saved file (``"unsaved"`` until saved or loaded): part of the model version, so a
        store never mixes two detectors' scores.
    """

    def __init__(self, *, max_iter: int = 200, learning_rate: float = 0.1, random_state: int = 0) -> None:
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.random_state = random_state

    def fit(self, features: np.ndarray, is_fake: np.ndarray, fitted_for: str = "") -> StackedDetector:
        from sklearn.ensemble import HistGradientBoostingClassifier

        is_fake = np.asarray(is_fake, bool)
        if is_fake.all() or not is_fake.any():
            raise ValueError("a detector needs fake and real crops to learn from")
        self.model_ = HistGradientBoostingClassifier(max_iter=self.max_iter, learning_rate=self.learning_rate, random_state=self.random_state)
        self.model_.fit(features, is_fake)
        self.fitted_for_ = fitted_for
        self.digest_ = "unsaved"
        return self

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """(n,) float32 fake probabilities."""
        return self.model_.predict_proba(features)[:, 1].astype(np.float32)

    def save(self, path: str | os.PathLike) -> Path:
        import skops.io

        from clustering.atomic_file import write_bytes_atomic

        params = {"max_iter": self.max_iter, "learning_rate": self.learning_rate, "random_state": self.random_state}
        data = skops.io.dumps({"model": self.model_, "fitted_for": self.fitted_for_, "params": params})
        write_bytes_atomic(Path(path), data)
        self.digest_ = hashlib.sha256(data).hexdigest()
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> StackedDetector:
        import skops.io

        data = Path(path).read_bytes()
        try:
            stored = skops.io.loads(data, trusted=TRUSTED_TYPES)
            detector = cls(**stored["params"])
            detector.model_, detector.fitted_for_ = stored["model"], str(stored["fitted_for"])
        except Exception as exc:  # skops raises many types for a damaged or foreign file; one clear error for all
            raise ValueError(f"{path} is not a genprint detector ({type(exc).__name__}: {exc})") from None
        detector.digest_ = hashlib.sha256(data).hexdigest()
        return detector


def sidecar_path(weights_path: str | os.PathLike) -> Path:
    """Where a checkpoint's detector lives: NAME.detector.skops beside NAME.safetensors."""
    weights = Path(weights_path)
    return weights.with_name(weights.name.removesuffix(".safetensors") + SUFFIX)


def file_digest(path: str | os.PathLike) -> str:
    """``StackedDetector.digest_`` of a saved detector without loading it (no scikit-learn import)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def crop_features(fingerprinter: LearnedFingerprinter, crops: np.ndarray, batch: int = 4096) -> np.ndarray:
    """``LearnedFingerprinter.detector_features`` of many (n, s, s, 3) crops, a bounded number at a time."""
    return np.concatenate([fingerprinter.detector_features(crops[start : start + batch]) for start in range(0, len(crops), batch)])
