"""The store's `verdict` and `ood_score` columns: the model's calibrated verdict on each image.

A verdict depends only on the image's fake score and fingerprint and on the calibration
(`fingerprinting.calibration`), so each image is judged once, in the run that stores it, and an
incremental run and a re-run give the same verdicts. When the calibration changes (`genprint
calibrate`), or a store made before verdicts existed is updated, the next run judges every
image again: the store's meta records which calibration made them (`VERDICT_META`).
Fingerprinters without a calibration (the spectral one has no fake score) leave both columns null.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from fingerprinting.calibration import GENERATED
from fingerprinting.fingerprinter import ModelIdentity, verdict_calibrator

VERDICT_META = "verdict_calibration"  # meta key: digest of the calibration that made the verdicts ("": none)
# Where a model has a detector but no calibration, "generated" is the raw score's reading.
UNCALIBRATED_THRESHOLD = 0.5


def calibration_digest(fingerprinter: ModelIdentity) -> str:
    calibrator = verdict_calibrator(fingerprinter)
    return calibrator.digest if calibrator is not None else ""


def needs_rejudging(meta: dict, fingerprinter: ModelIdentity) -> bool:
    """Whether the stored verdicts were made by another calibration than this fingerprinter's (or none)."""
    return meta.get(VERDICT_META) != calibration_digest(fingerprinter)


def judge(images: pd.DataFrame, image_ids: list[str], vectors: np.ndarray, fingerprinter: ModelIdentity) -> pd.DataFrame:
    """``images`` with `verdict` and `ood_score` set for ``image_ids`` (aligned with ``vectors``)."""
    images = images.set_index("image_id")
    if image_ids:
        verdicts, ood = verdicts_of(images.loc[image_ids, "fake_score"].to_numpy(np.float64), vectors, fingerprinter)
        images.loc[image_ids, "verdict"] = pd.Series(verdicts, index=image_ids, dtype=object)
        images.loc[image_ids, "ood_score"] = ood
    images["ood_score"] = images["ood_score"].astype(np.float32)
    images["unknown_generator"] = unknown_generators(images)
    return images.reset_index()


def unknown_generators(images: pd.DataFrame) -> pd.Series:
    """Generated and made by no registered generator: `unknown_generator`. Generated is the verdict's word
    where there is one; ``fake_score >= UNCALIBRATED_THRESHOLD`` for a detector without a calibration;
    never without a fake score."""
    verdict = images["verdict"]
    generated = verdict.eq(GENERATED).where(verdict.notna(), images["fake_score"] >= UNCALIBRATED_THRESHOLD)
    return images["attributed_generator"].isna() & generated.astype(bool)


def verdicts_of(scores: np.ndarray, vectors: np.ndarray, fingerprinter: ModelIdentity) -> tuple[np.ndarray, np.ndarray]:
    """(verdicts, ood scores) of images with fake ``scores`` and fingerprints ``vectors``; None / NaN where unjudged."""
    calibrator = verdict_calibrator(fingerprinter)
    scores = np.asarray(scores, dtype=np.float64)
    # No fake score, no verdict: the out-of-distribution search is skipped for those too.
    scored = ~np.isnan(scores) if calibrator is not None else np.zeros(len(scores), bool)
    verdicts, ood = np.full(len(scores), None, dtype=object), np.full(len(scores), np.nan, np.float32)
    if scored.any():
        ood[scored] = calibrator.ood_score(vectors[scored])
        verdicts[scored] = calibrator.verdicts(scores[scored], ood[scored])
    return verdicts, ood
