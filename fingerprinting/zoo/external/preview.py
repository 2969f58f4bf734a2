"""A picture of the external corpus: one row of clean images per generator, then rows of photograph crops."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from fingerprinting.zoo.preview import labelled_rows
from fingerprinting.zoo.tables import GENERATORS_FILE, IMAGES_FILE

LABEL_WIDTH = 230


def sample_grid(corpus_dir: Path | str, out_png: Path | str, size: int = 64, per_row: int = 8, real_rows: int = 2, seed: int = 0) -> Path:
    """Write a PNG grid of clean `size` px images: per generator (catalogue order) `per_row` of its images, then real crops."""
    root = Path(corpus_dir)
    images = pq.read_table(root / IMAGES_FILE).to_pandas()
    images = images[(images["view"] == "clean") & (images["size"] == size)]
    rng = np.random.default_rng(seed)
    rows = []
    for member_id in pq.read_table(root / GENERATORS_FILE, columns=["member_id"]).column(0).to_pylist():
        paths = images.loc[images["member_id"] == member_id, "path"].to_numpy()
        rows.append((member_id, list(rng.choice(paths, min(per_row, len(paths)), replace=False))))
    reals = images.loc[~images["is_fake"], "path"].to_numpy()
    picks = list(rng.choice(reals, min(per_row * real_rows, len(reals)), replace=False))
    rows += [(f"camera photographs {i + 1}", picks[i * per_row : (i + 1) * per_row]) for i in range(real_rows)]
    return labelled_rows([(label, [root / p for p in paths]) for label, paths in rows], size, out_png, LABEL_WIDTH)
