"""A batch run's steps in order (lock, model check, discovery, fingerprint shards, update), with or without Prefect.

`run` (and `add_known`) picks how they execute. With a Prefect server configured (PREFECT_API_URL) or shards sent to a
Dask cluster, as the Prefect flow `flows.flows.run_flow`, whose tasks are these steps. Otherwise the
same steps run directly in this process: Prefect has nothing to report to then, and its temporary
server would cost seconds of start-up on every run. Both write the same store. Nothing here imports
Prefect.
"""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TypeVar

from flows.progress import progress_bar
from flows.runs import Prepared, RunContext, RunSummary, check_model, prepare, resolve_model
from flows.shards import cached_fingerprinter, fingerprint_shard
from flows.stage_memory import StagePeaks
from flows.store import Store
from flows.update import update

# What Prefect's tasks retry (flows.flows): I/O errors, twice, 3 s apart.
IO_RETRIES = 2
IO_RETRY_DELAY_S = 3.0

T = TypeVar("T")


def uses_prefect(dask_address: str | None = None) -> bool:
    """Whether a run orchestrates through Prefect: a configured server to report to, or Dask workers to reach."""
    return bool(os.environ.get("PREFECT_API_URL") or dask_address)


def run(
    store: str,
    sources: list[str],
    model: str | None = None,
    shard_size: int = 256,
    wait: float = 0.0,
    recluster: bool | None = None,
    min_cluster_size: int | None = None,
    progress: bool = False,
    dask_address: str | None = None,
    allowed_roots: list[str] | None = None,
) -> RunSummary:
    """One incremental batch run (see `Store.run`), as a Prefect flow when `uses_prefect`, else directly."""
    options = dict(
        store=store, sources=sources, model=model, shard_size=shard_size, wait=wait, recluster=recluster,
        min_cluster_size=min_cluster_size, progress=progress, allowed_roots=allowed_roots,
    )
    if uses_prefect(dask_address):
        from flows.flows import run_flow

        return run_flow(**options, dask_address=dask_address)
    return execute(**options, steps=DIRECT, logger=logging.getLogger("genprint"))


def add_known(
    store: str, name: str, sources: list[str], model: str | None = None, wait: float = 0.0, design: dict[str, object] | None = None
) -> int:
    """Register `sources` as references of generator `name` (KnownGenerators.add), as a Prefect flow when
    `uses_prefect`, else directly; returns the number of unusable inputs (each logged as a warning)."""
    if uses_prefect():
        from flows.flows import known_add_flow

        return known_add_flow(store, name, sources, model, wait, design)
    errors = Store(store).known.add(name, sources, model=model, wait=wait, design=design)
    for row in errors.itertuples(index=False):
        logging.getLogger("genprint").warning("reference not usable: %s: %s", row.path, row.error)
    return len(errors)


@dataclass(frozen=True)
class Steps:
    """How each step executes: plain calls here (`DIRECT`), Prefect tasks in flows.flows."""

    discover: Callable[[str, list[str], str, int, bool, list[str] | None], Prepared]
    fingerprint: Callable[[str, Prepared, str, bool], list[str]]  # the shards' folders, in `prepared.shards` order
    update: Callable[[str, RunContext, Prepared, list[str], str, bool | None, int | None, dict[str, float]], RunSummary]


def execute(
    store: str,
    sources: list[str],
    model: str | None,
    shard_size: int,
    wait: float,
    recluster: bool | None,
    min_cluster_size: int | None,
    progress: bool,
    allowed_roots: list[str] | None,
    steps: Steps,
    logger: logging.Logger | logging.LoggerAdapter,
) -> RunSummary:
    """The run under the store's lock, each step through `steps`."""
    target = Store(store)
    parameters = dict(model=model, shard_size=shard_size, recluster=recluster, min_cluster_size=min_cluster_size)
    with target.lock("genprint run", timeout=wait):
        model = resolve_model(target, model)
        parameters["model"] = model
        context = RunContext.start(sources, parameters)
        check_model(target.meta(), cached_fingerprinter(model))
        logger.info("run %s into %s", context.run_id, target.root)
        # Each stage's peak on its own: fingerprinting works on bounded shards, the update holds every stored fingerprint.
        peaks = StagePeaks()
        with peaks.stage("fingerprint"):
            prepared = steps.discover(store, sources, model, shard_size, progress, allowed_roots)
            logger.info(
                "%d inputs: %d images already stored, %d new in %d shards (%d finished earlier), %d unusable",
                prepared.inputs, prepared.images_known, sum(len(s.paths) for s in prepared.shards), len(prepared.shards),
                prepared.shards_done, len(prepared.errors),
            )
            started = time.perf_counter()
            shard_dirs = steps.fingerprint(store, prepared, model, progress)
            seconds = {"discover": prepared.seconds, "fingerprint": time.perf_counter() - started}
        with peaks.stage("update"):
            summary = steps.update(store, context, prepared, shard_dirs, model, recluster, min_cluster_size, seconds)
        return replace(summary, peak_memory_mb=peaks.mb)


def discover_step(
    store: str, sources: list[str], model: str, shard_size: int, progress: bool, allowed_roots: list[str] | None = None
) -> Prepared:
    """Discovery and the shard plan (flows.runs.prepare), with a progress bar."""
    with progress_bar("discovering", enabled=progress) as on_progress:
        return prepare(Store(store), sources, cached_fingerprinter(model), shard_size, on_progress, allowed_roots)


def update_step(
    store: str,
    context: RunContext,
    prepared: Prepared,
    shard_dirs: list[str],
    model: str,
    recluster: bool | None,
    min_cluster_size: int | None,
    seconds: dict[str, float],
) -> RunSummary:
    """The store's update from the finished shards (flows.update)."""
    return update(
        Store(store), context, prepared, shard_dirs, cached_fingerprinter(model), model, recluster, min_cluster_size, seconds
    )


def _fingerprint_here(store: str, prepared: Prepared, model: str, progress: bool) -> list[str]:
    """Each shard in turn, in this process."""
    todo = sum(len(s.paths) for s in prepared.shards)
    folders: list[str] = []
    with progress_bar("fingerprinting", enabled=progress and todo > 0) as on_progress:
        for shard in prepared.shards:
            folders.append(retry_io(lambda: fingerprint_shard(store, shard.key, list(shard.paths), model)))
            on_progress(sum(len(s.paths) for s in prepared.shards[: len(folders)]), todo, f"{len(folders)}/{len(prepared.shards)} shards")
    return folders


def retry_io(call: Callable[[], T], retries: int = IO_RETRIES, delay: float = IO_RETRY_DELAY_S) -> T:
    """`call()`, again after an I/O error (a busy disk, a flaky network filesystem), as Prefect's tasks retry."""
    for _ in range(retries):
        try:
            return call()
        except OSError:
            time.sleep(delay)
    return call()


DIRECT = Steps(
    discover=lambda *args: retry_io(lambda: discover_step(*args)),
    fingerprint=_fingerprint_here,
    update=update_step,
)
