"""Safe extraction of the few files we need from a model zip.

Every entry name is checked before anything is written: an archive holding an absolute
path, a ``..`` component, a drive letter or a symlink is refused as a whole, because such
an archive was not made by the model's authors. Only the wanted members are written, each
to a destination the caller chose (never a path taken from the archive), through a
temporary file renamed into place once complete.
"""

from __future__ import annotations

import os
import shutil
import stat
import zipfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

from engines.base import ModelFileError

MAX_MEMBER_BYTES = 4 << 30  # the biggest model we know is ~0.6 GB: refuse zip bombs


class UnsafeArchive(ModelFileError):
    """The archive holds an entry that would land outside the target folder."""


def _unsafe_reason(info: zipfile.ZipInfo) -> str | None:
    name = info.filename.replace("\\", "/")
    path = PurePosixPath(name)
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return "absolute path"
    if ".." in path.parts:
        return "'..' component"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "symbolic link"
    return None


def check_archive(archive: Path, target: Path) -> list[zipfile.ZipInfo]:
    """Return the archive's entries, or raise ``UnsafeArchive`` naming the bad entry."""
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise ModelFileError(f"{archive}: not a readable zip archive ({exc})") from exc
    root = target.resolve()
    for info in infos:
        reason = _unsafe_reason(info)
        if reason is None:
            resolved = (root / info.filename).resolve()
            if not resolved.is_relative_to(root):
                reason = "resolves outside the target folder"
        if reason is not None:
            raise UnsafeArchive(f"{archive}: refusing archive, entry {info.filename!r} "
                                f"is unsafe ({reason})")
    return infos


def find_member(infos: list[zipfile.ZipInfo], suffix: str) -> zipfile.ZipInfo | None:
    """The regular-file entry whose path ends with ``suffix`` (path components)."""
    want = PurePosixPath(suffix).parts
    for info in infos:
        if info.is_dir():
            continue
        parts = PurePosixPath(info.filename.replace("\\", "/")).parts
        if parts[-len(want):] == want:
            return info
    return None


def extract_members(archive: Path, wanted: Mapping[str, Path]) -> dict[str, Path]:
    """Extract each ``suffix -> destination`` that the archive holds; return those written.

    The whole archive is checked first (``UnsafeArchive``); each destination is written
    atomically. Missing suffixes are simply absent from the result.
    """
    written: dict[str, Path] = {}
    if not wanted:
        return written
    target = next(iter(wanted.values())).parent
    infos = check_archive(archive, target)
    with zipfile.ZipFile(archive) as zf:
        for suffix, dest in wanted.items():
            info = find_member(infos, suffix)
            if info is None:
                continue
            if info.file_size > MAX_MEMBER_BYTES:
                raise UnsafeArchive(f"{archive}: entry {info.filename!r} claims "
                                    f"{info.file_size} bytes (limit {MAX_MEMBER_BYTES})")
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(dest.name + ".part")
            try:
                with zf.open(info) as src, open(tmp, "wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
            except (zipfile.BadZipFile, OSError, EOFError) as exc:
                tmp.unlink(missing_ok=True)
                raise ModelFileError(f"{archive}: entry {info.filename!r} is corrupt "
                                     f"({exc})") from exc
            os.replace(tmp, dest)
            written[suffix] = dest
    return written
