"""Where a run's fingerprint shards execute: a local thread, or the workers of an existing Dask cluster.

Shard tasks take the store's path and their images' paths and return their shard folder's path, so
on Dask nothing large travels through the scheduler; the workers need the store's filesystem and
the same genprint version (README, "Running on a Dask cluster").
"""
from __future__ import annotations

import warnings

from prefect.settings import get_current_settings
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from flows.errors import UserError

# Threads each worker process gives torch, BLAS and FAISS: Dask runs one task per worker thread,
# so one library thread per task keeps a host's cores from being oversubscribed.
WORKER_LIBRARY_THREADS = 1


def shard_runner(dask_address: str | None = None, worker_threads: int = WORKER_LIBRARY_THREADS) -> TaskRunner:
    """A task runner for the shard tasks (use as a context manager): local, or the Dask scheduler at `dask_address`."""
    if not dask_address:
        return ThreadPoolTaskRunner(max_workers=1)
    try:
        from prefect_dask import DaskTaskRunner
    except ImportError as exc:
        raise UserError("--dask-address needs the dask extra: pip install '.[dask]' (prefect-dask, distributed)") from exc
    if not get_current_settings().api.url:
        warnings.warn(
            "PREFECT_API_URL is not set: each Dask worker starts a temporary Prefect API of its own (slow, and its "
            "task runs are not seen together); point PREFECT_API_URL to a Prefect server the workers can reach",
            stacklevel=2,
        )
    pin_worker_threads(dask_address, worker_threads)
    return DaskTaskRunner(address=dask_address)


def pin_worker_threads(dask_address: str, threads: int, connect_timeout: float = 60.0) -> None:
    """Pin the library threads of every worker of the cluster, now and of workers that join (or restart) later."""
    import distributed

    try:
        client = distributed.Client(dask_address, set_as_default=False, timeout=connect_timeout)
    except OSError as exc:  # includes the connection's time-out
        raise UserError(f"no Dask scheduler answers at {dask_address} ({exc}); start one, or check the address") from exc
    with client:
        client.register_plugin(_PinThreads(threads), name=_PinThreads.name)


def pin_this_thread() -> None:
    """In a Dask worker with the pinning plugin, pin the calling task thread too (OpenMP counts per thread)."""
    try:
        from distributed import get_worker

        plugin = get_worker().plugins.get(_PinThreads.name)
    except (ImportError, ValueError):  # not running on a Dask worker
        return
    if plugin is not None:
        _pin(plugin.threads)


def _pin(threads: int) -> None:
    from clustering.index import set_threads
    from fingerprinting.runtime import pin_threads

    set_threads(pin_threads(threads))


try:
    from distributed.diagnostics.plugin import WorkerPlugin
except ImportError:  # the `dask` extra is not installed: only the local runner exists
    WorkerPlugin = object  # type: ignore[misc,assignment]


class _PinThreads(WorkerPlugin):
    """Pins torch/BLAS/FAISS threads in a worker process; tasks call `pin_this_thread` for their own thread."""

    name = "genprint-pin-threads"

    def __init__(self, threads: int) -> None:
        self.threads = max(1, int(threads))

    def setup(self, worker) -> None:
        _pin(self.threads)
