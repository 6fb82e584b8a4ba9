"""engines/derived.py: a derived file is usable only when it exists, carries a stamp of
this version, was built from this source and is byte-for-byte what was stamped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engines import derived
from engines.derived import read_stamp, remove_derived, stamp_path, stamp_problem, write_stamp

SOURCE = "a" * 64


def _built(tmp_path: Path, data: bytes = b"derived bytes") -> Path:
    path = tmp_path / "model.onnx"
    path.write_bytes(data)
    write_stamp(path, SOURCE, source="checkpoint.pth")
    return path


def test_a_freshly_stamped_file_is_usable(tmp_path: Path) -> None:
    path = _built(tmp_path)
    assert stamp_problem(path, SOURCE) is None
    record = read_stamp(path)
    assert record is not None and record["source_sha256"] == SOURCE
    assert record["size"] == len(b"derived bytes") and record["source"] == "checkpoint.pth"


def test_a_missing_file_with_its_stamp_left_behind_is_a_problem(tmp_path: Path) -> None:
    path = _built(tmp_path)
    path.unlink()
    assert stamp_problem(path, SOURCE) == "it does not exist yet"


def test_a_file_without_a_stamp_is_a_problem(tmp_path: Path) -> None:
    path = _built(tmp_path)
    stamp_path(path).unlink()
    assert "no readable stamp" in str(stamp_problem(path, SOURCE))


def test_a_damaged_stamp_is_a_problem(tmp_path: Path) -> None:
    path = _built(tmp_path)
    stamp_path(path).write_text("{not json", encoding="utf-8")
    assert "no readable stamp" in str(stamp_problem(path, SOURCE))


def test_a_stamp_of_another_version_is_not_read(tmp_path: Path) -> None:
    path = _built(tmp_path)
    record = json.loads(stamp_path(path).read_text(encoding="utf-8"))
    stamp_path(path).write_text(json.dumps({**record, "version": derived.STAMP_VERSION + 1}),
                                encoding="utf-8")
    assert read_stamp(path) is None
    assert "no readable stamp" in str(stamp_problem(path, SOURCE))


def test_built_from_another_source_is_a_problem(tmp_path: Path) -> None:
    path = _built(tmp_path)
    assert "built from another file" in str(stamp_problem(path, "b" * 64))


def test_a_size_change_is_found_without_hashing(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The cheap check first: a file of another size is rebuilt without reading it."""
    path = _built(tmp_path)
    path.write_bytes(b"derived bytes, then more")

    def no_hashing(*_args: object, **_kwargs: object) -> str:
        raise AssertionError("hashed although the size already differs")

    monkeypatch.setattr(derived, "sha256_file", no_hashing)
    assert "bytes, stamped" in str(stamp_problem(path, SOURCE))


def test_an_edit_of_the_same_size_is_found_by_the_hash(tmp_path: Path) -> None:
    path = _built(tmp_path, b"derived bytes")
    path.write_bytes(b"derived BYTES")
    assert "sha256" in str(stamp_problem(path, SOURCE))


def test_remove_derived_deletes_both(tmp_path: Path) -> None:
    path = _built(tmp_path)
    remove_derived(path)
    remove_derived(path)  # absent: no error
    assert not path.exists() and not stamp_path(path).exists()
