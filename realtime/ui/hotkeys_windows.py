"""Windows: system-wide hotkeys with ``RegisterHotKey``, read from the GUI thread's queue.

A low-level keyboard hook (what pynput installs) runs Python on every key pressed in any
program; when that callback waits on the GIL past the system's hook timeout, Windows
removes the hook without telling the program and the hotkeys stop. ``RegisterHotKey``
needs no callback: Windows posts ``WM_HOTKEY`` to the registering thread's queue, and
Qt's event dispatcher hands every message of that queue to the native event filters.
So the hotkeys are registered on the GUI thread, with no window (``hWnd`` NULL), and a
``QAbstractNativeEventFilter`` turns ``WM_HOTKEY`` into an action.
"""

from __future__ import annotations

import ctypes
import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QAbstractNativeEventFilter, QCoreApplication

log = logging.getLogger(__name__)

WM_HOTKEY = 0x0312
MOD_ALT, MOD_CONTROL, MOD_NOREPEAT = 0x0001, 0x0002, 0x4000
ERROR_HOTKEY_ALREADY_REGISTERED = 1409
# the key of each binding's last part -> virtual-key code
VIRTUAL_KEYS = {**{str(n): 0x30 + n for n in range(1, 10)},
                "]": 0xDD, "[": 0xDB, "<space>": 0x20}  # VK_OEM_6, VK_OEM_4, VK_SPACE
# a window procedure's messages, and the thread queue's (where WM_HOTKEY with no window
# arrives: Qt's event dispatcher hands it to the filters under this name)
WINDOWS_MESSAGES = (b"windows_generic_MSG", b"windows_dispatcher_MSG")
FIRST_ID = 0xB000  # an application's hotkey ids are 0x0000..0xBFFF


class MSG(ctypes.Structure):
    """The start of Win32's ``MSG`` (what the filter's ``message`` points at)."""

    _fields_ = [("hwnd", ctypes.c_void_p), ("message", ctypes.c_uint),
                ("wParam", ctypes.c_size_t), ("lParam", ctypes.c_ssize_t)]


def virtual_key(combo: str) -> tuple[int, int]:
    """(modifiers, virtual-key code) of a ``<ctrl>+<alt>+KEY`` binding."""
    *modifiers, key = combo.split("+")
    if sorted(modifiers) != ["<alt>", "<ctrl>"] or key not in VIRTUAL_KEYS:
        raise ValueError(f"global hotkey {combo!r}: expected <ctrl>+<alt>+ one of "
                         f"{', '.join(VIRTUAL_KEYS)}")
    return MOD_CONTROL | MOD_ALT | MOD_NOREPEAT, VIRTUAL_KEYS[key]


def _user32() -> Any:
    return getattr(ctypes, "windll").user32  # noqa: B009 - Windows only


class _Filter(QAbstractNativeEventFilter):
    def __init__(self, actions: dict[int, str], emit: Callable[[str], None]) -> None:
        super().__init__()
        self._actions, self._emit = actions, emit

    def nativeEventFilter(self, event_type: Any, message: Any) -> tuple[bool, int]:  # Qt's name
        if bytes(event_type) not in WINDOWS_MESSAGES or not message:
            return False, 0
        msg = MSG.from_address(int(message))
        if msg.message != WM_HOTKEY or msg.wParam not in self._actions:
            return False, 0
        self._emit(self._actions[msg.wParam])
        return True, 0


class WindowsHotkeys:
    """Registers ``bindings`` (combo -> action) on the calling (GUI) thread."""

    def __init__(self, bindings: dict[str, str], emit: Callable[[str], None]) -> None:
        self._bindings, self._emit = bindings, emit
        self._ids: dict[int, str] = {}
        self._filter: _Filter | None = None

    def start(self) -> list[str]:
        """Register every hotkey; returns the combos another program already holds.
        Raises ``OSError`` when none could be registered."""
        user32 = _user32()
        taken: list[str] = []
        for number, (combo, action) in enumerate(self._bindings.items()):
            modifiers, key = virtual_key(combo)
            if user32.RegisterHotKey(None, FIRST_ID + number, modifiers, key):
                self._ids[FIRST_ID + number] = action
            else:
                taken.append(combo)
        if not self._ids:
            raise OSError("Windows refused every hotkey (another program holds Ctrl+Alt+1…9?)")
        application = QCoreApplication.instance()
        if application is None:
            self.stop()
            raise OSError("system-wide hotkeys need the running application")
        self._filter = _Filter(self._ids, self._emit)
        application.installNativeEventFilter(self._filter)
        if taken:
            log.warning("hotkeys held by another program: %s", ", ".join(taken))
        return taken

    def stop(self) -> None:
        user32 = _user32()
        for hotkey in self._ids:
            user32.UnregisterHotKey(None, hotkey)
        self._ids = {}
        application = QCoreApplication.instance()
        if self._filter is not None and application is not None:
            application.removeNativeEventFilter(self._filter)
        self._filter = None
