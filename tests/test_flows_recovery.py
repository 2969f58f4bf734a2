"""A run killed with SIGKILL while fingerprinting leaves no process behind, and its re-run ends with the same store
as an uninterrupted run: run directly (the command line without a Prefect server), and as a Prefect flow
with Prefect's temporary server (the flow called from Python without PREFECT_API_URL)."""
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
import pytest

from flows import Store

SHARD_SIZE = 4  # many shards, so the kill lands between the first and the last
GONE_WITHIN_S = 15.0  # the watchdog ends a temporary server within ~5 s of its parent's death


def _without_run_ids(frame: pd.DataFrame, key: str) -> pd.DataFrame:
    columns = [c for c in frame.columns if c not in ("first_seen_run", "last_seen_run", "run_id")]
    return frame[columns].sort_values(key).reset_index(drop=True)


def _start_run(how: str, zoo: Path, store: Path, run_options: dict) -> subprocess.Popen:
    """A run in a session of its own (so everything it starts can be found), with no PREFECT_API_URL."""
    if how == "command":
        command = [
            str(Path(sys.executable).parent / "genprint"), "run", str(zoo), "--store", str(store),
            "--model", run_options["model"], "--shard-size", str(SHARD_SIZE),
            "--min-cluster-size", str(run_options["min_cluster_size"]), "--threads", "1", "--quiet",
        ]
    else:  # the Prefect flow itself: Prefect starts its temporary server in a child process
        options = dict(store=str(store), sources=[str(zoo)], model=run_options["model"], shard_size=SHARD_SIZE,
                       min_cluster_size=run_options["min_cluster_size"])
        command = [sys.executable, "-c", f"from flows.flows import run_flow; run_flow(**{options!r})"]
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
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


def _session_processes(session: int) -> dict[int, str]:
    """Live (not zombie) processes of a session: pid -> command line."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # ended meanwhile
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) ": state, ppid, pgrp, session, ...
        if fields[0] != "Z" and int(fields[3]) == session:
            found[int(entry.name)] = cmdline
    return found


def _left_running(session: int, within: float) -> dict[int, str]:
    deadline = time.monotonic() + within
    while (alive := _session_processes(session)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return alive


@pytest.mark.parametrize("how", ["command", "prefect-flow"])
def test_run_killed_while_fingerprinting_leaves_nothing_running_and_resumes_to_the_same_store(
    how: str, tiny_zoo: SimpleNamespace, tiny_store: SimpleNamespace, run_options: dict, tmp_path: Path
) -> None:
    store = Store(tmp_path / "store")
    process = _start_run(how, tiny_zoo.root, store.root, run_options)
    _wait_for_first_shard(process, store.root / "work" / "shards")
    started = _session_processes(process.pid)
    if how == "prefect-flow":  # the temporary server is up: the case the watchdog is for
        assert any("uvicorn" in cmdline for cmdline in started.values()), started
    os.kill(process.pid, signal.SIGKILL)  # the run's process only: what it started must end by itself
    assert process.wait(timeout=60) == -signal.SIGKILL
    left = _left_running(process.pid, GONE_WITHIN_S)
    for pid in left:  # not to leak them from a failing test either
        os.kill(pid, signal.SIGKILL)
    assert left == {}
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
