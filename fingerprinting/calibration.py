"""The verdict on an image: ``generated``, ``real`` or ``unsure``, calibrated on camera photographs.

A fake score alone is not something an analyst can act on: its scale says nothing about how often
a real photograph scores as high. ``VerdictCalibrator`` learns, from camera photographs only:

- a ``generated`` threshold, the largest of three bounds: a one-sided upper confidence bound on
  the photographs' score quantile ``1 - target_fpr`` (a new image like the calibration ones exceeds
  it with probability at most ``target_fpr``, at the stated confidence); given the photograph of
  each sample (``groups``), the lowest score leaving at most ``target_fpr`` of every photograph's
  samples above it: crops of one photograph are alike, so a photograph that scores high as a whole
  must not be outvoted by the others (with G photographs exchangeable, a new one keeps at most
  ``target_fpr`` of its samples above that bound with probability G / (G + 1)); and, from at least
  three photographs, a normal tolerance bound on the logit of each photograph's own ``1 -
  target_fpr`` quantile: with probability ``confidence``, at least ``photo_coverage`` of new
  photographs keep at most ``target_fpr`` of their samples above it. The order-statistic bounds
  never reach past the highest calibration score, so a photograph that scores higher than all the
  others (some do: data/MODEL_CARD.md) is bounded only by a rule that extrapolates;
- a ``real`` threshold: the score below which ``real_share`` of the photographs fall;
- an out-of-distribution score: the mean distance of a fingerprint to its ``n_neighbors`` nearest
  calibration fingerprints (FAISS), divided by the calibration set's own leave-one-out
  ``ood_quantile`` of that distance (leave one photograph out when groups are given), so that 1.0
  is the edge of what calibration saw.

``predict``: ``generated`` above the generated threshold, ``real`` at or below the real threshold,
``unsure`` in between, and ``unsure`` whenever the out-of-distribution score exceeds 1 (a score on
images unlike the calibration photographs says nothing); no verdict (None) without a fake score.

Whole images: the store's fake score and fingerprint of an image are the mean of its crops' (up
to four, ``embed``), and the same rule is applied to them. The calibration samples
(``camera_photos``) pool single crops, the conservative side for the threshold (a mean of crop
scores has a thinner upper tail than one crop), and whole photographs, so that mean fingerprints
are not taken for outliers. data/MODEL_CARD.md measures both, leaving one photograph out.

Stored as safetensors (the reference fingerprints) with the parameters and thresholds as json in
its metadata: loading runs no code.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save as save_safetensors_bytes

from clustering.atomic_file import write_bytes_atomic

GENERATED, REAL, UNSURE = "generated", "real", "unsure"
VERDICTS = (GENERATED, REAL, UNSURE)
FORMAT = "genprint-verdict-calibration"
FORMAT_VERSION = 1
SIDECAR_SUFFIX = ".verdict.safetensors"
# Scores are float32 probabilities: 1.0 and 0.0 happen, and the logit needs them one float32 step inside.
SCORE_FLOOR = 2.0**-24


class VerdictCalibrator:
    """Calibrated verdicts from fake scores and fingerprints, fitted on camera photographs only.

    Parameters
    ----------
    target_fpr : float, default 0.01
        Share of camera photographs that may be called ``generated``.
    confidence : float, default 0.95
        Confidence of the upper bound on the photographs' ``1 - target_fpr`` score quantile. With
        too few scores for that bound (under about 300 at the defaults) the threshold is the
        highest calibration score. The threshold is never below the per-photograph bound (module
        docstring).
    photo_coverage : float or None, default 0.95
        Share of new photographs the per-photograph tolerance bound (module docstring) is for; None
        leaves it out. Used only with ``groups`` from at least three photographs.
    real_share : float, default 0.9
        Share of the calibration photographs at or below the ``real`` threshold.
    n_neighbors : int, default 5
        Calibration fingerprints averaged over in the out-of-distribution distance.
    ood_quantile : float, default 0.99
        Leave-one-out quantile of the calibration set's own distances that maps to ood_score 1.0.

    Attributes
    ----------
    generated_threshold_ : float
        Fake scores above it are ``generated``.
    real_threshold_ : float
        Fake scores at or below it are ``real``.
    ood_scale_ : float
        The leave-one-out ``ood_quantile`` of the calibration distances.
    reference_vectors_ : ndarray of shape (n_samples, dim)
        The calibration fingerprints (float32).
    n_samples_ : int
        Calibration scores seen.
    n_groups_ : int
        Photographs (groups) they came from; ``n_samples_`` when no groups were given.
    model_version_ : str
        The fingerprinter version the scores and fingerprints came from (``fit``'s argument).
    """

    def __init__(
        self,
        *,
        target_fpr: float = 0.01,
        confidence: float = 0.95,
        photo_coverage: float | None = 0.95,
        real_share: float = 0.9,
        n_neighbors: int = 5,
        ood_quantile: float = 0.99,
    ) -> None:
        self.target_fpr = target_fpr
        self.confidence = confidence
        self.photo_coverage = photo_coverage
        self.real_share = real_share
        self.n_neighbors = n_neighbors
        self.ood_quantile = ood_quantile

    def get_params(self) -> dict[str, float | int | None]:
        return {
            "target_fpr": self.target_fpr,
            "confidence": self.confidence,
            "photo_coverage": self.photo_coverage,
            "real_share": self.real_share,
            "n_neighbors": self.n_neighbors,
            "ood_quantile": self.ood_quantile,
        }

    def fit(
        self, scores: np.ndarray, vectors: np.ndarray, groups: np.ndarray | None = None, model_version: str = ""
    ) -> VerdictCalibrator:
        """Fit on camera photographs: their fake ``scores`` (n,), fingerprint ``vectors`` (n, dim).

        ``groups`` (n,): the photograph each sample comes from. Crops of one photograph are alike,
        so the out-of-distribution normaliser leaves a whole photograph out, not one crop.
        """
        scores = np.asarray(scores, dtype=np.float64)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if scores.ndim != 1 or vectors.ndim != 2 or len(scores) != len(vectors):
            raise ValueError(f"scores (n,) and vectors (n, dim) must align, got {scores.shape} and {vectors.shape}")
        if not np.isfinite(scores).all():
            raise ValueError("calibration scores must be finite: a fingerprinter without a detection head has no verdict")
        if not 0 < self.target_fpr < 1 or not 0 < self.confidence < 1 or not 0 < self.real_share < 1:
            raise ValueError("target_fpr, confidence and real_share must lie in (0, 1)")
        if self.photo_coverage is not None and not 0 < self.photo_coverage < 1:
            raise ValueError("photo_coverage must lie in (0, 1), or be None")
        self.generated_threshold_ = upper_quantile_bound(scores, 1 - self.target_fpr, self.confidence)
        if groups is None:
            groups = np.arange(len(scores))
        else:
            groups = np.asarray(groups)
            self.generated_threshold_ = max(self.generated_threshold_, _worst_group_bound(scores, groups, self.target_fpr))
            if self.photo_coverage is not None and len(np.unique(groups)) >= 3:
                self.generated_threshold_ = max(
                    self.generated_threshold_,
                    group_tolerance_bound(scores, groups, self.target_fpr, self.photo_coverage, self.confidence),
                )
        if len(np.unique(groups)) < 2:
            raise ValueError("calibration needs samples from at least two photographs")
        self.real_threshold_ = min(float(np.quantile(scores, self.real_share)), self.generated_threshold_)
        self.reference_vectors_ = vectors
        self.ood_scale_ = float(np.quantile(self._held_out_distances(groups), self.ood_quantile))
        if not self.ood_scale_ > 0:
            raise ValueError("the calibration fingerprints are all identical: no scale for the out-of-distribution score")
        self.n_samples_ = len(scores)
        self.n_groups_ = int(len(np.unique(groups)))
        self.model_version_ = str(model_version)
        return self

    def ood_score(self, vectors: np.ndarray) -> np.ndarray:
        """(n,) float32: mean distance to the nearest calibration fingerprints over the calibration's own edge."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if not len(vectors):
            return np.zeros(0, np.float32)
        distances, _ = self._index().search(vectors, min(self.n_neighbors, len(self.reference_vectors_)))
        return (_mean_distance(distances) / self.ood_scale_).astype(np.float32)

    def predict(self, scores: np.ndarray, vectors: np.ndarray) -> np.ndarray:
        """Verdicts (object array of ``VERDICTS`` strings, None where the score is missing)."""
        return self.verdicts(scores, self.ood_score(vectors))

    def verdicts(self, scores: np.ndarray, ood_scores: np.ndarray) -> np.ndarray:
        """The verdict rule on fake scores and already computed out-of-distribution scores."""
        scores = np.asarray(scores, dtype=np.float64)
        verdict = np.full(len(scores), UNSURE, dtype=object)
        verdict[scores > self.generated_threshold_] = GENERATED
        verdict[scores <= self.real_threshold_] = REAL
        verdict[np.asarray(ood_scores) > 1] = UNSURE
        verdict[np.isnan(scores)] = None
        return verdict

    def _index(self):
        import faiss

        index = faiss.IndexFlatL2(self.reference_vectors_.shape[1])
        index.add(self.reference_vectors_)
        return index

    def _held_out_distances(self, groups: np.ndarray) -> np.ndarray:
        """Each calibration sample's distance to its nearest samples of other photographs."""
        reference = self.reference_vectors_
        k = self.n_neighbors
        largest_group = int(np.unique(groups, return_counts=True)[1].max())
        found_k = min(len(reference), k + largest_group)
        squared, found = self._index().search(reference, found_k)
        other = groups[found] != groups[:, None]
        # Keep the first k neighbours from other photographs of each row (rows keep their order).
        rank = np.cumsum(other, axis=1)
        kept = other & (rank <= k)
        squared = np.where(kept, np.maximum(squared, 0), 0.0)
        counts = np.maximum(kept.sum(axis=1), 1)
        return np.sqrt(squared).sum(axis=1) / counts

    # ---- persistence ---------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """The fitted calibration as safetensors bytes (reference fingerprints + json metadata)."""
        state = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "params": self.get_params(),
            "generated_threshold": self.generated_threshold_,
            "real_threshold": self.real_threshold_,
            "ood_scale": self.ood_scale_,
            "n_samples": self.n_samples_,
            "n_groups": self.n_groups_,
            "model_version": self.model_version_,
        }
        return save_safetensors_bytes({"reference_vectors": self.reference_vectors_}, metadata={"calibration": json.dumps(state, sort_keys=True)})

    @property
    def digest(self) -> str:
        """A short hash of everything that decides a verdict: equal digests give equal verdicts."""
        return hashlib.sha256(self.to_bytes()).hexdigest()[:16]

    def save(self, path: str | os.PathLike) -> Path:
        """Write the calibration to ``path`` (atomically, `clustering.atomic_file`: never half a file)."""
        path = Path(path)
        write_bytes_atomic(path, self.to_bytes())
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> VerdictCalibrator:
        """Read a calibration written by ``save``; raises ValueError for anything else."""
        if not Path(path).is_file():
            raise FileNotFoundError(f"{path}: no verdict calibration")
        try:
            with safe_open(str(path), framework="numpy") as handle:
                state = json.loads((handle.metadata() or {})["calibration"])
                vectors = handle.get_tensor("reference_vectors")
        except (KeyError, ValueError, SafetensorError) as exc:  # json errors are ValueErrors
            raise ValueError(f"{path}: not a genprint verdict calibration ({exc})") from None
        if state.get("format") != FORMAT or state.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{path}: not a genprint verdict calibration of format version {FORMAT_VERSION}")
        calibrator = cls(**state["params"])
        calibrator.generated_threshold_ = float(state["generated_threshold"])
        calibrator.real_threshold_ = float(state["real_threshold"])
        calibrator.ood_scale_ = float(state["ood_scale"])
        calibrator.n_samples_ = int(state["n_samples"])
        calibrator.n_groups_ = int(state["n_groups"])
        calibrator.model_version_ = str(state["model_version"])
        calibrator.reference_vectors_ = np.ascontiguousarray(vectors, dtype=np.float32)
        return calibrator


def sidecar_path(weights_path: str | os.PathLike) -> Path:
    """Where a checkpoint's verdict calibration lives: ``NAME.verdict.safetensors`` beside ``NAME.safetensors``."""
    weights_path = Path(weights_path)
    return weights_path.with_name(weights_path.name.removesuffix(".safetensors").removesuffix(".json") + SIDECAR_SUFFIX)


def upper_quantile_bound(values: np.ndarray, quantile: float, confidence: float) -> float:
    """A distribution-free upper confidence bound on the ``quantile`` of the law ``values`` were drawn from.

    The smallest order statistic x_(k) with P(Binomial(n, quantile) < k) >= ``confidence``: with that
    probability at least ``quantile`` of the law lies at or below x_(k). Too few values for such a k:
    the largest value.
    """
    from scipy.stats import binom

    ordered = np.sort(np.asarray(values, dtype=np.float64))
    n = len(ordered)
    ranks = np.arange(1, n + 1)
    enough = binom.cdf(ranks - 1, n, quantile) >= confidence
    if not enough.any():
        return float(ordered[-1])
    return float(ordered[int(np.argmax(enough))])


def group_tolerance_bound(scores: np.ndarray, groups: np.ndarray, share: float, coverage: float, confidence: float) -> float:
    """A score that, with probability ``confidence``, at least ``coverage`` of new groups keep ``share`` or less of their scores above.

    Each group's own ``1 - share`` quantile (the order statistic ``_worst_group_bound`` uses), on the
    logit scale, where camera photographs' quantiles look normal (data/MODEL_CARD.md tests it); the
    one-sided normal tolerance bound on them (noncentral t factor), mapped back to a score.
    """
    from scipy.special import expit, logit
    from scipy.stats import nct, norm

    quantiles = logit(np.clip(_group_quantiles(scores, groups, share), SCORE_FLOOR, 1 - SCORE_FLOOR))
    n = len(quantiles)
    factor = nct.ppf(confidence, n - 1, norm.ppf(coverage) * np.sqrt(n)) / np.sqrt(n)
    return float(expit(quantiles.mean() + factor * quantiles.std(ddof=1)))


def _group_quantiles(scores: np.ndarray, groups: np.ndarray, share: float) -> np.ndarray:
    """Per group, the lowest of its scores that leaves at most ``share`` of them above it."""
    out = []
    for group in np.unique(groups):
        ordered = np.sort(scores[groups == group])
        out.append(float(ordered[len(ordered) - 1 - int(np.floor(share * len(ordered)))]))
    return np.asarray(out)


def _worst_group_bound(scores: np.ndarray, groups: np.ndarray, share: float) -> float:
    """The lowest threshold leaving at most ``share`` of every group's scores above it."""
    return float(_group_quantiles(scores, groups, share).max())


def _mean_distance(squared: np.ndarray) -> np.ndarray:
    # Squared L2 from FAISS can come out a rounding error below zero.
    return np.sqrt(np.maximum(squared, 0)).mean(axis=1)
