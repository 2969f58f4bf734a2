"""Development check of detectors that might generalise to a generator family never trained on (issue 24).

    python -m bench.detection_dev --corpus EXT_DIR --shipped SHIPPED.npz --spectral SPECTRAL.npz [--cnn-steps 1500]

On the external corpus (`genprint zoo external`), with the outside section's photograph folds
(`bench.outside_part`), three settings per family F: leave-one-family-out (train on the other family
and the other fold's photographs, test on F and this fold's photographs, the outside section's rule),
F's own generators on new photographs, and both families on new photographs. Features: the shipped
model's pooled vector and its head's logit, the spectral fingerprint (both as the outside section
cached them: ``vectors`` and ``fake_scores`` rows in images.parquet's order), per-image noise
statistics, the resampling spectrum of the prediction residual (after Popescu and Farid 2005), and a
small residual CNN trained on the pixels. Classifiers: the outside section's logistic regression and
scikit-learn's histogram gradient boosting. Prints one markdown table of ROC AUC per view.
"""
from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score

from bench.outside_part import PHOTO_FOLDS, VIEWS, _detector, load_images
from fingerprinting.noise_statistics import LUMA, noise_statistics, prediction_residual
from fingerprinting.training_data import read_pixels
from flows.markdown import markdown_table

RESAMPLING_PERIODS = (2, 3, 4, 5, 6, 8)


def read_by_size(images: pd.DataFrame) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Every image decoded, grouped by width: {width: (rows of ``images``, (n, h, w, 3) uint8)}."""
    paths = images["path"].to_numpy()
    return {int(width): (rows, read_pixels(list(paths[rows]))) for width, rows in images.groupby("width").indices.items()}


def resampling_spectrum(pixels: np.ndarray) -> np.ndarray:
    """Per image and period p: the Fourier magnitudes of the residual's mean energy at each pixel phase
    (row mod p, column mod p). An upsampler of factor p makes energy depend on the phase; a magnitude
    spectrum is blind to where the crop starts."""
    residual = np.abs(prediction_residual(pixels.astype(np.float32) @ LUMA))
    features = []
    for period in RESAMPLING_PERIODS:
        n, h, w = residual.shape[0], residual.shape[1] // period * period, residual.shape[2] // period * period
        phases = residual[:, :h, :w].reshape(n, h // period, period, w // period, period).mean((1, 3))
        phases /= phases.mean((1, 2), keepdims=True) + 1e-6
        features.append(np.log(np.abs(np.fft.fft2(phases)).reshape(n, -1)[:, 1:] + 1e-4))
    return np.concatenate(features, 1).astype(np.float32)


def head_logit(fake_scores: np.ndarray) -> np.ndarray:
    """A head's fake probability back on the logit scale, where boosting and linear models see its spread."""
    return np.log(fake_scores + 1e-7) - np.log(1 - fake_scores + 1e-7)


def per_image(groups: dict[int, tuple[np.ndarray, np.ndarray]], describe, count: int) -> np.ndarray:
    parts = {width: describe(pixels) for width, (_, pixels) in groups.items()}
    out = np.zeros((count, next(iter(parts.values())).shape[1]), np.float32)
    for width, (rows, _) in groups.items():
        out[rows] = parts[width]
    return out


def settings(images: pd.DataFrame) -> Iterator[tuple[str, str, np.ndarray, np.ndarray]]:
    """(setting, family, training rows, test rows) over both photograph folds; test photographs never train."""
    fake = images["is_fake"].to_numpy()
    family = images["family"].fillna("").to_numpy()
    fold = images["fold"].to_numpy()
    for held in sorted(set(family[fake])):
        trained_on = {"leave-one-family-out": fake & (family != held), "same family, new photographs": family == held,
                      "both families, new photographs": fake}
        for setting, fakes in trained_on.items():
            for p in range(PHOTO_FOLDS):
                yield setting, held, np.flatnonzero((fold != p) & (~fake | fakes)), np.flatnonzero((fold == p) & (~fake | (family == held)))


def _classifier(name: str, samples: int, dim: int):
    if name == "logistic regression":
        return _detector(samples, dim)
    return HistGradientBoostingClassifier(max_iter=200, random_state=0)


def cnn_scores(groups: dict[int, tuple[np.ndarray, np.ndarray]], fake: np.ndarray, train: np.ndarray, test: np.ndarray, steps: int, seed: int = 0) -> np.ndarray:
    """A six-layer residual CNN (no early pooling, mean and spread of its maps pooled) trained on balanced
    32 px crops of the training rows; the test rows scored whole."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    pixels = {row: image for rows, stack in groups.values() for row, image in zip(rows, stack)}

    def block(inputs: int, outputs: int, stride: int = 1) -> list[nn.Module]:
        return [nn.Conv2d(inputs, outputs, 3, stride, 1, bias=False), nn.BatchNorm2d(outputs), nn.ReLU(inplace=True)]

    features = nn.Sequential(*block(3, 24), *block(24, 24), *block(24, 48, 2), *block(48, 48), *block(48, 64, 2), *block(64, 64))
    head = nn.Linear(128, 1)

    def forward(batch: list[np.ndarray]) -> torch.Tensor:
        maps = features(torch.from_numpy(np.stack(batch)).permute(0, 3, 1, 2).float().div(255).sub(0.5))
        return head(torch.cat([maps.mean((2, 3)), maps.std((2, 3))], 1)).squeeze(1)

    def crop(image: np.ndarray, side: int = 32) -> np.ndarray:
        y, x = rng.integers(0, image.shape[0] - side + 1), rng.integers(0, image.shape[1] - side + 1)
        patch = image[y : y + side, x : x + side]
        return np.ascontiguousarray(patch[:, ::-1] if rng.random() < 0.5 else patch)

    parameters = list(features.parameters()) + list(head.parameters())
    optimiser = torch.optim.Adam(parameters, 1e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, 2e-3, total_steps=steps)
    reals, fakes = train[~fake[train]], train[fake[train]]
    for _ in range(steps):
        rows = np.concatenate([rng.choice(reals, 32), rng.choice(fakes, 32)])
        loss = nn.functional.binary_cross_entropy_with_logits(forward([crop(pixels[r]) for r in rows]), torch.tensor(fake[rows], dtype=torch.float32))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
    features.eval()
    scores = np.zeros(len(test), np.float32)
    with torch.inference_mode():
        by_width: dict[int, list[int]] = {}
        for at, row in enumerate(test):
            by_width.setdefault(pixels[row].shape[1], []).append(at)
        for ats in by_width.values():
            for start in range(0, len(ats), 256):
                chunk = ats[start : start + 256]
                scores[chunk] = forward([pixels[test[a]] for a in chunk]).numpy()
    return scores


def view_aucs(fake: np.ndarray, view: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """ROC AUC in each platform view over the rows scored (NaN: not scored)."""
    at = {v: (view == v) & ~np.isnan(scores) for v in VIEWS}
    return {v: roc_auc_score(fake[rows], scores[rows]) for v, rows in at.items()}


def auc_table(images: pd.DataFrame, features: dict[str, np.ndarray], groups, cnn_steps: int) -> pd.DataFrame:
    """ROC AUC per feature set, classifier, setting, family and view."""
    fake = images["is_fake"].to_numpy()
    view = images["view"].to_numpy()
    methods = [(name, classifier) for name in features for classifier in ("logistic regression", "gradient boosting")]
    if cnn_steps:
        methods.append(("pixels", f"residual CNN, {cnn_steps} steps"))
    rows = []
    for name, classifier in methods:
        scores: dict[tuple[str, str], np.ndarray] = {}
        for setting, held, train, test in settings(images):
            if setting != "leave-one-family-out" and classifier != "gradient boosting":
                continue  # the ceilings (a family seen in training) with the stronger classifier only
            out = scores.setdefault((setting, held), np.full(len(images), np.nan))
            if classifier.startswith("residual CNN"):
                out[test] = cnn_scores(groups, fake, train, test, cnn_steps)
            else:
                x = features[name]
                out[test] = _classifier(classifier, len(train), x.shape[1]).fit(x[train], fake[train]).predict_proba(x[test])[:, 1]
        for (setting, held), out in scores.items():
            rows.append({"features": name, "classifier": classifier, "setting": setting, "held-out family": held, **view_aucs(fake, view, out)})
    return pd.DataFrame(rows)


def corpus_parser(module: str, doc: str) -> argparse.ArgumentParser:
    """The command line every external-corpus development check starts from: the corpus and the shipped model's cached fingerprints."""
    parser = argparse.ArgumentParser(prog=f"python -m {module}", description=doc.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, required=True, help="An external corpus (genprint zoo external).")
    parser.add_argument("--shipped", type=Path, required=True, help="The outside section's cached shipped-model fingerprints (.npz).")
    return parser


def main() -> None:
    parser = corpus_parser("bench.detection_dev", __doc__)
    parser.add_argument("--spectral", type=Path, required=True, help="The outside section's cached spectral fingerprints (.npz).")
    parser.add_argument("--cnn-steps", type=int, default=1500, help="Training steps of the residual CNN per fold (0: leave it out).")
    args = parser.parse_args()
    images = load_images(args.corpus)
    groups = read_by_size(images)
    shipped, spectral = np.load(args.shipped), np.load(args.spectral)
    logit = head_logit(shipped["fake_scores"])
    noise = per_image(groups, noise_statistics, len(images))
    features = {"shipped vector + head logit": np.c_[shipped["vectors"], logit], "spectral": spectral["vectors"], "noise statistics": noise,
                "resampling spectrum": per_image(groups, resampling_spectrum, len(images)),
                "shipped + head logit + noise statistics": np.c_[shipped["vectors"], logit, noise]}
    print(markdown_table(auc_table(images, features, groups, args.cnn_steps)))


if __name__ == "__main__":
    main()
