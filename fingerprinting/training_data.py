"""A zoo corpus in memory for training and validation: pixels, member labels and parsing targets."""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pandas as pd
from PIL import Image

from fingerprinting.network import HeadSpec


@dataclass
class LabelledImages:
    """Images of a zoo with what the network learns from them.

    ``member`` indexes ``member_ids`` (-1 for a real photograph); the per-member targets are rows of
    ``continuous`` (min-max scale, NaN unknown), ``discrete`` (choice index, -1 unknown) and
    ``losses`` (multi-hot).
    """

    pixels: np.ndarray  # (n, h, w, 3) uint8
    member: np.ndarray  # (n,) int64, -1 = real
    kind: np.ndarray  # (n,) str: what the zoo says each image is (sample, reconstruction, real, ...)
    split: np.ndarray  # (n,) str: the zoo split of each image
    source: np.ndarray  # (n,) int64: for a reconstruction, the row of the real crop it shows; else -1
    member_ids: list[str]
    member_split: np.ndarray  # (members,) str: the zoo split of each member
    member_family: np.ndarray  # (members,) str: the generator family of each member
    continuous: np.ndarray  # (members, n_continuous) float32
    discrete: np.ndarray  # (members, n_discrete) int64
    losses: np.ndarray  # (members, n_loss_types) float32
    # How often each member is drawn into a batch, relative to the others (None: all alike).
    member_weight: np.ndarray | None = None

    @property
    def is_fake(self) -> np.ndarray:
        return self.member >= 0


def member_targets(generators: pd.DataFrame, spec: HeadSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parsing targets of each generators.parquet row: (continuous, discrete, loss multi-hot)."""
    continuous = np.full((len(generators), len(spec.continuous)), np.nan, dtype=np.float32)
    for j, (name, low, high) in enumerate(spec.continuous):
        if name in generators:
            continuous[:, j] = np.clip((generators[name].to_numpy(np.float64) - low) / (high - low), 0.0, 1.0)
    discrete = np.full((len(generators), len(spec.discrete)), -1, dtype=np.int64)
    for j, (name, choices) in enumerate(spec.discrete):
        if name in generators:
            # Values outside the head's choices (a family-specific variant) stay unknown rather than wrong.
            discrete[:, j] = [choices.index(v) if v in choices else -1 for v in generators[name].astype(str)]
    losses = np.zeros((len(generators), len(spec.loss_types)), dtype=np.float32)
    for j, loss in enumerate(spec.loss_types):
        if f"loss_{loss}" in generators:
            losses[:, j] = generators[f"loss_{loss}"].fillna(False).astype(bool).to_numpy()
        elif "loss_types" in generators:
            losses[:, j] = [loss in list(types) for types in generators["loss_types"]]
    return continuous, discrete, losses


def content_sources(images: pd.DataFrame, member: np.ndarray) -> np.ndarray:
    """For each fake whose content is a real crop of the zoo (``content_id``), that real crop's row; else -1."""
    source = np.full(len(images), -1, dtype=np.int64)
    if "content_id" not in images:
        return source
    real_rows = {content: row for row, content in enumerate(images["content_id"]) if member[row] < 0 and isinstance(content, str)}
    for row, content in enumerate(images["content_id"]):
        if member[row] >= 0 and isinstance(content, str):
            source[row] = real_rows.get(content, -1)
    return source


def read_pixels(paths: list[str | os.PathLike]) -> np.ndarray:
    """Decode lossless zoo images of one size into one (n, h, w, 3) uint8 array."""
    first = np.asarray(Image.open(paths[0]).convert("RGB"))
    pixels = np.empty((len(paths),) + first.shape, dtype=np.uint8)
    for i, path in enumerate(paths):
        with Image.open(path) as image:
            pixels[i] = np.asarray(image.convert("RGB"))
    return pixels


def load_labelled_images(zoo_dir: str | os.PathLike, spec: HeadSpec) -> LabelledImages:
    """Every image of a zoo corpus with its labels (see ``fingerprinting.zoo.load_zoo``)."""
    from fingerprinting.zoo import load_zoo

    zoo = load_zoo(zoo_dir)
    generators = zoo.generators.reset_index(drop=True)
    images = zoo.images.reset_index(drop=True)
    member_ids = generators["member_id"].astype(str).tolist()
    index = {member_id: i for i, member_id in enumerate(member_ids)}
    member = np.array([-1 if pd.isna(m) else index[str(m)] for m in images["member_id"]], dtype=np.int64)
    paths = images["path"].tolist()  # absolute: load_zoo resolves them
    continuous, discrete, losses = member_targets(generators, spec)
    kind = images["kind"].astype(str).to_numpy() if "kind" in images else np.where(member >= 0, "sample", "real")
    split = images["split"].astype(str).to_numpy()
    return LabelledImages(read_pixels(paths), member, kind, split, content_sources(images, member), member_ids, generators["split"].astype(str).to_numpy(),
                          generators["family"].astype(str).to_numpy() if "family" in generators else np.full(len(generators), ""),
                          continuous, discrete, losses)
