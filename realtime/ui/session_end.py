"""Windows: log-off and shut-down save the settings and finish a recording.

A GUI process (``swapcam-gui`` runs under pythonw, with no console) gets no console
control event when the session ends: Windows sends ``WM_QUERYENDSESSION`` and then
``WM_ENDSESSION`` to its top-level windows, and may end the process as soon as every
``WM_ENDSESSION`` has returned. So a native event filter runs the window's shutdown
(save, finish the recording, stop the threads) while ``WM_ENDSESSION`` (the session
really ends) is being handled, and leaves the message to Qt afterwards.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QAbstractNativeEventFilter, QCoreApplication

from realtime.system import os_family
from realtime.ui.hotkeys_windows import MSG, WINDOWS_MESSAGES

log = logging.getLogger(__name__)

WM_QUERYENDSESSION, WM_ENDSESSION = 0x0011, 0x0016


class SessionEndFilter(QAbstractNativeEventFilter):
    """Calls ``shutdown`` once, when Windows says the session ends."""

    def __init__(self, shutdown: Callable[[], None]) -> None:
        super().__init__()
        self._shutdown = shutdown
        self.done = False

    def nativeEventFilter(self, event_type: Any, message: Any) -> tuple[bool, int]:  # Qt's name
        if bytes(event_type) not in WINDOWS_MESSAGES or not message:
            return False, 0
        msg = MSG.from_address(int(message))
        if msg.message == WM_QUERYENDSESSION:
            log.info("Windows asks whether the session may end")
        elif msg.message == WM_ENDSESSION and msg.wParam and not self.done:
            self.done = True
            log.info("the Windows session ends: saving and stopping")
            self._shutdown()
        return False, 0  # Qt answers the message as it would have


def install(app: QCoreApplication, shutdown: Callable[[], None]) -> SessionEndFilter | None:
    """On Windows, run ``shutdown`` when the session ends; keep the returned filter alive
    while the app runs. None elsewhere (macOS quits the app, closing its windows; Linux
    sessions send SIGTERM, which ``close_on_signals`` handles)."""
    if os_family() != "windows":
        return None
    event_filter = SessionEndFilter(shutdown)
    app.installNativeEventFilter(event_filter)
    return event_filter
