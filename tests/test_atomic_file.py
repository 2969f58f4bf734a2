"""clustering.atomic_file: a write replaces a file whole or not at all, a new folder appears whole, both with plain modes."""
import os

import pytest

from clustering.atomic_file import DIR_MODE, FILE_MODE, write_atomic, write_bytes_atomic, write_dir_atomic, write_text_atomic


def test_write_replaces_the_file_with_a_plain_mode(tmp_path):
    path = tmp_path / "sub" / "table.bin"
    write_atomic(path, lambda tmp: tmp.write_bytes(b"first"))
    write_atomic(path, lambda tmp: tmp.write_bytes(b"second"))
    assert path.read_bytes() == b"second"
    assert os.stat(path).st_mode & 0o777 == FILE_MODE  # not mkstemp's 0600
    assert [p.name for p in path.parent.iterdir()] == ["table.bin"]


def test_a_failed_write_keeps_the_previous_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "table.bin"
    write_atomic(path, lambda tmp: tmp.write_bytes(b"kept"))

    def fail_halfway(tmp):
        tmp.write_bytes(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomic(path, fail_halfway)
    assert path.read_bytes() == b"kept"
    assert [p.name for p in tmp_path.iterdir()] == ["table.bin"]


def test_a_folder_appears_whole_with_a_plain_mode_or_not_at_all(tmp_path):
    target = tmp_path / "shards" / "abc"

    def write(tmp):
        (tmp / "records.parquet").write_bytes(b"rows")
        (tmp / "errors.parquet").write_bytes(b"none")

    def fail_halfway(tmp):
        (tmp / "records.parquet").write_bytes(b"rows")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_dir_atomic(target, fail_halfway)
    assert list(target.parent.iterdir()) == []  # no folder, no temporary
    write_dir_atomic(target, write)
    assert sorted(p.name for p in target.iterdir()) == ["errors.parquet", "records.parquet"]
    assert os.stat(target).st_mode & 0o777 == DIR_MODE  # not mkdtemp's 0700
    with pytest.raises(OSError):  # a finished folder is never replaced
        write_dir_atomic(target, write)
    assert [p.name for p in target.parent.iterdir()] == ["abc"]


def test_bytes_and_text_writes(tmp_path):
    write_bytes_atomic(tmp_path / "a.bin", memoryview(b"\x00\x01"))
    write_text_atomic(tmp_path / "a.json", "{}\n")
    assert (tmp_path / "a.bin").read_bytes() == b"\x00\x01" and (tmp_path / "a.json").read_text() == "{}\n"
