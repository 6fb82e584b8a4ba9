"""Where output goes when the app has no console (``swapcam-gui`` on Windows runs under
pythonw, where ``sys.stdout`` and ``sys.stderr`` are None)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO, cast

LOG_NAME = "swapcam.log"
MAX_BYTES = 1_000_000  # a log larger than this starts afresh


def log_folder() -> Path:
    import platformdirs

    return Path(platformdirs.user_log_dir("swapcam", appauthor=False))


def log_to_file(folder: Path | None = None) -> Path:
    """Point ``sys.stdout`` and ``sys.stderr`` (and so logging and error messages) at
    ``folder/swapcam.log``; returns the file's path."""
    path = (folder or log_folder()) / LOG_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = "w" if path.exists() and path.stat().st_size > MAX_BYTES else "a"
    # open for the rest of the process: it is the process's output from now on
    stream = cast(TextIO, path.open(mode, encoding="utf-8", buffering=1))
    sys.stdout = sys.stderr = stream
    return path
