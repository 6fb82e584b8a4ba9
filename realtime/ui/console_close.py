"""Windows: closing the console window swapcam was started from (or logging off) still
saves the settings and finishes a recording.

Windows tells a console program about these with a console control event and ends the
process as soon as the handler returns (at the latest after 5 s). Python's own handler
only raises SIGBREAK and returns at once, which is too soon. ``ConsoleCloseGuard``
registers a handler (``SetConsoleCtrlHandler``) that asks the window to close, on the
GUI thread, and waits until the window has shut down. Ctrl-C and Ctrl-Break are left to
the signal handlers (``realtime.ui.app.close_on_signals``).
"""

from __future__ import annotations

import ctypes
import logging
import threading
from typing import Any

from PySide6.QtCore import QObject, Signal

from realtime.system import os_family

log = logging.getLogger(__name__)

CTRL_CLOSE_EVENT, CTRL_LOGOFF_EVENT, CTRL_SHUTDOWN_EVENT = 2, 5, 6
WAIT_S = 4.5  # Windows ends the process 5 s after a close event


class ConsoleCloseGuard(QObject):
    """Install on Windows; call ``shut_down()`` once the window has saved everything."""

    requested = Signal()

    def __init__(self, window: Any) -> None:
        super().__init__()
        self.finished = threading.Event()
        self.requested.connect(window.close)  # queued: the handler runs on its own thread
        self._handler: Any = None
        self._kernel32: Any = None

    def install(self) -> bool:
        """Register the handler (Windows only); False elsewhere or when refused."""
        if os_family() != "windows":
            return False
        prototype = getattr(ctypes, "WINFUNCTYPE")(ctypes.c_int, ctypes.c_ulong)  # noqa: B009
        self._kernel32 = getattr(ctypes, "windll").kernel32  # noqa: B009
        self._handler = prototype(self._on_event)  # kept: a collected callback would crash
        if not self._kernel32.SetConsoleCtrlHandler(self._handler, True):
            log.warning("could not watch the console window's close button")
            self._handler = None
            return False
        return True

    def _on_event(self, event: int) -> int:
        if event not in (CTRL_CLOSE_EVENT, CTRL_LOGOFF_EVENT, CTRL_SHUTDOWN_EVENT):
            return 0  # Ctrl-C / Ctrl-Break: the next handler (SIGINT / SIGBREAK)
        log.info("console event %d: closing the window", event)
        self.requested.emit()
        self.finished.wait(WAIT_S)
        return 1

    def shut_down(self) -> None:
        """The window has shut down: let a waiting close event end the process, and
        unregister."""
        self.finished.set()
        if self._handler is not None:
            self._kernel32.SetConsoleCtrlHandler(self._handler, False)
            self._handler = None
