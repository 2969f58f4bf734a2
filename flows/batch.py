"""A batch run's steps in order (discovery, fingerprint shards, the update's stages), with or without Prefect.

`execute` runs them inside `flows.runs.begin_run` (the run's checks made, the store's lock held),
each through `Steps`: `DIRECT`, plain calls in this process, when no Prefect server is configured
(Prefect would have nothing to report to, and its temporary server would cost seconds of start-up
on every run); else the Prefect flow `flows.flows.run_flow` hands in its tasks (each stage of the
update a task of its name). `Store.run` picks which (`prefect_env.uses_prefect`). Both write the
same store. Nothing here imports Prefect.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TypeVar

from flows.model import cached_identity
from flows.progress import progress_bar
from flows.runs import Prepared, RunContext, RunOptions, RunSummary, prepare
from flows.shards import Shard, fingerprint_shards
from flows.stage_memory import StagePeaks
from flows.store import StoreFolder
from flows.update import StageRunner, run_stage, update

# What Prefect's tasks retry (flows.flows): I/O errors, twice, 3 s apart.
IO_RETRIES = 2
IO_RETRY_DELAY_S = 3.0

T = TypeVar("T")


@dataclass(frozen=True)
class Steps:
    """How each step executes: plain calls here (`DIRECT`), Prefect tasks in flows.flows."""

    discover: Callable[[str, list[str], RunOptions], Prepared]
    fingerprint: Callable[[str, Prepared, RunOptions], list[str]]  # the shards' folders, in `prepared.shards` order
    stage: StageRunner  # each stage of the update (flows.update): `stage(name, function, *args)`


def execute(
    store: str, sources: list[str], options: RunOptions, steps: Steps, logger: logging.Logger | logging.LoggerAdapter
) -> RunSummary:
    """The run's steps, each through `steps` (inside `begin_run`: checks made, lock held, model resolved)."""
    parameters = dict(
        model=options.model, shard_size=options.shard_size, recluster=options.recluster, min_cluster_size=options.min_cluster_size
    )
    context = RunContext.start(sources, parameters)
    logger.info("run %s into %s", context.run_id, store)
    # Each stage's peak on its own: fingerprinting works on bounded shards, the update holds every stored fingerprint.
    peaks = StagePeaks()
    with peaks.stage("fingerprint"):
        prepared = steps.discover(store, sources, options)
        logger.info(
            "%d inputs: %d images already stored, %d new in %d shards (%d finished earlier), %d unusable",
            prepared.inputs, prepared.images_known, sum(len(s.paths) for s in prepared.shards), len(prepared.shards),
            prepared.shards_done, len(prepared.errors),
        )
        started = time.perf_counter()
        shard_dirs = steps.fingerprint(store, prepared, options)
        seconds = {"discover": prepared.seconds, "fingerprint": time.perf_counter() - started}
    with peaks.stage("update"):
        summary = update(StoreFolder(store), context, prepared, shard_dirs, options, seconds, stage=steps.stage)
    return replace(summary, peak_memory_mb=peaks.mb)


def discover_step(store: str, sources: list[str], options: RunOptions) -> Prepared:
    """Discovery and the shard plan (flows.runs.prepare), with a progress bar."""
    identity = cached_identity(options.model)  # the shards' names need no network
    with progress_bar("discovering", enabled=options.progress) as on_progress:
        return prepare(StoreFolder(store), sources, identity, options.shard_size, on_progress, options.allowed_roots)


def _fingerprint_here(store: str, prepared: Prepared, options: RunOptions) -> list[str]:
    """Every shard in this process, one decoding while the one before is fingerprinted (flows.shards.fingerprint_shards)."""
    todo = sum(len(s.paths) for s in prepared.shards)
    done: dict[str, int] = {}  # shard key -> images (a retry reports the shards it finds written again)
    with progress_bar("fingerprinting", enabled=options.progress and todo > 0) as on_progress:

        def shard_done(shard: Shard) -> None:
            done[shard.key] = len(shard.paths)
            on_progress(sum(done.values()), todo, f"{len(done)}/{len(prepared.shards)} shards")

        # After an I/O error the shards written so far are kept and the rest are fingerprinted again.
        return retry_io(lambda: fingerprint_shards(store, prepared.shards, options.model, shard_done))


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
    stage=run_stage,
)
