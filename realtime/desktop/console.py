"""Where output goes when the app has no console, and how a failure is shown then.

``swapcam-gui`` started from the Start menu runs under pythonw (``sys.stdout`` and
``sys.stderr`` are None); started from Finder, the Dock or a ``.desktop`` entry its output
goes to ``/dev/null`` or a journal nobody reads. Without a terminal, output and log lines
go to ``swapcam.log`` in the user's log folder (and still to the stream they replace,
when there is one), and a failure to start is shown in a dialog that names the log.
"""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TextIO, cast

LOG_NAME = "swapcam.log"
MAX_BYTES = 1_000_000  # a log larger than this starts afresh
TITLE = "swapcam"


def log_folder() -> Path:
    import platformdirs

    return Path(platformdirs.user_log_dir("swapcam", appauthor=False))


def has_console() -> bool:
    """Whether a person sees this process's error output (it is a terminal)."""
    stream = sys.stderr
    try:
        return stream is not None and stream.isatty()
    except (ValueError, OSError):  # closed, or not a real file
        return False


class Tee:
    """A text stream writing to the log and to the stream it replaces (if any), which
    keeps swapcam's own one-line errors (``swapcam: error: ...``) for the dialog."""

    def __init__(self, log: TextIO, original: TextIO | None, errors: list[str]) -> None:
        self._log, self._original, self.errors = log, original, errors
        self.encoding = log.encoding

    def write(self, text: str) -> int:
        self._log.write(text)
        if self._original is not None:
            try:
                self._original.write(text)
            except (OSError, ValueError):  # a closed pipe: the log has it
                self._original = None
        self.errors += [line for line in text.splitlines() if line.startswith("swapcam: ")]
        return len(text)

    def flush(self) -> None:
        self._log.flush()
        if self._original is not None:
            try:
                self._original.flush()
            except (OSError, ValueError):
                self._original = None

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:  # faulthandler and subprocess ask for one
        return self._log.fileno()


ERRORS: list[str] = []  # swapcam's error lines written since log_to_file


def log_to_file(folder: Path | None = None) -> Path:
    """Point ``sys.stdout`` and ``sys.stderr`` (and so logging and error messages) at
    ``folder/swapcam.log`` as well as where they went; returns the file's path."""
    path = (folder or log_folder()) / LOG_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = "w" if path.exists() and path.stat().st_size > MAX_BYTES else "a"
    # open for the rest of the process: it is the process's output from now on
    stream = cast(TextIO, path.open(mode, encoding="utf-8", buffering=1))
    ERRORS.clear()
    sys.stdout = cast(TextIO, Tee(stream, sys.stdout, ERRORS))
    sys.stderr = cast(TextIO, Tee(stream, sys.stderr, ERRORS))
    return path


def failure_text(log: Path, errors: list[str] | None = None) -> str:
    """What the dialog says: swapcam's error lines (or that there were none) and the log."""
    lines = ERRORS if errors is None else errors
    said = "\n".join(lines[-5:]) or "swapcam stopped with an error."
    return f"swapcam could not start.\n\n{said}\n\nThe details are in {log}"


def show_error_dialog(text: str) -> None:
    """A dialog a person sees without a console: Qt's, else the system's own (Qt itself
    may be what failed)."""
    try:
        widgets = importlib.import_module("PySide6.QtWidgets")
        _app = widgets.QApplication.instance() or widgets.QApplication([sys.argv[0]])
        widgets.QMessageBox.critical(None, TITLE, text)
        return
    except Exception:  # Qt failed to load or to start: the system's own dialog
        pass
    if sys.platform == "win32":
        import ctypes

        user32 = getattr(ctypes, "windll").user32  # noqa: B009 - Windows only
        user32.MessageBoxW(None, text, TITLE, 0x10)  # MB_ICONERROR
    elif sys.platform == "darwin" and shutil.which("osascript"):
        script = ["-e", "on run argv", "-e",
                  f'display alert "{TITLE}" message (item 1 of argv) as critical',
                  "-e", "end run"]
        subprocess.run(["osascript", *script, text], check=False, capture_output=True)
