"""Atomic outputs: usual permissions, no overwrite without force, nothing left behind on error."""

from __future__ import annotations

import os
import stat

import pytest

from quantgpu.errors import OutputExistsError
from quantgpu.output import atomic_path, write_bytes_atomic


def test_written_file_has_the_umask_permissions(tmp_path):
    old = os.umask(0o027)
    try:
        path = write_bytes_atomic(tmp_path / "a.json", b"{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640  # 0666 & ~0027, not mkstemp's 0600
    assert path.read_bytes() == b"{}"


def test_no_overwrite_without_force_and_overwrite_with_it(tmp_path):
    path = write_bytes_atomic(tmp_path / "a.txt", b"first")
    with pytest.raises(OutputExistsError):
        write_bytes_atomic(path, b"second")
    assert path.read_bytes() == b"first"
    write_bytes_atomic(path, b"second", force=True)
    assert path.read_bytes() == b"second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_a_file_that_appears_during_the_write_is_not_replaced(tmp_path):
    path = tmp_path / "b.txt"
    with pytest.raises(OutputExistsError), atomic_path(path) as tmp:
        tmp.write_bytes(b"ours")
        path.write_bytes(b"someone else's")  # created after the existence check
    assert path.read_bytes() == b"someone else's"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.txt"]


def test_error_in_the_writer_leaves_nothing(tmp_path):
    path = tmp_path / "c.txt"
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        tmp.write_bytes(b"partial")
        raise RuntimeError("writer failed")
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []
