"""A tiny external-style corpus (`genprint zoo external`'s tables, random pixels, no ncnn) for the outside checks' tests."""
from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from bench import outside_part

MEMBERS = {"realcugan": ("cugan-a", "cugan-b"), "span": ("span-a", "span-b")}
PHOTOS = ("p:0", "p:1", "p:2", "p:4", "p:5", "p:6")  # three in each photograph fold (crc32 of the name)


def tiny_external_corpus(root: Path, members: dict[str, tuple[str, ...]] = MEMBERS) -> tuple[pd.DataFrame, pd.DataFrame]:
    """images.parquet-style rows: per photograph 2 crops, per member one image per photograph, in the corpus's three views;
    with generators.parquet-style rows of the members."""
    rng = np.random.default_rng(0)
    rows = []
    sources = [(None, None, photo, i) for photo in PHOTOS for i in range(2)]
    sources += [(family, member, photo, 0) for family, names in members.items() for member in names for photo in PHOTOS]
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
                               for f, names in members.items() for m in names])
    return outside_part.load_images(root), generators
