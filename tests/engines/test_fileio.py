"""The shared file helpers: chunked sha256 and atomic writes."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pytest

from engines.fileio import HashingCancelled, sha256_file, write_atomic


def test_sha256_file_matches_hashlib_across_chunk_boundaries(tmp_path: Path) -> None:
    data = bytes(range(256)) * 41  # 10,496 bytes: not a multiple of the chunks below
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    expected = hashlib.sha256(data).hexdigest()
    for chunk in (1, 1000, 4096, 1 << 20):
        assert sha256_file(path, chunk=chunk) == expected
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert sha256_file(empty) == hashlib.sha256(b"").hexdigest()
    with pytest.raises(ValueError, match="expected >= 1 byte, got 0"):
        sha256_file(path, chunk=0)


def test_sha256_file_can_be_cancelled(tmp_path: Path) -> None:
    path = tmp_path / "blob.bin"
    path.write_bytes(b"x" * 10)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(HashingCancelled, match=r"blob\.bin"):
        sha256_file(path, cancel=cancel, chunk=4)


@pytest.mark.parametrize("fsync", [False, True])
def test_write_atomic_replaces_and_leaves_no_temporary(tmp_path: Path, fsync: bool) -> None:
    path = tmp_path / "sub" / "out.json"
    write_atomic(path, b"old", fsync=fsync)
    write_atomic(path, memoryview(b"new"), fsync=fsync)
    assert path.read_bytes() == b"new"
    assert [p.name for p in path.parent.iterdir()] == ["out.json"]


def test_write_atomic_failure_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")
    with pytest.raises(TypeError):
        write_atomic(path, "not bytes")  # type: ignore[arg-type]
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]
