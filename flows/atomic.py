"""Crash-safe writes: single files written aside then renamed, and multi-file commits through a staging folder.

A reader never sees a half-written file, and a crash at any point leaves either the previous state
or (after roll-forward) the complete new one:

1. every new or changed file of a commit is written under `STORE/.staging/` at its final relative
   path, and fsynced;
2. `STORE/.staging/COMMIT` (the list of files, and of files to delete) is written atomically: from
   this moment the commit counts as done;
3. each staged file is moved over its destination with `os.replace` (atomic per file), then the
   deletions are done and the staging folder removed.

A crash before step 2 leaves junk in `.staging/` that the next writer discards; a crash during
step 3 is rolled forward by the next writer (`recover`), which repeats step 3 for what is left.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from clustering.atomic_file import fsync_dir, fsync_file, write_atomic, write_text_atomic

STAGING = ".staging"
COMMIT_MARKER = "COMMIT"
# Fault injection for the crash tests (tests/test_reliability_faults.py): "stage:<rel>" kills the
# process once `rel` is staged (before the COMMIT marker), "publish:<rel>" once `rel` is published.
CRASH_AT_ENV = "GENPRINT_TEST_CRASH_AT"


def _crash_point(phase: str, rel: str) -> None:
    if os.environ.get(CRASH_AT_ENV) == f"{phase}:{rel}":
        os.kill(os.getpid(), signal.SIGKILL)


def write_parquet(path: Path, table: pa.Table) -> None:
    write_atomic(path, lambda tmp: pq.write_table(table, tmp, compression="zstd"))


def write_text(path: Path, text: str) -> None:
    write_text_atomic(path, text)


def write_json(path: Path, payload: object) -> None:
    write_text(path, json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")


class Transaction:
    """Stage files at their final relative paths under `root`, then `commit()` them all at once.

    Use `path(rel)` to get a staging path to write to (any writer, e.g. a FAISS index's own save),
    the `write_*` helpers, `link(src, rel)` to stage an existing file without copying it, and
    `delete(rel)` to remove a file on commit.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.staging = self.root / STAGING
        recover(self.root)
        self.staging.mkdir(parents=True)
        self._deletions: list[str] = []

    def path(self, rel: str) -> Path:
        target = self.staging / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def write_parquet(self, rel: str, table: pa.Table) -> None:
        write_parquet(self.path(rel), table)

    def write_text(self, rel: str, text: str) -> None:
        write_text(self.path(rel), text)

    def write_json(self, rel: str, payload: object) -> None:
        write_json(self.path(rel), payload)

    def link(self, src: Path, rel: str) -> None:
        """Stage `src` under `rel` by a hard link (same filesystem), so `src` survives a crash before commit."""
        target = self.path(rel)
        try:
            os.link(src, target)
        except OSError:
            shutil.copy2(src, target)

    def delete(self, rel: str) -> None:
        self._deletions.append(rel)

    def commit(self) -> None:
        files = sorted(str(p.relative_to(self.staging)) for p in self.staging.rglob("*") if p.is_file())
        for rel in files:
            fsync_file(self.staging / rel)
            _crash_point("stage", rel)
        write_json(self.staging / COMMIT_MARKER, {"files": files, "delete": sorted(self._deletions)})
        _publish(self.root)

    def abort(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)


def recover(root: Path) -> bool:
    """Finish a commit a crash interrupted (roll forward), or discard an uncommitted one; True if rolled forward."""
    staging = Path(root) / STAGING
    if not staging.exists():
        return False
    if (staging / COMMIT_MARKER).is_file():
        _publish(Path(root))
        return True
    shutil.rmtree(staging)
    return False


def _publish(root: Path) -> None:
    staging = root / STAGING
    marker = json.loads((staging / COMMIT_MARKER).read_text(encoding="utf-8"))
    touched: set[Path] = set()
    for rel in marker["files"]:
        source = staging / rel
        if source.is_file():  # already moved by an interrupted publish otherwise
            target = root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, target)
            touched.add(target.parent)
            _crash_point("publish", rel)
    for rel in marker["delete"]:
        (root / rel).unlink(missing_ok=True)
        touched.add((root / rel).parent)
    for folder in touched:
        if folder.exists():
            fsync_dir(folder)
    shutil.rmtree(staging)
    fsync_dir(root)

