"""Issue 7 faults: SIGKILL inside the commit, two runs at once, damaged stores, crafted pickles, a full disk."""
from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from flows import Store
from flows.atomic import CRASH_AT_ENV, STAGING
from flows.store import StoreError


def _genprint_run(zoo: Path, store: Path, prefect_api: str, run_options: dict, *extra: str, env: dict | None = None) -> subprocess.Popen:
    command = [
        str(Path(sys.executable).parent / "genprint"), "run", str(zoo), "--store", str(store),
        "--model", run_options["model"], "--shard-size", str(run_options["shard_size"]),
        "--min-cluster-size", str(run_options["min_cluster_size"]), "--threads", "1", "--quiet", *extra,
    ]
    full_env = dict(os.environ, PREFECT_API_URL=prefect_api, **(env or {}))
    return subprocess.Popen(command, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _comparable(frame: pd.DataFrame, key: str) -> pd.DataFrame:
    columns = [c for c in frame.columns if c not in ("first_seen_run", "last_seen_run", "run_id")]
    return frame[columns].sort_values(key).reset_index(drop=True)


def assert_same_store(store: Store, reference: Store) -> None:
    """Same image ids, vectors, clusters, paths and errors as `reference`; no duplicate rows anywhere."""
    images = store.images()
    assert not images["image_id"].duplicated().any() and not store.paths()["path"].duplicated().any()
    pd.testing.assert_frame_equal(_comparable(images, "image_id"), _comparable(reference.images(), "image_id"))
    pd.testing.assert_frame_equal(_comparable(store.clusters(), "cluster_id"), _comparable(reference.clusters(), "cluster_id"))
    pd.testing.assert_frame_equal(_comparable(store.errors(), "path"), _comparable(reference.errors(), "path"))
    pd.testing.assert_frame_equal(_comparable(store.paths(), "path"), _comparable(reference.paths(), "path"))
    ids, vectors = store.vectors()
    assert len(set(ids)) == len(ids) == len(images) == len(store.ids())
    np.testing.assert_array_equal(vectors, reference.vectors(ids)[1])


def _visible_files(store: Store) -> dict[str, str]:
    """sha256 of every file a reader may open (not the lock, staging or work space)."""
    hidden = (STAGING, "work", ".lock")
    return {
        str(p.relative_to(store.root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(store.root.rglob("*"))
        if p.is_file() and not str(p.relative_to(store.root)).startswith(hidden)
    }


# ---- SIGKILL inside the commit ----------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    "crash_at",
    [
        "stage:index/fingerprints.faiss",  # index written, tables staged, no COMMIT marker yet
        "publish:current/images.parquet",  # COMMIT written, some tables moved into place, the index not yet
    ],
)
def test_run_killed_during_the_commit_ends_identical_to_an_uninterrupted_run(
    crash_at: str, tiny_zoo: SimpleNamespace, tiny_store: SimpleNamespace, prefect_api: str, run_options: dict, tmp_path: Path
) -> None:
    store = Store(tmp_path / "store")
    process = _genprint_run(tiny_zoo.root, store.root, prefect_api, run_options, env={CRASH_AT_ENV: crash_at})
    output, _ = process.communicate(timeout=600)
    assert process.returncode == -9, output
    assert (store / STAGING).is_dir()  # the crash really was inside the commit
    partial = [p for p in store.root.rglob("*.tmp")] + [p for p in store.root.rglob(".*") if p.name.startswith(".tmp-")]
    assert not partial
    if crash_at.startswith("stage:"):
        assert not (store / Store.IMAGES).exists()  # nothing of the interrupted commit is visible

    summary = store.run([str(tiny_zoo.root)], **run_options)
    assert not (store / STAGING).exists()
    rolled_forward = crash_at.startswith("publish:")
    assert summary.images_new == (0 if rolled_forward else len(tiny_zoo.images))
    assert summary.shards_reused == (0 if rolled_forward else summary.shards)
    assert_same_store(store, tiny_store.store)


# ---- two runs at once -------------------------------------------------------------------------


@pytest.mark.slow
def test_two_runs_at_once_one_waits_and_the_store_is_whole(
    tiny_zoo: SimpleNamespace, tiny_store: SimpleNamespace, prefect_api: str, run_options: dict, tmp_path: Path
) -> None:
    store = Store(tmp_path / "store")
    process = _genprint_run(tiny_zoo.root, store.root, prefect_api, run_options, "--wait", "300")
    summary = store.run([str(tiny_zoo.root)], **run_options, wait=300)
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, output
    # whichever ran second found every image stored by the first
    assert summary.images_new in (0, len(tiny_zoo.images))
    assert len(store.runs()) == 2
    assert_same_store(store, tiny_store.store)


def test_a_busy_store_refuses_a_second_writer_without_touching_it(store_copy: Store, tiny_zoo: SimpleNamespace, run_options: dict) -> None:
    before = _visible_files(store_copy)
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with store_copy.lock("another run"):
            holding.set()
            release.wait(60)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(30)
        with pytest.raises(Exception, match=r"is busy.*another run.*Only one run may write"):
            store_copy.run([str(tiny_zoo.root)], **run_options)
    finally:
        release.set()
        holder.join()
    assert _visible_files(store_copy) == before


# ---- damaged stores ---------------------------------------------------------------------------


def test_truncated_index_is_detected_and_rebuilt_only_when_asked(
    store_copy: Store, tiny_store: SimpleNamespace, tiny_zoo: SimpleNamespace, run_options: dict
) -> None:
    index = store_copy / Store.INDEX
    index.write_bytes(index.read_bytes()[: index.stat().st_size // 2])
    damaged = _visible_files(store_copy)
    with pytest.raises(StoreError, match=r"rebuild-index --store"):
        store_copy.run([str(tiny_zoo.root)], **run_options)
    assert _visible_files(store_copy) == damaged  # nothing silently rebuilt
    assert store_copy.rebuild_index() == len(tiny_zoo.images)
    store_copy.run([str(tiny_zoo.root)], **run_options)
    assert_same_store(store_copy, tiny_store.store)
    ref_index = tiny_store.store / Store.INDEX
    assert hashlib.sha256(index.read_bytes()).digest() == hashlib.sha256(ref_index.read_bytes()).digest()


def test_corrupted_table_is_reported_with_what_to_do(store_copy: Store, tiny_zoo: SimpleNamespace, run_options: dict) -> None:
    table = store_copy / Store.IMAGES
    data = bytearray(table.read_bytes())
    data[len(data) // 3 : len(data) // 3 + 64] = b"\0" * 64
    table.write_bytes(bytes(data))
    damaged = _visible_files(store_copy)
    with pytest.raises(StoreError, match=r"(?s)images\.parquet is damaged .*restore it, or delete the store and run again"):
        store_copy.run([str(tiny_zoo.root)], **run_options)
    assert _visible_files(store_copy) == damaged


class _WritesMarker:
    """A pickle payload that would create a file if anything unpickled it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_crafted_pickle_in_the_store_is_never_unpickled(
    store_copy: Store, tiny_zoo: SimpleNamespace, run_options: dict, tmp_path: Path
) -> None:
    from flows.clustering_step import CLUSTERER_STATE

    marker = tmp_path / "pwned"
    (store_copy / CLUSTERER_STATE).write_bytes(pickle.dumps({"state": _WritesMarker(marker)}))
    damaged = _visible_files(store_copy)
    new = tmp_path / "new"
    new.mkdir()
    shutil.copy(tiny_zoo.images["path"].iloc[0], new / "copy-with-new-bytes.png")
    with open(new / "copy-with-new-bytes.png", "ab") as handle:
        handle.write(b"trailing bytes: a new image id, the same pixels")
    with pytest.raises(StoreError, match=r"(?s)clusterer\.npz is damaged.*recluster"):
        store_copy.run([str(new)], **run_options, recluster=False)
    assert not marker.exists()
    assert _visible_files(store_copy) == damaged


def test_a_checkpoint_failing_its_checksum_stops_the_run(tmp_path: Path, tiny_zoo: SimpleNamespace) -> None:
    import torch
    from typer.testing import CliRunner

    from fingerprinting.checkpoint import Calibration, Checkpoint, save_checkpoint
    from fingerprinting.network import FingerprintNet, NetworkConfig
    from flows.cli import app

    torch.manual_seed(0)
    net = FingerprintNet(NetworkConfig(encoder_widths=(8, 16, 32), hidden_dim=32, embedding_dim=16, spectrum_bins=8)).eval()
    weights = save_checkpoint(Checkpoint(net, Calibration(1.0, 0.0), {}, "learned-test"), tmp_path / "model.safetensors")
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    store = tmp_path / "store"
    result = CliRunner().invoke(
        app, ["run", str(tiny_zoo.root), "--store", str(store), "--model", str(weights), "--threads", "1", "--quiet"]
    )
    assert result.exit_code == 2, result.output
    assert "checksum mismatch" in result.output and "the weights were changed or damaged" in result.output
    assert not (store / Store.META).exists()


# ---- a full disk ------------------------------------------------------------------------------


@pytest.fixture()
def small_disk(tmp_path: Path):
    """A 2 MiB tmpfs folder (needs the right to mount: root here); skipped with the reason otherwise."""
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount_point)], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a size-limited tmpfs here: {result.stderr.strip() or result.returncode}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def _new_images(folder: Path, sources: list[str]) -> Path:
    """Copies of `sources` with a few extra bytes: new image ids, the same pixels."""
    folder.mkdir()
    for i, source in enumerate(sources):
        target = folder / f"new-{i}.png"
        shutil.copy(source, target)
        with open(target, "ab") as handle:
            handle.write(f"trailing bytes {i}".encode())
    return folder


def test_a_full_disk_fails_the_run_cleanly_and_keeps_the_previous_state(
    small_disk: Path, tiny_store: SimpleNamespace, tiny_zoo: SimpleNamespace, run_options: dict, tmp_path: Path
) -> None:
    store = Store(small_disk / "store")
    shutil.copytree(tiny_store.store.root, store.root)
    before = _visible_files(store)
    new = _new_images(tmp_path / "new", list(tiny_zoo.images["path"][:3]))
    filler = small_disk / "filler"
    free = shutil.disk_usage(small_disk).free
    filler.write_bytes(b"\0" * max(0, free - 96 * 1024))  # room for a shard, not for the commit
    with pytest.raises(StoreError, match=r"no space left on the device .* keeps its previous state: free some space"):
        store.run([str(new)], **run_options)
    assert _visible_files(store) == before
    assert not (store / STAGING).exists()

    filler.unlink()
    summary = store.run([str(new)], **run_options)
    assert summary.images_new == 3 and summary.images_total == len(tiny_zoo.images) + 3
    assert not store.images()["image_id"].duplicated().any()
