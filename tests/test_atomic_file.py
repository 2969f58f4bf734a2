"""clustering.atomic_file: a write replaces the file whole or not at all, with a plain file's mode."""
import os

import pytest

from clustering.atomic_file import FILE_MODE, write_atomic


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
