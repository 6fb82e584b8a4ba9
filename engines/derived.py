"""Derived files (exported ONNX, TensorRT engines, state_dict caches) and their stamps.

A derived file is only as good as what it was built from and its own bytes, so each one
carries a small JSON stamp beside it (``<file>.stamp.json``) with the sha256 of its source
and of itself. ``stamp_problem`` names why a derived file cannot be used (missing, no
stamp, built from another source, changed since it was built); callers rebuild it then,
saying so in the log. File times are not trusted: a copy, a restore or an edit that keeps
the time would fool them.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from engines.fileio import sha256_file, write_atomic

log = logging.getLogger(__name__)

STAMP_SUFFIX = ".stamp.json"
STAMP_VERSION = 1


def stamp_path(derived: Path) -> Path:
    """Where ``derived``'s stamp lives."""
    derived = Path(derived)
    return derived.with_name(derived.name + STAMP_SUFFIX)


def write_stamp(derived: Path, source_sha256: str, **extra: Any) -> str:
    """Hash ``derived`` and record it with its source's sha256; return its sha256."""
    digest = sha256_file(derived)
    record = {"version": STAMP_VERSION, "source_sha256": source_sha256, "sha256": digest,
              "size": Path(derived).stat().st_size, **extra}
    write_atomic(stamp_path(derived), json.dumps(record, indent=2, sort_keys=True).encode())
    return digest


def read_stamp(derived: Path) -> dict[str, Any] | None:
    """The stamp's record, or None when it is missing or unreadable."""
    try:
        data = json.loads(stamp_path(derived).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("version") == STAMP_VERSION else None


def stamp_problem(derived: Path, source_sha256: str) -> str | None:
    """None when ``derived`` exists, was built from ``source_sha256`` and is unchanged
    since; otherwise the reason, in words, for the rebuild log line."""
    derived = Path(derived)
    if not derived.is_file():
        return "it does not exist yet"
    record = read_stamp(derived)
    if record is None:
        return "it has no readable stamp (built by an older version, or the stamp is damaged)"
    if record.get("source_sha256") != source_sha256:
        return (f"it was built from another file (sha256 {record.get('source_sha256')}, "
                f"now {source_sha256})")
    size = derived.stat().st_size
    if record.get("size") != size:
        return f"it changed since it was built ({size} bytes, stamped {record.get('size')})"
    got = sha256_file(derived)
    if record.get("sha256") != got:
        return f"it changed since it was built (sha256 {got}, stamped {record.get('sha256')})"
    return None


def remove_derived(derived: Path) -> None:
    """Delete a derived file and its stamp (either may be absent)."""
    Path(derived).unlink(missing_ok=True)
    stamp_path(derived).unlink(missing_ok=True)
