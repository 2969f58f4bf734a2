"""A picture of a zoo: one row of images per family (and one of real crops), for readers of the docs."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from fingerprinting.zoo.plan import FAMILIES
from fingerprinting.zoo.tables import load_zoo

LABEL_WIDTH = 110


def sample_grid(zoo_dir: Path | str, out_png: Path | str, per_row: int = 12, scale: int = 1, seed: int = 0) -> Path:
    """Write a PNG grid: per family, images from as many different members as possible; the last row is real."""
    zoo = load_zoo(zoo_dir)
    images = zoo.images.merge(zoo.generators[["member_id", "family"]], on="member_id", how="left")
    images["family"] = images["family"].fillna("real")
    rng = np.random.default_rng(seed)
    rows: list[tuple[str, list[Path]]] = []
    for family in [f for f in FAMILIES if f in set(images.family)] + ["real"]:
        subset = images[images.family == family]
        by_member = [group.path.tolist() for _, group in subset.groupby(subset.member_id.fillna(""))]
        picks = []
        while len(picks) < per_row and any(by_member):
            for paths in by_member:
                if paths and len(picks) < per_row:
                    picks.append(Path(paths.pop(rng.integers(len(paths)))))
        rows.append((family, picks))
    size = Image.open(rows[0][1][0]).size[0] * scale
    return labelled_rows(rows, size, out_png)


def labelled_rows(rows: list[tuple[str, list[Path]]], size: int, out_png: Path | str, label_width: int = LABEL_WIDTH) -> Path:
    """Write rows of ``size`` px tiles (enlarged by nearest neighbour where smaller), each row with its label, as a PNG."""
    grid = Image.new("RGB", (label_width + max(len(p) for _, p in rows) * (size + 2), len(rows) * (size + 2)), "white")
    draw = ImageDraw.Draw(grid)
    for r, (label, paths) in enumerate(rows):
        top = r * (size + 2)
        draw.text((6, top + size // 2 - 6), label, fill="black")
        for c, path in enumerate(paths):
            with Image.open(path) as tile:
                grid.paste(tile.convert("RGB").resize((size, size), Image.Resampling.NEAREST), (label_width + c * (size + 2), top))
    out_png = Path(out_png)
    grid.save(out_png, optimize=True)
    return out_png
