"""FEN-style (Asnani et al.) on the external corpus, leave-one-family-out: one training per fold.

For each held-out family F and photograph fold P (``outside_part.folds``), a FEN-style net is trained
on the fold's training rows (the other family's generated images and the other half's photograph
crops) and then fingerprints every row whose photograph is in P (F's images, the other family's
images, P's crops: none of them seen in training) and the training photographs' crops (what the
verdict rule is fitted on). Training reads 64 px centre crops, so it uses the clean and JPEG 85
views and the half-size view of the 128 px images; the 32 px half views of the 64 px images are
fingerprinted, not trained on.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from PIL import Image

from bench.baselines.fen import FenConfig, FenFingerprinter, fit_fen
from fingerprinting.embed import embed_paths
from fingerprinting.fingerprinter import Fingerprinter
from fingerprinting.network import HeadSpec
from fingerprinting.training_data import LabelledImages, member_targets

# Small enough that four trainings and their fingerprinting take minutes on two cores (the paper's
# FEN is 17 layers x 64 channels on full images).
OUTSIDE_FEN = FenConfig(layers=5, channels=16, hidden_dim=64, epochs=4, steps_per_epoch=100, batch_size=64, crop=32)
TRAIN_SIDE = 64


@dataclass
class FoldFingerprints:
    """Per fold, one net's view of the corpus: ``vectors`` (folds, n, dim) and ``fake_scores`` (folds, n),
    NaN in the rows that fold's net did not fingerprint; ``keys`` names the folds as (family, photograph fold)."""

    keys: list[tuple[str, int]]
    vectors: np.ndarray
    fake_scores: np.ndarray

    def fold(self, held: str, photo_fold: int) -> tuple[np.ndarray, np.ndarray]:
        at = self.keys.index((held, photo_fold))
        return self.vectors[at], self.fake_scores[at]


def version(config: FenConfig) -> str:
    """The cache key's model part: everything that decides the trained nets."""
    return "fen-lofo:" + ",".join(f"{k}={v}" for k, v in sorted(asdict(config).items()))


def centre_square(path: str, side: int = TRAIN_SIDE) -> np.ndarray:
    """A corpus image as a ``side`` px square: its centre crop (larger), or reflected up to it (smaller)."""
    with Image.open(path) as image:
        pixels = np.asarray(image.convert("RGB"))
    h, w = pixels.shape[:2]
    if h >= side and w >= side:
        top, left = (h - side) // 2, (w - side) // 2
        return pixels[top : top + side, left : left + side]
    return np.pad(pixels, ((0, side - h), (0, side - w), (0, 0)), mode="reflect")


def labelled_external(corpus: pd.DataFrame, generators: pd.DataFrame, rows: np.ndarray, spec: HeadSpec, side: int = TRAIN_SIDE) -> LabelledImages:
    """``rows`` of the external corpus (``outside_part.load_images``) as training data: ``side`` px centre crops,
    member labels and the parsing targets of generators.parquet."""
    member_ids = generators["member_id"].astype(str).tolist()
    index = {m: i for i, m in enumerate(member_ids)}
    picked = corpus.iloc[rows]
    member = np.array([-1 if pd.isna(m) else index[str(m)] for m in picked["member_id"]], dtype=np.int64)
    continuous, discrete, losses = member_targets(generators, spec)
    return LabelledImages(
        pixels=np.stack([centre_square(p, side) for p in picked["path"]]), member=member, kind=picked["kind"].astype(str).to_numpy(),
        split=picked["split"].astype(str).to_numpy(), source=np.full(len(rows), -1, dtype=np.int64), member_ids=member_ids,
        member_split=generators["split"].astype(str).to_numpy(), member_family=generators["family"].astype(str).to_numpy(),
        continuous=continuous, discrete=discrete, losses=losses,
    )


def judged_rows(images: pd.DataFrame, photo_fold: int, train: np.ndarray) -> np.ndarray:
    """What a fold's net is judged on: every row of its photograph fold, and the training photographs' crops
    (the verdict rule is fitted on those)."""
    real_train = train[~images["is_fake"].to_numpy()[train]]
    return np.flatnonzero((images["fold"].to_numpy() == photo_fold) | np.isin(np.arange(len(images)), real_train))


def fingerprint_rows(images: pd.DataFrame, rows: np.ndarray, fingerprinter: Fingerprinter) -> tuple[np.ndarray, np.ndarray]:
    """(vectors, fake scores) of ``rows`` of the corpus through the product's loading and cropping; NaN elsewhere."""
    vectors = np.full((len(images), fingerprinter.dim), np.nan, np.float32)
    scores = np.full(len(images), np.nan, np.float32)
    for start, chunk in zip(range(0, len(rows), 512), embed_paths(images["path"].iloc[rows], fingerprinter, chunk_size=512)):
        if len(chunk.errors):
            raise RuntimeError(f"{fingerprinter.name}: unreadable corpus images: {chunk.errors['path'].tolist()[:3]}")
        at = rows[start : start + len(chunk.records)]
        vectors[at] = chunk.vectors
        scores[at] = chunk.records["fake_score"].to_numpy(np.float32)
    return vectors, scores


def fen_fold_fingerprints(images: pd.DataFrame, generators: pd.DataFrame, folds: Iterable[tuple[str, int, np.ndarray, np.ndarray]],
                          config: FenConfig, log: Callable[[str], None]) -> FoldFingerprints:
    """Train one FEN-style net per fold of ``folds`` (``outside_part.folds``) and fingerprint what that fold is
    judged on (module docstring)."""
    spec = HeadSpec.from_space()
    trainable = ((images["width"] >= TRAIN_SIDE) & (images["height"] >= TRAIN_SIDE)).to_numpy()
    keys, vectors, scores = [], [], []
    for held, p, train, _ in folds:
        rows = train[trainable[train]]
        data = labelled_external(images, generators, rows, spec)
        net, seconds = fit_fen(data, np.arange(len(rows)), config, spec)
        fingerprinter = FenFingerprinter(net, crop_size=config.crop)
        judged = judged_rows(images, p, train)
        fold_vectors, fold_scores = fingerprint_rows(images, judged, fingerprinter)
        keys.append((held, p))
        vectors.append(fold_vectors)
        scores.append(fold_scores)
        log(f"outside: FEN-style without {held}, photograph fold {p}: trained on {len(rows)} images in {seconds:.0f} s, "
            f"fingerprinted {len(judged)}")
    return FoldFingerprints(keys, np.stack(vectors), np.stack(scores))
