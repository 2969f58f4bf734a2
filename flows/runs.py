"""A batch run's plain steps before and around fingerprinting: options, checks, context, discovery, shard plan."""
from __future__ import annotations

import contextlib
import os
import secrets
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from fingerprinting.fingerprinter import ModelIdentity
from flows.defaults import DEFAULT_SHARD_SIZE
from flows.model import check_model
from flows.shards import Shard, is_done, model_key, plan_shards
from flows.sources import ProgressCallback, check_sources, discover, identify
from flows.store import FORMAT_VERSION, StoreFolder, is_in


@dataclass(frozen=True)
class RunOptions:
    """How a batch run goes: the keyword arguments of `Store.run`, the options of `genprint run`.

    Attributes
    ----------
    model : str or None
        Fingerprint model; left out, the store's own ("default" for a new store).
    shard_size : int
        Images per fingerprinting task (a unit of retry and resume).
    wait : float
        Seconds to wait for the store's lock (0: fail at once).
    recluster : bool or None
        True/False forces a full re-clustering or assignment only; None applies the rule of flows.update.
    min_cluster_size : int or None
        Smallest group reported as a cluster (None: OriginClusterer's).
    progress : bool
        Terminal progress bars.
    dask_address : str or None
        Fingerprint on the workers of the Dask cluster with this scheduler (tcp://HOST:PORT).
    allowed_roots : list of str or None
        Folders every source and manifest row must lie under (flows.sources).
    """

    model: str | None = None
    shard_size: int = DEFAULT_SHARD_SIZE
    wait: float = 0.0
    recluster: bool | None = None
    min_cluster_size: int | None = None
    progress: bool = False
    dask_address: str | None = None
    allowed_roots: Sequence[str | os.PathLike] | None = None

    def __post_init__(self) -> None:
        # Plain strings: the options travel as a Prefect flow parameter (JSON for a scheduled run).
        if self.allowed_roots is not None:
            object.__setattr__(self, "allowed_roots", [os.fspath(r) for r in self.allowed_roots])


@contextlib.contextmanager
def begin_run(store: StoreFolder, sources: list[str], options: RunOptions) -> Iterator[RunOptions]:
    """A run's checks, in one place and before any work; the store's lock is held until the block ends.

    The sources exist (and lie under `allowed_roots`), the lock is taken (waiting `wait` seconds),
    and the model is known and fits the store's fingerprints. Yields the options with the model resolved.
    """
    check_sources(sources, options.allowed_roots)
    with store.lock("genprint run", timeout=options.wait):
        model, _ = check_model(store, options.model)
        yield replace(options, model=model)


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
            f"tables: {store / StoreFolder.IMAGES}, {store / StoreFolder.CLUSTERS}, {store / StoreFolder.ERRORS}",
            f"report: {store / StoreFolder.REPORT}",
        ]
        if self.peak_memory_mb:
            lines.append("peak memory: " + ", ".join(f"{stage} {mb:.0f} MiB" for stage, mb in self.peak_memory_mb.items()))
        return "\n".join(lines)


def new_meta(fingerprinter: ModelIdentity, model: str) -> dict:
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


def prepare(
    store: StoreFolder,
    sources: list[str],
    fingerprinter: ModelIdentity,
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
