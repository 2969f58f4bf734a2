"""A batch run's plain steps before and around fingerprinting: context, model check, discovery, shard plan."""
from __future__ import annotations

import secrets
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from fingerprinting.models import Fingerprinter
from flows.shards import Shard, is_done, model_key, plan_shards
from flows.sources import ProgressCallback, discover, identify
from flows.store import FORMAT_VERSION, Store, StoreError, is_in


@dataclass(frozen=True)
class RunContext:
    """Who and what a run is: its id (sortable by time), start, sources and parameters."""

    run_id: str
    started_at: datetime
    sources: tuple[str, ...]
    parameters: dict

    @classmethod
    def start(cls, sources: list[str], parameters: dict) -> RunContext:
        now = datetime.now(timezone.utc)
        return cls(f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}", now, tuple(sources), parameters)


@dataclass
class Prepared:
    """What discovery found: identified inputs, unusable ones, and the shards still to fingerprint."""

    identified: pd.DataFrame  # path, image_id, size_bytes, mtime_ns, cached
    errors: pd.DataFrame  # path, error: unusable before fingerprinting
    shards: list[Shard]
    shards_done: int  # finished by an earlier, interrupted attempt
    images_known: int  # distinct images of this run already in the store
    seconds: float

    @property
    def inputs(self) -> int:
        """Distinct input paths, usable or not."""
        return len(set(self.identified["path"]) | set(self.errors["path"]))


@dataclass
class RunSummary:
    """The numbers of one run, as returned to Python callers and printed by the command line."""

    run_id: str
    store: str
    clustering: str
    inputs: int
    images_new: int
    images_known: int
    images_total: int
    errors: int
    shards: int
    shards_reused: int
    clusters: int
    unassigned: int
    largest_clusters: list[dict] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    # Peak resident memory of this process per stage ("fingerprint", "update"); with Dask, workers are not counted.
    peak_memory_mb: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        store = Path(self.store)
        lines = [
            f"run {self.run_id}: {self.inputs} inputs, {self.images_new} new images "
            f"({self.images_known} already stored), {self.errors} unusable",
            f"store: {self.images_total} images in {self.clusters} clusters, {self.unassigned} unassigned "
            f"({self.clustering}); {self.seconds.get('total', 0):.1f} s",
            f"tables: {store / Store.IMAGES}, {store / Store.CLUSTERS}, {store / Store.ERRORS}",
            f"report: {store / Store.REPORT}",
        ]
        if self.peak_memory_mb:
            lines.append("peak memory: " + ", ".join(f"{stage} {mb:.0f} MiB" for stage, mb in self.peak_memory_mb.items()))
        return "\n".join(lines)


def new_meta(fingerprinter: Fingerprinter, model: str) -> dict:
    """The record of a brand-new store: its fingerprint model and fresh id counters."""
    return {
        "format_version": FORMAT_VERSION,
        "model": str(model),
        "model_name": fingerprinter.name,
        "model_version": fingerprinter.version,
        "dim": int(fingerprinter.dim),
        "next_int_id": 0,
        "next_cluster_id": 0,
        "clustered_images": 0,
        "assigned_since_recluster": 0,
        "known_digest": "",
        "last_run_id": "",
    }


def resolve_model(store: Store, model: str | None) -> str:
    """The model asked for, else the store's own, else "default" (a new store)."""
    return model or store.meta().get("model") or "default"


def check_model(meta: dict, fingerprinter: Fingerprinter) -> None:
    """Fingerprints of two models cannot be compared: a store keeps the model it started with."""
    if not meta:
        return
    if meta.get("format_version") != FORMAT_VERSION:
        raise StoreError(f"store format {meta.get('format_version')} is not {FORMAT_VERSION}: use a new store")
    name, version = meta["model_name"], meta["model_version"]
    if name != fingerprinter.name:
        raise StoreError(
            f"this store holds fingerprints of model {name}, not {fingerprinter.name}: "
            f"run with --model {meta['model']}, or use a new --store"
        )
    if version != fingerprinter.version:
        raise StoreError(
            f"this store holds fingerprints of {name} version {version}, but this genprint's {name} is version "
            f"{fingerprinter.version}: fingerprints of two versions cannot be compared; run the sources into a new --store"
        )


def prepare(
    store: Store,
    sources: list[str],
    fingerprinter: Fingerprinter,
    shard_size: int,
    on_progress: ProgressCallback | None = None,
    allowed_roots: list[str] | None = None,
) -> Prepared:
    """Discover and identify the inputs, skip images already stored, plan shards for the new ones."""
    started = time.perf_counter()
    paths, input_errors = discover(sources, exclude=[store.root], allowed_roots=allowed_roots)
    identified, unreadable = identify(paths, store.paths(), on_progress)
    stored = set(store.images()["image_id"])
    # Bytes that failed to decode before fail again: report them without decoding them again.
    failed = store.errors().dropna(subset=["image_id"]).drop_duplicates("image_id").set_index("image_id")["error"]
    known_bad = identified[identified["image_id"].isin(failed.index)]
    known_bad = pd.DataFrame({"path": known_bad["path"], "error": known_bad["image_id"].map(failed)})
    is_stored = is_in(identified["image_id"], stored)
    fresh = identified[~is_stored & ~identified["image_id"].isin(failed.index)]
    # Same bytes under two names: one image (fingerprinted once, from its first path in order).
    fresh = fresh.sort_values("path").drop_duplicates("image_id")
    shards = plan_shards(fresh[["image_id", "path"]], shard_size, model_key(fingerprinter))
    return Prepared(
        identified=identified,
        errors=pd.concat([input_errors, unreadable, known_bad], ignore_index=True),
        shards=shards,
        shards_done=sum(is_done(store.root, shard.key) for shard in shards),
        images_known=int(identified.loc[is_stored, "image_id"].nunique()),
        seconds=time.perf_counter() - started,
    )
