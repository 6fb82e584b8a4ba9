"""engines/archive.py: every unsafe entry name is refused before anything is written;
wanted members land only at the caller's destinations."""

from __future__ import annotations

import io
import stat
import zipfile
from pathlib import Path

import pytest

from engines import archive as archive_module
from engines.archive import UnsafeArchive, check_archive, extract_members, find_member
from engines.base import ModelFileError


def _zip(path: Path, entries: dict[str, bytes], *, symlink: str | None = None) -> Path:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
        if symlink is not None:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "/etc/passwd")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue())
    return path


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.mark.parametrize(("entry", "reason"), [
    ("C:/Windows/System32/evil.dll", "absolute path"),  # a drive letter: absolute on Windows
    ("c:evil.onnx", "absolute path"),  # drive-relative on Windows
    ("D:\\models\\evil.onnx", "absolute path"),
    ("/etc/cron.d/evil", "absolute path"),
    ("\\\\server\\share\\evil", "absolute path"),
    ("../evil.onnx", "'..' component"),
    ("people/../../evil.onnx", "'..' component"),
    ("people\\..\\..\\evil.onnx", "'..' component"),
])
def test_unsafe_names_are_refused_with_the_entry_and_reason(
        tmp_path: Path, entry: str, reason: str) -> None:
    archive = _zip(tmp_path / "in" / "model.zip", {"det_10g.onnx": b"ok", entry: b"evil"})
    with pytest.raises(UnsafeArchive) as err:
        check_archive(archive, tmp_path / "out")
    assert f"entry {entry!r} is unsafe ({reason})" in str(err.value)


def test_a_symlink_entry_is_refused(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "model.zip", {"det_10g.onnx": b"ok"}, symlink="people/link")
    with pytest.raises(UnsafeArchive, match=r"'people/link' is unsafe \(symbolic link\)"):
        check_archive(archive, tmp_path / "out")


@pytest.mark.parametrize("entry", ["people/latest_net_G.pth", "a/b:c.onnx", "C",
                                   "buffalo_l/det_10g.onnx", "..hidden/x", "a/..b"])
def test_safe_names_pass(tmp_path: Path, entry: str) -> None:
    """Colons after the second character and dots that are not a '..' component are
    ordinary names (the check must not be so broad that it refuses real archives)."""
    archive = _zip(tmp_path / "model.zip", {entry: b"ok"})
    assert [i.filename for i in check_archive(archive, tmp_path / "out")] == [entry]


@pytest.mark.parametrize("entry", ["../../evil.onnx", "C:/evil.onnx"])
def test_nothing_is_written_when_an_entry_is_unsafe(tmp_path: Path, entry: str) -> None:
    """Refused as a whole: not even the wanted member, which comes first in the archive,
    is written (the check runs before any extraction)."""
    archive = _zip(tmp_path / "in" / "buffalo_l.zip",
                   {"buffalo_l/det_10g.onnx": b"wanted", entry: b"evil"})
    before = _tree(tmp_path)
    with pytest.raises(UnsafeArchive):
        extract_members(archive, {"det_10g.onnx": tmp_path / "models" / "det_10g.onnx"})
    assert _tree(tmp_path) == before


def test_wanted_members_land_at_the_chosen_destinations_only(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "in" / "buffalo_l.zip", {
        "buffalo_l/det_10g.onnx": b"det", "buffalo_l/w600k_r50.onnx": b"rec",
        "buffalo_l/1k3d68.onnx": b"other"})
    dest = tmp_path / "models" / "scrfd-10g" / "det.onnx"
    written = extract_members(archive, {"det_10g.onnx": dest, "absent.onnx": tmp_path / "x"})
    assert written == {"det_10g.onnx": dest}
    assert dest.read_bytes() == b"det"
    assert _tree(tmp_path / "models") == {"scrfd-10g", "scrfd-10g/det.onnx"}


def test_find_member_matches_whole_path_components(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "model.zip", {"checkpoints/people/latest_net_G.pth": b"a",
                                            "checkpoints/people2/latest_net_G.pth": b"b",
                                            "checkpoints/xpeople/": b""})
    infos = check_archive(archive, tmp_path)
    found = find_member(infos, "people/latest_net_G.pth")
    assert found is not None and found.filename == "checkpoints/people/latest_net_G.pth"
    assert find_member(infos, "ople/latest_net_G.pth") is None
    assert find_member(infos, "xpeople") is None  # a folder entry is never a member


def test_a_file_that_is_no_zip_is_a_model_file_error(tmp_path: Path) -> None:
    page = tmp_path / "buffalo_l.zip"
    page.write_bytes(b"<!DOCTYPE html><title>rate limited</title>")
    with pytest.raises(ModelFileError, match="not a readable zip archive"):
        check_archive(page, tmp_path / "out")


def test_an_entry_through_a_symlinked_folder_in_the_target_is_refused(tmp_path: Path) -> None:
    """The names are harmless, but the target folder already holds a link pointing out
    of it: the resolved destination is what counts."""
    outside = tmp_path / "outside"
    outside.mkdir()
    target = tmp_path / "models"
    target.mkdir()
    (target / "people").symlink_to(outside, target_is_directory=True)
    archive = _zip(tmp_path / "model.zip", {"people/latest_net_G.pth": b"evil"})
    with pytest.raises(UnsafeArchive, match="resolves outside the target folder"):
        check_archive(archive, target)


def test_a_member_over_the_size_limit_is_refused_unwritten(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(archive_module, "MAX_MEMBER_BYTES", 10)
    archive = _zip(tmp_path / "model.zip", {"det_10g.onnx": b"x" * 11})
    dest = tmp_path / "models" / "det.onnx"
    with pytest.raises(UnsafeArchive, match="claims 11 bytes"):
        extract_members(archive, {"det_10g.onnx": dest})
    assert not dest.exists()


def test_a_corrupt_member_is_a_model_file_error_and_leaves_nothing(tmp_path: Path) -> None:
    data = bytes(range(256)) * 64
    archive = _zip(tmp_path / "model.zip", {"det_10g.onnx": data})
    raw = bytearray(archive.read_bytes())
    at = raw.index(data[:64]) + 1000  # stored uncompressed: flip a byte inside the member
    raw[at] ^= 0xFF
    archive.write_bytes(bytes(raw))
    dest = tmp_path / "models" / "det.onnx"
    with pytest.raises(ModelFileError, match=r"'det_10g\.onnx' is corrupt"):
        extract_members(archive, {"det_10g.onnx": dest})
    assert _tree(dest.parent) == set()
