"""Optional system-wide hotkeys (Ctrl+Alt+1…9 and friends), per OS.

Off by default. Windows: ``RegisterHotKey`` read by a Qt native event filter
(``hotkeys_windows``; no keyboard hook). macOS: a Quartz event tap on the main run loop
(``hotkeys_macos``; pynput's listener thread calls an API macOS 14.7+ allows only on
the main thread). Linux (X11): pynput, imported only when the user turns them on, so the
app runs without it; it calls back on its own thread and the actions cross to the GUI
thread through a queued Qt signal. ``availability()`` says why they cannot work (not
installed, Wayland) in a sentence the settings panel shows.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import sys
from typing import Any

from PySide6.QtCore import QObject, Signal

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install swapcam[hotkeys]"
BINDINGS: dict[str, str] = {
    **{f"<ctrl>+<alt>+{n}": f"source:{n}" for n in range(1, 10)},
    "<ctrl>+<alt>+]": "next",
    "<ctrl>+<alt>+[": "previous",
    "<ctrl>+<alt>+<space>": "swap",
}


class GlobalHotkeysUnavailable(RuntimeError):
    """System-wide hotkeys cannot work here; the message says why and what to do."""


def availability() -> str | None:
    """None when system-wide hotkeys can work, else the reason (with the fix)."""
    if sys.platform == "win32":
        return None  # RegisterHotKey: part of Windows
    if sys.platform == "darwin":
        if importlib.util.find_spec("Quartz") is None:
            return f"needs the optional pyobjc-framework-Quartz package: {INSTALL_HINT}"
        return None
    if importlib.util.find_spec("pynput") is None:
        return f"needs the optional pynput package: {INSTALL_HINT}"
    if sys.platform.startswith("linux"):
        if os.environ.get("XDG_SESSION_TYPE", "").lower() == "wayland" or (
            os.environ.get("WAYLAND_DISPLAY") and not os.environ.get("DISPLAY")
        ):
            return ("Wayland does not let applications read keys system-wide; "
                    "use an X11 session, or the window's own hotkeys")
        if not os.environ.get("DISPLAY"):
            return "no X11 display (DISPLAY is not set)"
    return None


class GlobalHotkeys(QObject):
    """Listens system-wide while started; ``triggered(action)`` arrives on the GUI thread."""

    triggered = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._listener: Any = None

    @property
    def running(self) -> bool:
        return self._listener is not None

    def start(self) -> None:
        reason = availability()
        if reason is not None:
            raise GlobalHotkeysUnavailable(f"system-wide hotkeys: {reason}")
        if self._listener is not None:
            return
        if sys.platform in ("win32", "darwin"):
            self._listener = self._start_native()
            log.info("system-wide hotkeys on: %s", ", ".join(BINDINGS))
            return
        keyboard = importlib.import_module("pynput.keyboard")
        mapping = {combo: (lambda action=action: self.triggered.emit(action))
                   for combo, action in BINDINGS.items()}
        try:
            listener = keyboard.GlobalHotKeys(mapping)
            listener.start()
        except Exception as exc:  # pynput raises backend-specific errors (no X server ...)
            raise GlobalHotkeysUnavailable(f"system-wide hotkeys could not start: {exc}") from exc
        self._listener = listener
        log.info("system-wide hotkeys on: %s", ", ".join(BINDINGS))

    def _start_native(self) -> Any:
        """Windows' or macOS's own hotkey service, registered on this (the GUI) thread."""
        emit = self.triggered.emit
        native: Any
        if sys.platform == "win32":
            from realtime.ui.hotkeys_windows import WindowsHotkeys

            native = WindowsHotkeys(BINDINGS, emit)
        else:
            from realtime.ui.hotkeys_macos import MacHotkeys

            native = MacHotkeys(BINDINGS, emit)
        try:
            native.start()
        except PermissionError as exc:
            raise GlobalHotkeysUnavailable(f"system-wide hotkeys: {exc}") from exc
        except Exception as exc:  # the OS refused (a combination taken, no Quartz ...)
            raise GlobalHotkeysUnavailable(f"system-wide hotkeys could not start: {exc}") from exc
        return native

    def stop(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.stop()
            if hasattr(listener, "join"):  # pynput's thread
                listener.join(2.0)
