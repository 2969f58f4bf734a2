"""The store's building blocks without Prefect: atomic commits, the lock, sources and manifests, schemas."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from flows import schemas
from flows.atomic import COMMIT_MARKER, STAGING, Transaction, recover, write_json
from flows.lock import StoreLock, StoreLockedError
from flows.schemas import vectors_from_table, vectors_table
from flows.shards import ERRORS_FILE, RECORDS_FILE, VECTORS_FILE, plan_shards, read_shard
from flows.store import StoreFolder
from flows.sources import SourceError, discover, identify


def _png(path: Path, seed: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


# ---- atomic commits -------------------------------------------------------------------------------


def test_transaction_publishes_every_file_and_deletes(tmp_path: Path) -> None:
    (tmp_path / "old.txt").write_text("old")
    transaction = Transaction(tmp_path)
    transaction.write_text("current/a.txt", "A")
    transaction.write_json("meta.json", {"n": 1})
    transaction.delete("old.txt")
    transaction.commit()
    assert (tmp_path / "current/a.txt").read_text() == "A"
    assert (tmp_path / "meta.json").is_file()
    assert not (tmp_path / "old.txt").exists()
    assert not (tmp_path / STAGING).exists()


def test_crash_before_commit_marker_keeps_previous_state(tmp_path: Path) -> None:
    (tmp_path / "current").mkdir()
    (tmp_path / "current/a.txt").write_text("previous")
    transaction = Transaction(tmp_path)
    transaction.write_text("current/a.txt", "half-done")
    # The process dies here: no COMMIT marker. The next writer discards the staging folder.
    assert recover(tmp_path) is False
    assert (tmp_path / "current/a.txt").read_text() == "previous"
    assert not (tmp_path / STAGING).exists()


def test_crash_during_publish_is_rolled_forward(tmp_path: Path) -> None:
    (tmp_path / "current").mkdir()
    for name in ("a", "b"):
        (tmp_path / f"current/{name}.txt").write_text(f"old {name}")
    staging = tmp_path / STAGING / "current"
    staging.mkdir(parents=True)
    (staging / "b.txt").write_text("new b")  # a.txt was already moved when the process died
    (tmp_path / "current/a.txt").write_text("new a")
    write_json(tmp_path / STAGING / COMMIT_MARKER, {"files": ["current/a.txt", "current/b.txt"], "delete": []})
    assert recover(tmp_path) is True
    assert (tmp_path / "current/a.txt").read_text() == "new a"
    assert (tmp_path / "current/b.txt").read_text() == "new b"


# ---- the lock -------------------------------------------------------------------------------------


def test_second_writer_gets_a_message_naming_the_holder(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            from flows.lock import StoreLock
            with StoreLock({str(tmp_path)!r}, "test holder"):
                print("locked", flush=True)
                sys.stdin.readline()
            """)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(StoreLockedError, match=rf"pid {holder.pid}.*test holder.*--wait"):
            with StoreLock(tmp_path, "second", timeout=0.3, poll_seconds=0.05):
                pass
    finally:
        holder.stdin.write("\n")
        holder.stdin.flush()
        holder.wait(timeout=30)
    with StoreLock(tmp_path, "after the holder left"):
        pass


def test_lock_is_released_when_its_holder_is_killed(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import time\nfrom flows.lock import StoreLock\nwith StoreLock({str(tmp_path)!r}, 'x'):\n    print('locked', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )
    assert holder.stdout.readline().strip() == "locked"
    holder.kill()
    holder.wait(timeout=30)
    with StoreLock(tmp_path, "next", timeout=5):
        pass


# ---- sources --------------------------------------------------------------------------------------


def test_discover_walks_folders_and_reads_manifests(tmp_path: Path) -> None:
    a = _png(tmp_path / "in/a.png", 0)
    b = _png(tmp_path / "in/deep/er/b.PNG", 1)
    (tmp_path / "in/notes.txt").write_text("ignored")
    _png(tmp_path / "in/.hidden/c.png", 2)
    d = _png(tmp_path / "other/d.png", 3)
    (tmp_path / "lists").mkdir()
    pd.DataFrame({"path": ["../other/d.png"], "label": ["x"]}).to_csv(tmp_path / "lists/m.csv", index=False)
    paths, errors = discover([tmp_path / "in", tmp_path / "lists/m.csv", a])
    assert paths == sorted({str(a), str(b), str(d)})
    assert errors.empty


@pytest.mark.parametrize(
    "frame, message",
    [
        (pd.DataFrame({"file": ["a.png"]}), "no 'path' column"),
        (pd.DataFrame({"path": ["a.png", "", "b.png"]}), "empty or non-text 'path' at lines 3"),
    ],
)
def test_bad_manifest_stops_before_any_work(tmp_path: Path, frame: pd.DataFrame, message: str) -> None:
    frame.to_csv(tmp_path / "m.csv", index=False)
    with pytest.raises(SourceError, match=message):
        discover([tmp_path / "m.csv"])


def test_missing_source_is_named(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="source not found: .*nowhere"):
        discover([tmp_path / "nowhere"])


def test_identify_reuses_ids_of_unchanged_files(tmp_path: Path) -> None:
    a = _png(tmp_path / "a.png", 0)
    copy = tmp_path / "copy.png"
    copy.write_bytes(a.read_bytes())
    first, errors = identify([str(a), str(copy), str(tmp_path / "gone.png")], pd.DataFrame(columns=["path", "image_id", "size_bytes", "mtime_ns"]))
    assert first["image_id"].nunique() == 1 and not first["cached"].any()
    assert errors["error"].tolist() == ["file not found"]
    second, _ = identify([str(a)], first)
    assert second["cached"].all() and second["image_id"].iloc[0] == first["image_id"].iloc[0]


# ---- schemas and vectors --------------------------------------------------------------------------


def test_vectors_are_fixed_size_float32_lists(tmp_path: Path) -> None:
    vectors = np.random.default_rng(0).normal(size=(5, 7)).astype(np.float32)
    pq.write_table(vectors_table(list("abcde"), vectors), tmp_path / "v.parquet")
    table = pq.read_table(tmp_path / "v.parquet")
    assert table.schema.field("vector").type == pa.list_(pa.float32(), 7)
    ids, back = vectors_from_table(table)
    assert ids == list("abcde") and np.array_equal(back, vectors)


def test_tables_refuse_missing_columns() -> None:
    with pytest.raises(ValueError, match="lacks columns"):
        schemas.to_table(pd.DataFrame({"path": ["a"]}), schemas.errors_schema())


def test_tables_written_before_the_parsed_families_read_with_them_null(tmp_path: Path) -> None:
    new = ["parsed_upsampling_family", "parsed_upsampling_family_confidence", "parsed_loss_family_adversarial"]
    for rel, schema in ((StoreFolder.CLUSTERS, schemas.clusters_schema()), (f"shard/{RECORDS_FILE}", schemas.shard_records_schema())):
        old = pa.schema([f for f in schema if "_family" not in f.name])
        filler = {pa.string(): "a", pa.int32(): 1, pa.int64(): 1, pa.list_(pa.string()): ["a"]}
        row = {f.name: [None if f.nullable else filler[f.type]] for f in old}
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table(row, schema=old), tmp_path / rel)
    pq.write_table(vectors_table(["a"], np.zeros((1, 4), np.float32)), tmp_path / "shard" / VECTORS_FILE)
    pq.write_table(schemas.shard_errors_schema().empty_table(), tmp_path / "shard" / ERRORS_FILE)
    clusters = StoreFolder(tmp_path).clusters()
    records = read_shard(tmp_path / "shard")[0]
    for frame in (clusters, records):
        assert len(frame) == 1 and set(new) <= set(frame.columns) and frame[new].isna().all(axis=None)


def test_shard_plan_is_deterministic_and_model_specific() -> None:
    images = pd.DataFrame({"image_id": [f"{i:064x}" for i in range(10)], "path": [f"/p/{i}.png" for i in range(10)]})
    plan = plan_shards(images.sample(frac=1, random_state=0), 4, "spectral:1")
    assert [len(s.paths) for s in plan] == [4, 4, 2]
    assert [s.key for s in plan] == [s.key for s in plan_shards(images, 4, "spectral:1")]
    assert plan[0].key != plan_shards(images, 4, "spectral:2")[0].key
    assert os.path.basename(plan[0].paths[0]) == "0.png"
