"""Optional system-wide hotkeys (Ctrl+Alt+1…9 and friends) through pynput.

Off by default. ``pynput`` is imported only when the user turns them on, so the app
runs without it; ``availability()`` says why they cannot work (not installed, Wayland)
in a sentence the settings panel shows. pynput calls back on its own thread: the
actions cross to the GUI thread through a queued Qt signal.
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


MACOS_PERMISSION = (
    "macOS has not allowed this program to watch the keyboard: in System Settings → "
    "Privacy & Security, add the app you started swapcam from (Terminal, or swapcam) "
    "under Accessibility and Input Monitoring, then turn the hotkeys on again")


def macos_untrusted(listener: Any) -> str | None:
    """On macOS a listener started without the Accessibility permission receives no keys
    and says nothing: pynput sets ``IS_TRUSTED`` once its thread runs. The reason, or
    None (other systems, or trusted)."""
    if sys.platform != "darwin":
        return None
    listener.wait()  # until the listener's thread has asked the system
    return None if getattr(listener, "IS_TRUSTED", False) else MACOS_PERMISSION


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
        keyboard = importlib.import_module("pynput.keyboard")
        mapping = {combo: (lambda action=action: self.triggered.emit(action))
                   for combo, action in BINDINGS.items()}
        try:
            listener = keyboard.GlobalHotKeys(mapping)
            listener.start()
        except Exception as exc:  # pynput raises backend-specific errors (no X server ...)
            raise GlobalHotkeysUnavailable(f"system-wide hotkeys could not start: {exc}") from exc
        untrusted = macos_untrusted(listener)
        if untrusted is not None:
            listener.stop()
            raise GlobalHotkeysUnavailable(f"system-wide hotkeys: {untrusted}")
        self._listener = listener
        log.info("system-wide hotkeys on: %s", ", ".join(BINDINGS))

    def stop(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.stop()
            listener.join(2.0)
