"""OpenSetAttributor: name the registered generator an image comes from, or call it unknown."""
from __future__ import annotations

from collections.abc import Sequence

import faiss
import numpy as np
from sklearn.base import BaseEstimator

# Without held-out references to calibrate on, accept at this cosine similarity to a prototype.
UNCALIBRATED_THRESHOLD = 0.5


def _normalised(x: np.ndarray) -> np.ndarray:
    x = np.array(x, dtype=np.float32, order="C", copy=True)
    faiss.normalize_L2(x)
    return x


class OpenSetAttributor(BaseEstimator):
    """Nearest-prototype attribution with a calibrated acceptance threshold.

    `fit(vectors, names)` pools each name's reference fingerprints into a prototype (their
    normalised mean: one image is noisy, a reference set is not). The score of an image for a
    name is its cosine similarity to that prototype; it is attributed to the best-scoring name
    when the score reaches the threshold, else unknown (None).

    Threshold: given, or calibrated leave-one-out on the references: each reference is scored
    against its own name's prototype rebuilt without it, and the threshold is the
    `target_false_reject` quantile of those genuine scores (so about that share of a registered
    generator's images would be called unknown). Names with a single reference cannot be held
    out; with none calibratable, UNCALIBRATED_THRESHOLD is used.
    """

    def __init__(self, threshold: float | None = None, target_false_reject: float = 0.05) -> None:
        self.threshold = threshold
        self.target_false_reject = target_false_reject

    def fit(self, vectors: np.ndarray, names: Sequence[str]) -> OpenSetAttributor:
        vectors = _normalised(vectors)
        names = np.asarray(names, dtype=object)
        if len(vectors) != len(names) or not len(names):
            raise ValueError(f"need one name per reference vector, got {len(vectors)} and {len(names)}")
        self.names_, which = np.unique(names.astype(str), return_inverse=True)
        sums = np.zeros((len(self.names_), vectors.shape[1]), np.float64)
        np.add.at(sums, which, vectors)
        counts = np.bincount(which, minlength=len(self.names_))
        self.prototypes_ = _normalised(sums)
        self.reference_counts_ = counts
        self.threshold_ = (
            float(self.threshold) if self.threshold is not None
            else self._calibrate(vectors, which, sums, counts)
        )
        return self

    def _calibrate(
        self, vectors: np.ndarray, which: np.ndarray, sums: np.ndarray, counts: np.ndarray
    ) -> float:
        held_out = counts[which] > 1
        if not held_out.any():
            return UNCALIBRATED_THRESHOLD
        rest = _normalised(sums[which[held_out]] - vectors[held_out])
        genuine = np.einsum("ij,ij->i", vectors[held_out], rest)
        self.genuine_scores_ = genuine
        return float(np.quantile(genuine, self.target_false_reject))

    def scores(self, X: np.ndarray) -> np.ndarray:
        """(n, n_names) cosine similarity of each image to each name's prototype."""
        return _normalised(X) @ self.prototypes_.T

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(names: object array with None for unknown, scores: float32 similarity to the best name)."""
        all_scores = self.scores(X)
        best = all_scores.argmax(axis=1)
        score = all_scores[np.arange(len(best)), best].astype(np.float32)
        names = np.where(score >= self.threshold_, self.names_[best].astype(object), None)
        return names.astype(object), score

    @staticmethod
    def attribute_clusters(
        labels: np.ndarray, names: Sequence[str | None], min_share: float = 0.5
    ) -> dict[int, tuple[str | None, float]]:
        """Per cluster id (noise skipped): (winning name or None, its vote share among members).

        Every member votes for its predicted name or for unknown (None); the cluster takes the
        plurality name when it has at least `min_share` of the votes, else None.
        """
        labels = np.asarray(labels)
        votes = np.array(["" if n is None else str(n) for n in names], dtype=object)
        result: dict[int, tuple[str | None, float]] = {}
        for cluster in np.unique(labels[labels >= 0]):
            values, counts = np.unique(votes[labels == cluster].astype(str), return_counts=True)
            winner = int(np.argmax(counts))
            share = float(counts[winner] / counts.sum())
            name = values[winner] or None
            result[int(cluster)] = (name if share >= min_share else None, share)
        return result
