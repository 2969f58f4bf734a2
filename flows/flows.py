"""Prefect flows: thin orchestration over the plain steps of flows.batch (discover, fingerprint shards, the update's stages).

- `run_flow`: one incremental batch run; fingerprint shards are mapped as tasks whose results stay
  on disk in the store (a task returns its shard folder, never arrays), so the same tasks run on the
  workers of an existing Dask cluster when the run names its scheduler (`dask_address`, flows.runners);
  the update's stages follow as tasks of their own names. Its callers (`Store.run`,
  `scheduled_run_flow`) make the run's checks and hold the store's lock (`flows.runs.begin_run`).
- `investigate_flow`, `known_add_flow`: the ad-hoc commands, visible in the Prefect UI too.
- `serve`: scheduled runs (`scheduled_run_flow`) with `flow.serve(cron=...)`.
Prefect's own result persistence stays off: the store is where results live, which is also what
makes a re-run skip finished shards, under any Prefect server or none.
"""
from __future__ import annotations

from flows import prefect_env

prefect_env.configure()

import re  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import asdict  # noqa: E402
from functools import lru_cache  # noqa: E402
from pathlib import Path  # noqa: E402

from prefect import Task, flow, get_run_logger, task, unmapped  # noqa: E402
from prefect.artifacts import create_markdown_artifact, create_table_artifact  # noqa: E402
from prefect.cache_policies import NO_CACHE  # noqa: E402
from prefect.futures import as_completed  # noqa: E402
from prefect.task_runners import ThreadPoolTaskRunner  # noqa: E402
from prefect.utilities.annotations import quote  # noqa: E402

from flows.batch import IO_RETRIES, IO_RETRY_DELAY_S, Steps, discover_step, execute  # noqa: E402
from flows.investigate import investigate  # noqa: E402
from flows.known import KnownGenerators  # noqa: E402
from flows.markdown import markdown_table  # noqa: E402
from flows.progress import progress_bar  # noqa: E402
from flows.runners import pin_this_thread, shard_runner  # noqa: E402
from flows.runs import Prepared, RunOptions, RunSummary, begin_run  # noqa: E402
from flows.shards import fingerprint_shard  # noqa: E402
from flows.store import StoreFolder  # noqa: E402


def _is_io_error(task, task_run, state) -> bool:
    """Retry only what a retry can fix: I/O errors (a busy disk, a flaky network filesystem)."""
    return isinstance(getattr(state, "data", None), OSError)


_IO_RETRIES = dict(retries=IO_RETRIES, retry_delay_seconds=IO_RETRY_DELAY_S, retry_condition_fn=_is_io_error)
_NO_RESULTS = dict(cache_policy=NO_CACHE, persist_result=False)

discover_task = task(name="discover", **_IO_RETRIES, **_NO_RESULTS)(discover_step)


@task(name="fingerprint-shard", tags=["genprint-fingerprint"], **_IO_RETRIES, **_NO_RESULTS)
def fingerprint_shard_task(store: str, key: str, paths: list[str], model: str) -> str:
    prefect_env.guard_temporary_server()  # on a Dask worker without PREFECT_API_URL, its own temporary API
    pin_this_thread()
    return fingerprint_shard(store, key, paths, model)


@flow(name="genprint-run", task_runner=ThreadPoolTaskRunner(max_workers=1), validate_parameters=False)
def run_flow(store: str, sources: list[str], options: RunOptions) -> RunSummary:
    """One incremental batch run over `sources` into `store` (flows.batch; see flows.update for the clustering rule).

    Called inside `flows.runs.begin_run` (by `Store.run` and `scheduled_run_flow`): the checks are
    made and the store's lock is held, `options.model` is resolved.
    """
    prefect_env.guard_temporary_server()
    summary = execute(store, sources, options, Steps(discover_task, _fingerprint_shards, _stage_task), get_run_logger())
    _publish_artifacts(summary)
    get_run_logger().info(summary.describe())
    return summary


@flow(name="genprint-scheduled-run", validate_parameters=False)
def scheduled_run_flow(store: str, sources: list[str], options: dict) -> RunSummary:
    """A run that `serve`'s schedule starts (its options come back as JSON): `begin_run`'s checks and lock, then `run_flow`."""
    prefect_env.guard_temporary_server()
    with begin_run(StoreFolder(store), sources, RunOptions(**options)) as checked:
        return run_flow(store, sources, checked)


@lru_cache(maxsize=None)
def _task_of(name: str, step: Callable) -> Task:
    return task(step, name=name, **_NO_RESULTS)


def _stage_task(name: str, step: Callable, *args):
    """One stage of the update as a Prefect task of its name, so a run shows where its time went.

    Arguments are quoted: Prefect would otherwise walk every list and dict in them (a million image ids).
    """
    return _task_of(name, step)(*(quote(a) for a in args))


def _fingerprint_shards(store: str, prepared: Prepared, options: RunOptions) -> list[str]:
    """Fingerprint the run's shards as mapped tasks; their folders in the order of `prepared.shards`."""
    todo = sum(len(s.paths) for s in prepared.shards)
    done: dict[str, str] = {}
    with shard_runner(options.dask_address) as runner, progress_bar("fingerprinting", enabled=options.progress and todo > 0) as on_progress:
        futures = runner.map(fingerprint_shard_task, dict(
            store=unmapped(store), key=[s.key for s in prepared.shards],
            paths=[list(s.paths) for s in prepared.shards], model=unmapped(options.model),
        ))
        size_of = {s.key: len(s.paths) for s in prepared.shards}
        for future in as_completed(list(futures)):
            folder = future.result()
            done[Path(folder).name] = folder
            on_progress(sum(size_of[k] for k in done), todo, f"{len(done)}/{len(size_of)} shards")
    return [done[s.key] for s in prepared.shards]


def _publish_artifacts(summary: RunSummary) -> None:
    """The run summary (markdown) and the largest clusters (table), under keys stable per store."""
    key = _artifact_key(summary.store)
    lines = [
        f"# genprint run `{summary.run_id}`",
        f"- store: `{summary.store}`",
        f"- inputs: {summary.inputs}; new images: {summary.images_new}; already stored: {summary.images_known}; unusable: {summary.errors}",
        f"- shards: {summary.shards} ({summary.shards_reused} reused after an interruption)",
        f"- store now: {summary.images_total} images, {summary.clusters} clusters, {summary.unassigned} unassigned ({summary.clustering})",
        "- seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in summary.seconds.items()),
        "- peak memory (MiB): " + ", ".join(f"{k} {v:.0f}" for k, v in summary.peak_memory_mb.items()),
        f"- report: `{summary.store}/{StoreFolder.REPORT}`",
    ]
    create_markdown_artifact("\n".join(lines), key=f"{key}-run-summary", description="genprint run summary")
    if summary.largest_clusters:
        create_table_artifact(summary.largest_clusters, key=f"{key}-largest-clusters", description="largest clusters")


def _artifact_key(store: str) -> str:
    """Artifact keys allow lowercase letters, digits and dashes: derived from the store's folder name."""
    name = re.sub(r"[^a-z0-9]+", "-", store.rstrip("/").rsplit("/", 1)[-1].lower()).strip("-")
    return f"genprint-{name or 'store'}"


@flow(name="genprint-investigate", validate_parameters=False)
def investigate_flow(store: str, images: list[str], k: int = 10) -> dict:
    """Investigate query images against a store; the result as JSON-ready data (also a markdown artifact)."""
    prefect_env.guard_temporary_server()
    investigation = investigate(StoreFolder(store), images, k=k)
    table = investigation.queries[["query", "cluster_id", "cluster_size", "fake_score", "attributed_generator"]]
    create_markdown_artifact(
        markdown_table(table, digits=None, missing=""),
        key=f"{_artifact_key(store)}-investigation",
        description="genprint investigation",
    )
    return investigation.to_dict()


@flow(name="genprint-known-add", validate_parameters=False)
def known_add_flow(
    store: str, name: str, sources: list[str], model: str | None = None, wait: float = 0.0, design: dict[str, object] | None = None
) -> int:
    """Register `sources` as reference images of generator `name` (and its known `design`); returns the number of unusable inputs."""
    prefect_env.guard_temporary_server()
    errors = KnownGenerators(StoreFolder(store)).add(name, sources, model=model, wait=wait, design=design)
    for row in errors.itertuples(index=False):
        get_run_logger().warning("reference not usable: %s: %s", row.path, row.error)
    return len(errors)


def serve(store: str, sources: list[str], cron: str, options: RunOptions) -> None:
    """Run `scheduled_run_flow` on a cron schedule until interrupted (a Prefect deployment served by this process)."""
    scheduled_run_flow.serve(
        name=f"{_artifact_key(store)}-schedule",
        cron=cron,
        parameters={"store": store, "sources": sources, "options": asdict(options)},
        pause_on_shutdown=False,
    )
