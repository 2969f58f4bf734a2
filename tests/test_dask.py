"""Fingerprinting on a real Dask cluster (a scheduler and two worker processes on loopback).

A run against the cluster's address gives the same tables and fingerprints as a local run, also
when a worker process dies halfway through writing a shard; task threads on the workers are pinned.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")
cloudpickle = pytest.importorskip("cloudpickle")

from flows import Store  # noqa: E402

SHARD_SIZE = 8  # several shards per worker, so the killed worker leaves work for the others


@pytest.fixture(scope="module")
def dask_cluster() -> Iterator[str]:
    """A local cluster of two single-threaded worker processes (with a nanny, which restarts a dead one)."""
    # Workers start with 2 OpenMP threads, as an unpinned worker on this machine would: pinning must change that.
    spawn_environ = {"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2"}
    with dask.config.set({"distributed.nanny.pre-spawn-environ": spawn_environ}), distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as cluster:
        yield cluster.scheduler_address


@pytest.fixture(autouse=True)
def _send_this_module_by_value() -> Iterator[None]:
    """The workers cannot import this test module: its plugin and probe travel by value."""
    module = sys.modules[__name__]
    cloudpickle.register_pickle_by_value(module)
    yield
    cloudpickle.unregister_pickle_by_value(module)


def _without_run_ids(frame: pd.DataFrame, key: str) -> pd.DataFrame:
    columns = [c for c in frame.columns if c not in ("first_seen_run", "last_seen_run", "run_id")]
    return frame[columns].sort_values(key).reset_index(drop=True)


class _DieWhileWritingAShard(distributed.WorkerPlugin):
    """The first shard written on the cluster kills its worker process halfway: records written, vectors not.

    Once for the whole cluster (a marker file says so); the nanny then starts a fresh worker.
    """

    name = "test-die-while-writing-a-shard"

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def setup(self, worker) -> None:
        import flows.shards

        self.original = write_vectors = flows.shards.vectors_table
        marker = self.marker

        def vectors_table_or_die(*args, **kwargs):
            try:
                os.close(os.open(marker, os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                return write_vectors(*args, **kwargs)
            os._exit(1)

        flows.shards.vectors_table = vectors_table_or_die

    def teardown(self, worker) -> None:
        import flows.shards

        flows.shards.vectors_table = self.original


def _worker_threads() -> tuple[int, int]:
    """Torch's and FAISS's thread counts inside a task thread, after what a shard task does first."""
    import faiss
    import torch

    from flows.runners import pin_this_thread

    pin_this_thread()
    return torch.get_num_threads(), faiss.omp_get_max_threads()


def test_dask_run_equals_a_local_run_though_a_worker_dies(
    dask_cluster: str, tiny_zoo: SimpleNamespace, tiny_store: SimpleNamespace, run_options: dict, tmp_path: Path
) -> None:
    marker = tmp_path / "killed"
    with distributed.Client(dask_cluster, set_as_default=False) as client:
        workers_before = set(client.scheduler_info()["workers"])
        client.register_plugin(_DieWhileWritingAShard(str(marker)))
        try:
            store = Store(tmp_path / "store")
            summary = store.run([str(tiny_zoo.root)], **{**run_options, "shard_size": SHARD_SIZE}, dask_address=dask_cluster)
        finally:
            client.unregister_worker_plugin(_DieWhileWritingAShard.name)
        client.wait_for_workers(2, timeout=60)
        # A worker died while writing a shard, and its nanny started a new one in its place.
        assert marker.exists() and set(client.scheduler_info()["workers"]) != workers_before

    assert summary.images_new == len(tiny_zoo.images) and summary.shards > 2
    reference = tiny_store.store  # the same sources, run locally
    images = store.images()
    assert images["image_id"].is_unique and set(images["image_id"]) == set(reference.images()["image_id"])
    pd.testing.assert_frame_equal(_without_run_ids(images, "image_id"), _without_run_ids(reference.images(), "image_id"))
    pd.testing.assert_frame_equal(_without_run_ids(store.clusters(), "cluster_id"), _without_run_ids(reference.clusters(), "cluster_id"))
    pd.testing.assert_frame_equal(_without_run_ids(store.errors(), "path"), _without_run_ids(reference.errors(), "path"))
    ids, vectors = store.vectors()
    assert len(set(ids)) == len(ids) == len(images)
    np.testing.assert_array_equal(vectors, reference.vectors(ids)[1])


def test_task_threads_on_workers_are_pinned(dask_cluster: str) -> None:
    from flows.runners import pin_worker_threads

    pin_worker_threads(dask_cluster, threads=1)  # what a run against the cluster does first
    with distributed.Client(dask_cluster, set_as_default=False) as client:
        workers = list(client.scheduler_info()["workers"])
        threads = [client.submit(_worker_threads, pure=False, workers=[w]).result(timeout=120) for w in workers]
    assert threads == [(1, 1)] * len(workers)


def test_an_unreachable_scheduler_is_a_user_error() -> None:
    from flows.errors import UserError
    from flows.runners import pin_worker_threads

    with pytest.raises(UserError, match="no Dask scheduler answers at tcp://127.0.0.1:9"):
        pin_worker_threads("tcp://127.0.0.1:9", 1, connect_timeout=2.0)
