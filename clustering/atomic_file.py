"""Crash-safe writes (write aside under a unique name, fsync, rename): the one place genprint does them.

Used by the index, the store's commits and shards (`flows/`), checkpoints, verdict calibrations
and the zoo's tables (`fingerprinting/`): clustering imports nothing from either, so both may
import this.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


def _plain_mode(requested: int) -> int:
    """The mode a plain `open()` or `mkdir()` would give (mkstemp's and mkdtemp's are 0600 and 0700)."""
    umask = os.umask(0)
    os.umask(umask)
    return requested & ~umask


FILE_MODE = _plain_mode(0o666)
DIR_MODE = _plain_mode(0o777)


def fsync_file(path: Path) -> None:
    """Make a file's contents durable."""
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def fsync_dir(path: Path) -> None:
    """Make a rename or a new file in `path` durable (the directory entry itself)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Call `write(tmp)` on a temporary file beside `path`, fsync it, then rename it over `path`.

    Readers see the old file or the new one, never a part; a failed write leaves no temporary file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.chmod(tmp, FILE_MODE)
        fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_bytes_atomic(path: Path, data: bytes | memoryview) -> None:
    """`write_atomic` of a whole bytes object."""
    write_atomic(path, lambda tmp: tmp.write_bytes(data))


def write_text_atomic(path: Path, text: str) -> None:
    """`write_atomic` of a whole text, UTF-8."""
    write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_dir_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Call `write(tmp)` on a temporary folder beside `path`, fsync what it wrote, then rename it to `path`.

    The folder exists whole or not at all; `path` must not exist yet (a folder is never replaced).
    A failed write leaves no temporary folder.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        write(tmp)
        os.chmod(tmp, DIR_MODE)
        for entry in tmp.rglob("*"):
            (fsync_file if entry.is_file() else fsync_dir)(entry)
        fsync_dir(tmp)
        os.rename(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    fsync_dir(path.parent)
