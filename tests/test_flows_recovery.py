"""A run killed with SIGKILL while fingerprinting, then re-run, ends with the same store as an uninterrupted run."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd

from flows import Store

SHARD_SIZE = 4  # many shards, so the kill lands between the first and the last


def _without_run_ids(frame: pd.DataFrame, key: str) -> pd.DataFrame:
    columns = [c for c in frame.columns if c not in ("first_seen_run", "last_seen_run", "run_id")]
    return frame[columns].sort_values(key).reset_index(drop=True)


def _start_run(zoo: Path, store: Path, prefect_api: str, run_options: dict) -> subprocess.Popen:
    command = [
        str(Path(sys.executable).parent / "genprint"), "run", str(zoo), "--store", str(store),
        "--model", run_options["model"], "--shard-size", str(SHARD_SIZE),
        "--min-cluster-size", str(run_options["min_cluster_size"]), "--threads", "1", "--quiet",
    ]
    env = dict(os.environ, PREFECT_API_URL=prefect_api)  # report to the session's server: no second start-up
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def _wait_for_first_shard(process: subprocess.Popen, shards: Path, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if shards.is_dir() and any(not p.name.startswith(".") for p in shards.iterdir()):
            return
        if process.poll() is not None:
            raise AssertionError(f"the run ended before it could be killed:\n{process.stdout.read()}")
        time.sleep(0.02)
    raise AssertionError("no shard finished in time")


def test_run_killed_while_fingerprinting_resumes_to_the_same_store(
    tiny_zoo: SimpleNamespace, tiny_store: SimpleNamespace, prefect_api: str, run_options: dict, tmp_path: Path
) -> None:
    store = Store(tmp_path / "store")
    process = _start_run(tiny_zoo.root, store.root, prefect_api, run_options)
    _wait_for_first_shard(process, store.root / "work" / "shards")
    os.killpg(process.pid, signal.SIGKILL)
    assert process.wait(timeout=60) == -signal.SIGKILL
    assert not (store / Store.IMAGES).exists()  # nothing committed, no partial table visible
    finished = len([p for p in (store / "work" / "shards").iterdir() if not p.name.startswith(".")])

    summary = store.run([str(tiny_zoo.root)], **{**run_options, "shard_size": SHARD_SIZE})
    assert 1 <= summary.shards_reused == finished < summary.shards
    assert summary.images_new == len(tiny_zoo.images)

    reference = tiny_store.store  # the same sources, uninterrupted
    pd.testing.assert_frame_equal(_without_run_ids(store.images(), "image_id"), _without_run_ids(reference.images(), "image_id"))
    pd.testing.assert_frame_equal(_without_run_ids(store.clusters(), "cluster_id"), _without_run_ids(reference.clusters(), "cluster_id"))
    pd.testing.assert_frame_equal(_without_run_ids(store.errors(), "path"), _without_run_ids(reference.errors(), "path"))
    ids, vectors = store.vectors()
    ref_ids, ref_vectors = reference.vectors(ids)
    assert sorted(ids) == sorted(reference.images()["image_id"]) and len(set(ids)) == len(ids)
    np.testing.assert_array_equal(vectors, ref_vectors)
    assert len(store.ids()) == len(ids)
