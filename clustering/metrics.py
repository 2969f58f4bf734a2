"""Quality metrics for same-origin clustering and open-set attribution.

Noise convention (label -1 in a predicted clustering): every noise point is its own singleton
cluster in ARI, NMI and B-cubed, so leaving a point unclustered costs recall but never precision.
Purity is computed over clustered points only (singletons would be trivially pure); the noise
fraction is reported beside it.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from sklearn import metrics as skm

NOISE = -1


def noise_as_singletons(labels: Sequence[int] | np.ndarray) -> np.ndarray:
    """Labels where every -1 becomes a fresh label of its own."""
    labels = np.asarray(labels).copy()
    noise = labels == NOISE
    start = labels.max(initial=-1) + 1
    labels[noise] = start + np.arange(noise.sum())
    return labels


def _contingency(true: np.ndarray, pred: np.ndarray) -> sp.csr_matrix:
    """Sparse: with noise as singletons a dense table is classes x points (GBs at 1e6)."""
    return skm.cluster.contingency_matrix(true, pred, sparse=True).tocsr()


def adjusted_rand(true, pred) -> float:
    return float(skm.adjusted_rand_score(true, noise_as_singletons(pred)))


def normalized_mutual_info(true, pred) -> float:
    return float(skm.normalized_mutual_info_score(true, noise_as_singletons(pred)))


def purity(true, pred) -> float:
    """Size-weighted purity of the predicted clusters (noise excluded); nan if all is noise."""
    true, pred = np.asarray(true), np.asarray(pred)
    kept = pred != NOISE
    if not kept.any():
        return float("nan")
    return float(_contingency(true[kept], pred[kept]).max(axis=0).sum() / kept.sum())


def bcubed(true, pred) -> tuple[float, float, float]:
    """B-cubed (precision, recall, F1) (Bagga and Baldwin 1998), noise as singletons.

    Per point: precision = share of its predicted cluster with its true label, recall = share of
    its true class in its predicted cluster; both averaged over points.
    """
    true, pred = np.asarray(true), noise_as_singletons(pred)
    table = _contingency(true, pred).astype(np.float64)
    # Sum over points = sum over cells of count * (count / size): i.e. count**2 / size.
    squares = table.multiply(table)
    n = table.sum()
    precision = (np.asarray(squares.sum(axis=0)) / np.asarray(table.sum(axis=0))).sum() / n
    recall = (np.asarray(squares.sum(axis=1)) / np.asarray(table.sum(axis=1))).sum() / n
    return float(precision), float(recall), float(2 * precision * recall / (precision + recall))


def noise_fraction(pred) -> float:
    pred = np.asarray(pred)
    return float((pred == NOISE).mean()) if len(pred) else float("nan")


def real_in_generated_clusters(pred, is_generated) -> float:
    """Share of real images placed in clusters whose members are mostly generated (a cluster of
    real photos alone is not counted: it does not claim they share a generator with fakes)."""
    pred, is_generated = np.asarray(pred), np.asarray(is_generated, bool)
    if is_generated.all():
        return float("nan")
    clustered = pred >= 0
    n_clusters = pred.max(initial=-1) + 1
    sizes = np.bincount(pred[clustered], minlength=n_clusters)
    generated = np.bincount(pred[clustered], weights=is_generated[clustered], minlength=n_clusters)
    mostly_generated = generated > sizes / 2
    in_generated = clustered & mostly_generated[np.maximum(pred, 0)] if n_clusters else clustered
    return float(in_generated[~is_generated].mean())


def clustering_report(true, pred) -> dict[str, float]:
    """Every clustering metric of DESIGN.md section 6 in one dict."""
    true, pred = np.asarray(true), np.asarray(pred)
    precision, recall, f1 = bcubed(true, pred)
    return {
        "ari": adjusted_rand(true, pred),
        "nmi": normalized_mutual_info(true, pred),
        "purity": purity(true, pred),
        "bcubed_precision": precision,
        "bcubed_recall": recall,
        "bcubed_f1": f1,
        "clusters_found": int(len(np.unique(pred[pred != NOISE]))),
        "clusters_true": int(len(np.unique(true))),
        "noise_fraction": noise_fraction(pred),
    }


def closed_set_accuracy(true_names, predicted_names) -> float:
    """Share of known-generator images attributed to the right name (unknown, None, counts as wrong).

    Closed-set accuracy proper takes each image's best-scoring known name (no unknown option, as in
    the open-set recognition literature); names after an acceptance threshold give the accuracy at
    that operating point instead.
    """
    true_names, predicted_names = np.asarray(true_names, object), np.asarray(predicted_names, object)
    return float(np.mean(true_names == predicted_names))


def open_set_auroc(known_scores, unknown_scores) -> float:
    """AUROC of telling known-generator images (positives) from unseen ones by their score."""
    known, unknown = np.asarray(known_scores, float), np.asarray(unknown_scores, float)
    y = np.r_[np.ones(len(known)), np.zeros(len(unknown))]
    return float(skm.roc_auc_score(y, np.r_[known, unknown]))


def oscr(known_scores, known_correct, unknown_scores) -> float:
    """Open-Set Classification Rate (Chen et al., ECCV 2020): area under the curve of the correct
    classification rate CCR(t) = |known, correctly named, score >= t| / |known| against the false
    positive rate FPR(t) = |unknown, score >= t| / |unknown| as the threshold t sweeps all scores.
    1.0 = every known image named right and scored above every unknown one.
    """
    known = np.asarray(known_scores, float)
    correct = np.asarray(known_correct, bool)
    unknown = np.asarray(unknown_scores, float)
    thresholds = np.unique(np.r_[known, unknown])[::-1]  # descending: the curve from (0, 0) up

    def share_at_or_above(scores: np.ndarray, total: int) -> np.ndarray:
        ordered = np.sort(scores)
        return (len(ordered) - np.searchsorted(ordered, thresholds, side="left")) / total

    ccr = share_at_or_above(known[correct], len(known))
    fpr = share_at_or_above(unknown, len(unknown))
    fpr, ccr = np.r_[0.0, fpr, 1.0], np.r_[0.0, ccr, ccr[-1]]
    return float(np.trapezoid(ccr, fpr))
