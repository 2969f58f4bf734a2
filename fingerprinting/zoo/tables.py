"""The zoo's two parquet tables (explicit schemas), their writing, and `load_zoo` for readers."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from clustering.atomic_file import write_atomic
from fingerprinting.design import HYPERPARAMETERS, LOSS_TYPES

GENERATORS_FILE = "generators.parquet"
IMAGES_FILE = "images.parquet"

# Continuous hyperparameters are float64 (the parsing heads regress them), discrete ones strings.
GENERATORS_SCHEMA = pa.schema(
    [
        pa.field("member_id", pa.string(), nullable=False),
        pa.field("family", pa.string(), nullable=False),
        pa.field("split", pa.string(), nullable=False),
        pa.field("seed", pa.int64(), nullable=False),
        *[pa.field(h.name, pa.float64() if h.kind == "continuous" else pa.string(), nullable=False) for h in HYPERPARAMETERS],
        *[pa.field(f"loss_{t}", pa.bool_(), nullable=False) for t in LOSS_TYPES],
        pa.field("losses", pa.list_(pa.string()), nullable=False),
        pa.field("param_count", pa.int64(), nullable=False),
        pa.field("train_steps", pa.int32(), nullable=False),
        pa.field("photos", pa.list_(pa.string()), nullable=False),
        pa.field("parent_id", pa.string()),  # the train member an unseen_seed member copies; null otherwise
        pa.field("images", pa.int32(), nullable=False),
    ]
)

IMAGES_SCHEMA = pa.schema(
    [
        pa.field("path", pa.string(), nullable=False),  # relative to the zoo folder, "/"-separated
        pa.field("member_id", pa.string()),  # null for real crops
        pa.field("is_fake", pa.bool_(), nullable=False),
        pa.field("split", pa.string(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),  # "sample", "reconstruction" or "real"
        pa.field("content_id", pa.string()),  # the real crop whose content the image shows; null for samples
        pa.field("photo", pa.string()),  # the photograph that content comes from; null for samples
        pa.field("width", pa.int32(), nullable=False),
        pa.field("height", pa.int32(), nullable=False),
    ]
)


def write_table(rows: list[dict], schema: pa.Schema, path: Path) -> None:
    """Write atomically (`clustering.atomic_file`), so a reader never sees half a table."""
    table = pa.Table.from_pylist(rows, schema=schema)
    write_atomic(path, lambda tmp: pq.write_table(table, tmp, compression="zstd"))


@dataclass(frozen=True)
class Zoo:
    """A built zoo: `generators` (one row per member) and `images` (one row per image, `path` absolute)."""

    root: Path
    generators: pd.DataFrame
    images: pd.DataFrame

    def resolve(self, relative_path: str) -> Path:
        return self.root / relative_path

    def members(self, split: str) -> pd.DataFrame:
        return self.generators[self.generators["split"] == split]


def load_zoo(out: Path | str) -> Zoo:
    """Read a finished zoo; image paths are resolved to absolute paths under `out`."""
    root = Path(out).resolve()
    missing = [name for name in (GENERATORS_FILE, IMAGES_FILE) if not (root / name).exists()]
    if missing:
        raise FileNotFoundError(f"{root} is not a finished zoo (missing {', '.join(missing)}); run `genprint zoo build {out}`")
    generators = pq.read_table(root / GENERATORS_FILE).to_pandas()
    images = pq.read_table(root / IMAGES_FILE).to_pandas()
    images["path"] = [str(root / p) for p in images["path"]]
    return Zoo(root, generators, images)
