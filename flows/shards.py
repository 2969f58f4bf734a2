"""Fingerprinting in shards: a deterministic plan, and one shard's work written to disk as a unit.

A shard is named by a hash of its image ids and the fingerprinter's name and version, so the same
new images under the same model always give the same shards. A shard's results are written to a
temporary folder and renamed into `STORE/work/shards/<key>/` in one step: the folder exists only
when the shard is complete. A re-run after a crash therefore finds finished shards and skips them,
and a worker on another machine (Dask) needs nothing but the store's path and its shard's paths.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from clustering.atomic_file import write_dir_atomic
from fingerprinting.embed import EmbeddedChunk, embed_chunks
from fingerprinting.fingerprinter import ModelIdentity
from fingerprinting.runtime import pinned_threads
from flows.model import cached_fingerprinter
from flows.schemas import shard_errors_schema, shard_records_schema, to_table, vectors_table

SHARDS_DIR = Path("work") / "shards"
RECORDS_FILE, VECTORS_FILE, ERRORS_FILE = "records.parquet", "vectors.parquet", "errors.parquet"


@dataclass(frozen=True)
class Shard:
    """A unit of fingerprinting work: new images, one path each, by image id order."""

    key: str
    paths: tuple[str, ...]
    image_ids: tuple[str, ...]


def plan_shards(new_images: pd.DataFrame, shard_size: int, model_key: str) -> list[Shard]:
    """Split new images (one row per image_id, columns image_id and path) into shards of `shard_size`."""
    ordered = new_images.sort_values("image_id", kind="stable")
    shards = []
    for start in range(0, len(ordered), shard_size):
        part = ordered.iloc[start : start + shard_size]
        ids = tuple(part["image_id"])
        key = hashlib.sha256("\n".join((model_key, *ids)).encode()).hexdigest()[:32]
        shards.append(Shard(key=key, paths=tuple(part["path"]), image_ids=ids))
    return shards


def shard_dir(store_root: Path, key: str) -> Path:
    return Path(store_root) / SHARDS_DIR / key


def is_done(store_root: Path, key: str) -> bool:
    return shard_dir(store_root, key).is_dir()


def model_key(fingerprinter: ModelIdentity) -> str:
    return f"{fingerprinter.name}:{fingerprinter.version}"


def fingerprint_shard(store_root: str | os.PathLike, key: str, paths: list[str], model: str) -> str:
    """Fingerprint one shard's images into `STORE/work/shards/<key>/`; returns that folder (done: no work)."""
    out = shard_dir(Path(store_root), key)
    if out.is_dir():
        return str(out)
    # The whole shard in one chunk, decoded on every core: the network then runs many batches side by side
    # (runtime.map_batches). Smaller chunks left it one batch at a time: slower on 2 cores.
    chunk = next(embed_chunks([paths], cached_fingerprinter(model), workers=pinned_threads()))
    return _write_shard(out, chunk)


def fingerprint_shards(store_root: str | os.PathLike, shards: Sequence[Shard], model: str,
                       on_done: Callable[[Shard], None] = lambda shard: None) -> list[str]:
    """`fingerprint_shard` of each shard in turn, in this process, the next shard decoding while one is fingerprinted.

    The same chunks as `fingerprint_shard` (each shard whole), so the same files; `on_done(shard)` as each
    is written or found written by an earlier attempt. Returns their folders in `shards` order.
    """
    todo = []
    for shard in shards:
        if is_done(Path(store_root), shard.key):
            on_done(shard)
        else:
            todo.append(shard)
    if todo:
        chunks = embed_chunks([list(shard.paths) for shard in todo], cached_fingerprinter(model), workers=pinned_threads())
        with contextlib.closing(chunks):  # its decoding threads end here, also after an error
            for shard, chunk in zip(todo, chunks):
                _write_shard(shard_dir(Path(store_root), shard.key), chunk)
                on_done(shard)
    return [str(shard_dir(Path(store_root), shard.key)) for shard in shards]


def _write_shard(out: Path, chunk: EmbeddedChunk) -> str:
    def write(tmp: Path) -> None:
        pq.write_table(to_table(chunk.records, shard_records_schema()), tmp / RECORDS_FILE)
        pq.write_table(vectors_table(chunk.records["image_id"].tolist(), chunk.vectors), tmp / VECTORS_FILE)
        pq.write_table(to_table(chunk.errors, shard_errors_schema()), tmp / ERRORS_FILE)

    write_dir_atomic(out, write)  # the shard is complete or absent
    return str(out)


def read_shard(folder: Path) -> tuple[pd.DataFrame, pa.Table, pd.DataFrame]:
    """(records, vectors table, errors) of a finished shard.

    Read under today's schema, as the store's tables are: a shard written before a column existed
    (the parsed upsampling and loss families) has it null.
    """
    folder = Path(folder)
    return (
        pq.read_table(folder / RECORDS_FILE, schema=shard_records_schema()).to_pandas(),
        pq.read_table(folder / VECTORS_FILE),
        pq.read_table(folder / ERRORS_FILE).to_pandas(),
    )
