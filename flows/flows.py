"""Prefect flows: thin orchestration over the plain steps (discover, fingerprint shards, update, report).

- `run_flow`: one incremental batch run; fingerprint shards are mapped as tasks whose results stay
  on disk in the store (a task returns its shard folder, never arrays), so the same tasks run on the
  workers of an existing Dask cluster when the run names its scheduler (`dask_address`, flows.runners).
- `investigate_flow`, `known_add_flow`: the ad-hoc commands, visible in the Prefect UI too.
- `serve`: scheduled runs with `flow.serve(cron=...)`.
Prefect's own result persistence stays off: the store is where results live, which is also what
makes a re-run skip finished shards, under any Prefect server or none.
"""
from __future__ import annotations

from flows import prefect_env

prefect_env.configure()

import re  # noqa: E402
from pathlib import Path  # noqa: E402

from prefect import flow, get_run_logger, task, unmapped  # noqa: E402
from prefect.artifacts import create_markdown_artifact, create_table_artifact  # noqa: E402
from prefect.cache_policies import NO_CACHE  # noqa: E402
from prefect.futures import as_completed  # noqa: E402
from prefect.task_runners import ThreadPoolTaskRunner  # noqa: E402

from flows.batch import IO_RETRIES, IO_RETRY_DELAY_S, Steps, discover_step, execute, update_step  # noqa: E402
from flows.markdown import markdown_table  # noqa: E402
from flows.progress import progress_bar  # noqa: E402
from flows.runners import pin_this_thread, shard_runner  # noqa: E402
from flows.runs import Prepared, RunSummary  # noqa: E402
from flows.shards import fingerprint_shard  # noqa: E402
from flows.store import Store  # noqa: E402


def _is_io_error(task, task_run, state) -> bool:
    """Retry only what a retry can fix: I/O errors (a busy disk, a flaky network filesystem)."""
    return isinstance(getattr(state, "data", None), OSError)


_IO_RETRIES = dict(retries=IO_RETRIES, retry_delay_seconds=IO_RETRY_DELAY_S, retry_condition_fn=_is_io_error)
_NO_RESULTS = dict(cache_policy=NO_CACHE, persist_result=False)

discover_task = task(name="discover", **_IO_RETRIES, **_NO_RESULTS)(discover_step)
update_task = task(name="update-store", **_NO_RESULTS)(update_step)


@task(name="fingerprint-shard", tags=["genprint-fingerprint"], **_IO_RETRIES, **_NO_RESULTS)
def fingerprint_shard_task(store: str, key: str, paths: list[str], model: str) -> str:
    prefect_env.guard_temporary_server()  # on a Dask worker without PREFECT_API_URL, its own temporary API
    pin_this_thread()
    return fingerprint_shard(store, key, paths, model)


@flow(name="genprint-run", task_runner=ThreadPoolTaskRunner(max_workers=1), validate_parameters=False)
def run_flow(
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
    """One incremental batch run over `sources` into `store` (flows.batch; see flows.update for the clustering rule).

    `dask_address`: the scheduler of an existing Dask cluster (tcp://HOST:PORT) whose workers run the
    fingerprint shards; left out, they run in this process. `allowed_roots`: folders every source and
    manifest row must lie under (flows.sources).
    """
    prefect_env.guard_temporary_server()
    steps = Steps(
        discover=discover_task,
        fingerprint=lambda *args: _fingerprint_shards(*args, dask_address),
        update=update_task,
    )
    summary = execute(
        store, sources, model, shard_size, wait, recluster, min_cluster_size, progress, allowed_roots, steps, get_run_logger()
    )
    _publish_artifacts(summary)
    get_run_logger().info(summary.describe())
    return summary


def _fingerprint_shards(store: str, prepared: Prepared, model: str, progress: bool, dask_address: str | None) -> list[str]:
    """Fingerprint the run's shards as mapped tasks; their folders in the order of `prepared.shards`."""
    todo = sum(len(s.paths) for s in prepared.shards)
    done: dict[str, str] = {}
    with shard_runner(dask_address) as runner, progress_bar("fingerprinting", enabled=progress and todo > 0) as on_progress:
        futures = runner.map(fingerprint_shard_task, dict(
            store=unmapped(store), key=[s.key for s in prepared.shards],
            paths=[list(s.paths) for s in prepared.shards], model=unmapped(model),
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
        f"- seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in summary.seconds.items()),
        f"- peak memory (MiB): " + ", ".join(f"{k} {v:.0f}" for k, v in summary.peak_memory_mb.items()),
        f"- report: `{summary.store}/{Store.REPORT}`",
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
    investigation = Store(store).investigate(images, k=k)
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
    errors = Store(store).known.add(name, sources, model=model, wait=wait, design=design)
    for row in errors.itertuples(index=False):
        get_run_logger().warning("reference not usable: %s: %s", row.path, row.error)
    return len(errors)


def serve(
    store: str, sources: list[str], cron: str, model: str = "default", shard_size: int = 256, dask_address: str | None = None
) -> None:
    """Run `run_flow` on a cron schedule until interrupted (a Prefect deployment served by this process)."""
    parameters = {"store": store, "sources": sources, "model": model, "shard_size": shard_size, "wait": 600.0}
    run_flow.serve(
        name=f"{_artifact_key(store)}-schedule",
        cron=cron,
        parameters=parameters | ({"dask_address": dask_address} if dask_address else {}),
        pause_on_shutdown=False,
    )
