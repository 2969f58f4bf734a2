"""Held-out figures of a fingerprinter on a zoo: grouping, detection and parsing, per split, clean or re-encoded.

Run ``python -m fingerprinting.evaluation ZOO_DIR [CHECKPOINT ...]`` for the markdown table of the
model card (the learned checkpoint beside the training-free spectral fingerprint).
"""
from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, f1_score, roc_auc_score

from fingerprinting.fingerprinter import Fingerprinter, parsing_policy
from fingerprinting.network import HeadSpec
from fingerprinting.parsing import LOSS_TYPES_COLUMN, aggregate_parsed_by
from fingerprinting.shown import decode_shown
from fingerprinting.training_data import LabelledImages

# On a zoo built with a seed never used in training every member is new to the network; its
# unseen_seed members copy that zoo's train members, its unseen_arch ones hold out a whole family.
ZOO_SPLITS = ("train", "unseen_seed", "unseen_arch")


def nearest_neighbour_same_label_rate(vectors: np.ndarray, labels: np.ndarray, chunk: int = 2048) -> float:
    """Share of vectors whose nearest other vector (cosine) has the same label: how tight origins group.

    Exact, over row chunks of the similarity matrix, so memory stays linear in the number of vectors.
    """
    if len(vectors) < 2:
        return float("nan")
    vectors = np.asarray(vectors, np.float32)
    nearest = np.empty(len(vectors), dtype=np.int64)
    for start in range(0, len(vectors), chunk):
        similarity = vectors[start : start + chunk] @ vectors.T
        rows = np.arange(len(similarity))
        similarity[rows, start + rows] = -np.inf  # never the vector itself, whatever its duplicates
        nearest[start : start + chunk] = similarity.argmax(1)
    return float(np.mean(labels[nearest] == labels))


def evaluate(fingerprinter: Fingerprinter, data: LabelledImages, splits: Sequence[str] = ZOO_SPLITS, jpeg_quality: int | None = None) -> pd.DataFrame:
    """One row of figures per split, and one ("all") for them together: fakes of those members vs every real.

    Images are fingerprinted whole (zoo images are one crop); with ``jpeg_quality`` after one JPEG
    round trip at that quality.
    """
    from fingerprinting.augment import jpeg_copy

    pixels = data.pixels if jpeg_quality is None else jpeg_copy(data.pixels, jpeg_quality)
    output = fingerprinter.fingerprint(pixels)
    parsed = output.parsed
    if parsing_policy(fingerprinter) is not None:  # the heads themselves, not what the policy lets the product show
        parsed = decode_shown(fingerprinter.head_outputs(pixels))
    rows = []
    for name, members in [(s, np.flatnonzero(data.member_split == s)) for s in splits] + [("all", np.flatnonzero(np.isin(data.member_split, splits)))]:
        fakes = np.isin(data.member, members)
        figures: dict[str, object] = {"split": name, "members": len(members), "fakes": int(fakes.sum()), "reals": int((~data.is_fake).sum())}
        figures["nn_same_member"] = nearest_neighbour_same_label_rate(output.vectors[fakes], data.member[fakes])
        if output.fake_scores is not None:
            figures.update(detection_figures(output.fake_scores, fakes, data))
        if parsed is not None:
            figures.update(parsing_figures(parsed, fakes, data, HeadSpec.from_space()))
        rows.append(figures)
    return pd.DataFrame(rows)


def detection_figures(scores: np.ndarray, fakes: np.ndarray, data: LabelledImages) -> dict[str, float]:
    reals = ~data.is_fake
    figures = {}
    for label, chosen in (("", fakes), ("_content_matched", fakes & (data.kind == "reconstruction"))):
        if chosen.any() and reals.any():
            rows = chosen | reals
            figures[f"auc{label}"] = float(roc_auc_score(chosen[rows], scores[rows]))
            if not label:
                figures["average_precision"] = float(average_precision_score(chosen[rows], scores[rows]))
                figures["brier"] = float(np.mean((scores[rows] - chosen[rows]) ** 2))
    return figures


def parsing_figures(parsed: pd.DataFrame, fakes: np.ndarray, data: LabelledImages, spec: HeadSpec) -> dict[str, float]:
    """Per image and per member (the cluster-aggregated prediction, as the product aggregates a cluster)."""
    member = data.member[fakes]
    members = np.unique(member)
    views = {"image": (parsed[fakes].reset_index(drop=True), member), "member": (aggregate_parsed_by(parsed[fakes], member, list(members)), members)}
    figures: dict[str, float] = {}
    for view, (table, owners) in views.items():
        for j, (name, choices) in enumerate(spec.discrete):
            truth = data.discrete[owners, j]
            known = truth >= 0
            if not known.any():
                continue
            predicted = np.array([choices.index(v) if v in choices else -1 for v in table[f"parsed_{name}"]])[known]
            majority = np.bincount(truth[known]).argmax()
            always_majority = np.full(known.sum(), majority)
            figures[f"{view}_{name}_accuracy"] = float(np.mean(predicted == truth[known]))
            figures[f"{view}_{name}_majority"] = float(np.mean(truth[known] == majority))
            figures[f"{view}_{name}_macro_f1"] = float(f1_score(truth[known], predicted, average="macro", zero_division=0))
            figures[f"{view}_{name}_majority_macro_f1"] = float(
                f1_score(truth[known], always_majority, average="macro", zero_division=0)
            )
        errors, baseline = [], []
        for j, (name, low, high) in enumerate(spec.continuous):
            truth = data.continuous[owners, j]
            predicted = (table[f"parsed_{name}"].to_numpy(np.float64) - low) / (high - low)
            errors.append(np.abs(predicted - truth).mean())
            baseline.append(np.abs(truth.mean() - truth).mean())
        figures[f"{view}_continuous_l1"] = float(np.mean(errors))
        figures[f"{view}_continuous_l1_mean_baseline"] = float(np.mean(baseline))
        truth_losses = data.losses[owners].astype(bool)
        # The product's own decision (its F1-optimal set), not a threshold on the probabilities.
        predicted_losses = _named_losses(table[LOSS_TYPES_COLUMN], spec.loss_types)
        figures[f"{view}_loss_f1"] = float(f1_score(truth_losses, predicted_losses, average="samples", zero_division=0))
    return figures


def _named_losses(named: pd.Series, loss_types: Sequence[str]) -> np.ndarray:
    """``parsed_loss_types`` as a (rows, types) boolean matrix; a null set names nothing."""
    rows = [[t in (names if names is not None else ()) for t in loss_types] for names in named]
    return np.array(rows, dtype=bool).reshape(len(named), len(loss_types))


def main(argv: Sequence[str] | None = None) -> None:
    """Print the figures of the spectral fingerprint and each checkpoint on a zoo, clean and at JPEG 75."""
    from fingerprinting.models import load_fingerprinter
    from fingerprinting.runtime import pin_threads
    from fingerprinting.training_data import load_labelled_images

    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        raise SystemExit("usage: python -m fingerprinting.evaluation ZOO_DIR [CHECKPOINT ...]")
    pin_threads(int(os.environ.get("GENPRINT_THREADS", "2")))
    data = load_labelled_images(args[0], HeadSpec.from_space())
    tables = []
    for name in ["spectral"] + (args[1:] or ["default"]):
        fingerprinter = load_fingerprinter(name)
        for quality in (None, 75):
            table = evaluate(fingerprinter, data, jpeg_quality=quality)
            tables.append(table.assign(model=f"{fingerprinter.name} {fingerprinter.version}", jpeg=quality or "none"))
    result = pd.concat(tables, ignore_index=True).set_index(["model", "jpeg", "split"]).T
    with pd.option_context("display.max_rows", 500, "display.width", 250, "display.float_format", "{:.3f}".format):
        print(result.to_string())


if __name__ == "__main__":
    main()
