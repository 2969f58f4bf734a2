"""FEN-style leave-one-family-out on a tiny external-style corpus: each fold's net really trains and
scores the rows it is judged on, and nothing else."""
from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from bench import outside_part
from bench.baselines.fen import FenConfig
from bench.outside_fen import fen_fold_fingerprints

TINY = FenConfig(layers=3, channels=8, hidden_dim=16, epochs=1, steps_per_epoch=3, batch_size=8, crop=32)
MEMBERS = {"realcugan": ("cugan-a", "cugan-b"), "span": ("span-a", "span-b")}
PHOTOS = ("p:0", "p:1", "p:2", "p:4", "p:5", "p:6")  # three in each photograph fold (crc32 of the name)


def _corpus(root: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """images.parquet-style rows: per photograph 2 crops, per member one image per photograph, in the corpus's three views."""
    rng = np.random.default_rng(0)
    rows = []
    sources = [(None, None, photo, i) for photo in PHOTOS for i in range(2)]
    sources += [(family, member, photo, 0) for family, members in MEMBERS.items() for member in members for photo in PHOTOS]
    for family, member, photo, i in sources:
        source_id = f"{member or 'real'}/{photo.replace(':', '_')}-{i}"
        pixels = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
        if member is not None:  # a periodic trace, as upsampling leaves
            pixels[::2, ::2] = pixels[::2, ::2] // 2 + 100 + 20 * (zlib.crc32(member.encode()) % 5)
        clean = Image.fromarray(pixels)
        for view, image, suffix in (("clean", clean, "png"), ("jpeg85", clean, "jpg"), ("half_jpeg85", clean.resize((32, 32)), "jpg")):
            path = root / f"{source_id}.{view}.{suffix}"
            path.parent.mkdir(parents=True, exist_ok=True)
            image.save(path, quality=85)
            rows.append({"path": path.relative_to(root).as_posix(), "source_id": source_id, "view": view, "member_id": member,
                         "family": family, "is_fake": member is not None, "split": "external", "kind": "sample" if member else "real",
                         "photo": photo, "photo_source": "p", "photo_scale": 1.0, "size": 64, "width": image.width, "height": image.height})
    pd.DataFrame(rows).to_parquet(root / "images.parquet")
    generators = pd.DataFrame([{"member_id": m, "family": f, "split": "external", "upsampling": "pixel_shuffle" if f == "span" else "bilinear"}
                               for f, members in MEMBERS.items() for m in members])
    return outside_part.load_images(root), generators


def test_each_fold_trains_and_scores_exactly_the_rows_it_is_judged_on(tmp_path: Path) -> None:
    images, generators = _corpus(tmp_path)
    folds = list(outside_part.folds(images))
    prints = fen_fold_fingerprints(images, generators, folds, TINY, print)
    fake = images["is_fake"].to_numpy()
    for held, p, train, test in folds:
        vectors, scores = prints.fold(held, p)
        judged = (images["fold"].to_numpy() == p) | np.isin(np.arange(len(images)), train[~fake[train]])
        assert np.isfinite(scores[test]).all() and ((scores[test] >= 0) & (scores[test] <= 1)).all()
        assert np.isfinite(scores[judged]).all() and np.isnan(scores[~judged]).all()
        assert np.allclose(np.linalg.norm(vectors[test], axis=1), 1, atol=1e-4)
    # Trained per fold: the two photograph folds of one held-out family have different nets.
    a, b = prints.fold("span", 0)[1], prints.fold("span", 1)[1]
    both = np.isfinite(a) & np.isfinite(b)
    assert both.any() and not np.allclose(a[both], b[both])
    # Every table takes it: detection by its own head only; grouping and attribution per photograph fold.
    detection = outside_part.detection_table(images, {outside_part.FEN: prints})
    assert len(detection) == 2 * len(outside_part.VIEWS) and detection["auc"].between(0, 1).all()
    grouping = outside_part.grouping_table(images, {outside_part.FEN: prints})
    assert len(grouping) == 2 * len(outside_part.VIEWS) and grouping["ari"].between(-1, 1).all()
    attribution = outside_part.attribution_table(images, {outside_part.FEN: prints}, {outside_part.FEN: None})
    assert attribution["closed_set_accuracy"].between(0, 1).all()
