"""Two file helpers shared by models, the TensorRT cache, source photos and settings.

``sha256_file``: the content hash that identifies a file (model verification and
downloads, the engine cache key, the source-photo identity cache), read in chunks
because model files are hundreds of MB. ``write_atomic``: readers see the old file or
the new one, never half of one (a crash or a second writer mid-write).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from pathlib import Path

CHUNK = 1 << 20


class HashingCancelled(RuntimeError):
    """``cancel`` was set while the file was being hashed."""


def sha256_file(path: Path, *, cancel: threading.Event | None = None,
                chunk: int = CHUNK) -> str:
    """The lowercase hex sha256 of ``path``'s bytes.

    ``cancel`` is checked between chunks (a long hash must not outlive a cancelled
    download); raises ``HashingCancelled`` naming the file when it is set.
    """
    if chunk < 1:
        raise ValueError(f"chunk: expected >= 1 byte, got {chunk}")
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            if cancel is not None and cancel.is_set():
                raise HashingCancelled(f"{path}: hashing cancelled")
            digest.update(block)
    return digest.hexdigest()


def write_atomic(path: Path, data: bytes | memoryview, *, fsync: bool = False) -> None:
    """Write ``data`` to ``path`` through a uniquely named temporary file in the same
    folder (two writers never share one) renamed over ``path``; the temporary file is
    removed on any failure. ``fsync`` also survives a power cut (small files only: it
    waits for the disk)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
