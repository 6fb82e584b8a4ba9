"""macOS: system-wide hotkeys with a Quartz event tap on the main thread's run loop.

pynput's listener runs on its own thread and asks the Text Input Sources API (TIS) for
the keyboard layout there; since macOS 14.7 that API kills a process that calls it off
the main thread (EXC_BREAKPOINT). This tap is created on the main thread and its run
loop source added to the main run loop, which Qt's Cocoa event loop runs, so the
callback runs on the main thread too. Keys are matched by virtual key code (the ANSI
positions of 1…9, ``[``, ``]`` and space), which needs no layout lookup.

A listen-only tap needs the Input Monitoring permission (macOS 10.15+): without it
``CGEventTapCreate`` returns NULL; ``CGRequestListenEventAccess`` shows the prompt once.
Quartz (pyobjc-framework-Quartz) is imported when the hotkeys are turned on.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

# kVK_ANSI_* (Carbon's Events.h): where the key sits, whatever the layout
KEY_CODES = {"1": 0x12, "2": 0x13, "3": 0x14, "4": 0x15, "5": 0x17, "6": 0x16, "7": 0x1A,
             "8": 0x1C, "9": 0x19, "]": 0x1E, "[": 0x21, "<space>": 0x31}
CONTROL, ALTERNATE, COMMAND, SHIFT = 0x40000, 0x80000, 0x100000, 0x20000  # kCGEventFlagMask*
PERMISSION = (
    "macOS has not allowed swapcam to watch the keyboard: in System Settings → Privacy & "
    "Security → Input Monitoring, turn on swapcam (or the Terminal you started it from), "
    "then turn the hotkeys on again")


def key_code(combo: str) -> int:
    *modifiers, key = combo.split("+")
    if sorted(modifiers) != ["<alt>", "<ctrl>"] or key not in KEY_CODES:
        raise ValueError(f"global hotkey {combo!r}: expected <ctrl>+<alt>+ one of "
                         f"{', '.join(KEY_CODES)}")
    return KEY_CODES[key]


def quartz() -> Any:
    return importlib.import_module("Quartz")


class MacHotkeys:
    """An event tap for ``bindings`` (combo -> action); start and stop on the main thread."""

    def __init__(self, bindings: dict[str, str], emit: Callable[[str], None]) -> None:
        self._actions = {key_code(combo): action for combo, action in bindings.items()}
        self._emit = emit
        self._tap: Any = None
        self._source: Any = None
        self._callback: Any = None

    def start(self) -> None:
        """Raises ``PermissionError`` (Input Monitoring refused) or ``RuntimeError``."""
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError("macOS hotkeys must be turned on from the main thread")
        q = quartz()
        if hasattr(q, "CGPreflightListenEventAccess") and not q.CGPreflightListenEventAccess():
            q.CGRequestListenEventAccess()  # the system's prompt, once per app
            raise PermissionError(PERMISSION)
        self._callback = self._on_event  # held: the tap calls it for as long as it lives
        tap = q.CGEventTapCreate(q.kCGSessionEventTap, q.kCGHeadInsertEventTap,
                                 q.kCGEventTapOptionListenOnly,
                                 q.CGEventMaskBit(q.kCGEventKeyDown), self._callback, None)
        if tap is None:
            raise PermissionError(PERMISSION)
        self._tap = tap
        self._source = q.CFMachPortCreateRunLoopSource(None, tap, 0)
        q.CFRunLoopAddSource(q.CFRunLoopGetMain(), self._source, q.kCFRunLoopCommonModes)
        q.CGEventTapEnable(tap, True)

    def _on_event(self, _proxy: Any, kind: int, event: Any, _refcon: Any) -> Any:
        q = quartz()
        if kind in (q.kCGEventTapDisabledByTimeout, q.kCGEventTapDisabledByUserInput):
            q.CGEventTapEnable(self._tap, True)  # the system paused the tap: resume
            return event
        if kind != q.kCGEventKeyDown:
            return event
        if q.CGEventGetIntegerValueField(event, q.kCGKeyboardEventAutorepeat):
            return event
        flags = int(q.CGEventGetFlags(event))
        if flags & (CONTROL | ALTERNATE | COMMAND | SHIFT) != CONTROL | ALTERNATE:
            return event
        action = self._actions.get(int(q.CGEventGetIntegerValueField(
            event, q.kCGKeyboardEventKeycode)))
        if action is not None:
            self._emit(action)
        return event

    def stop(self) -> None:
        tap, source, self._tap, self._source = self._tap, self._source, None, None
        if tap is None:
            return
        q = quartz()
        q.CGEventTapEnable(tap, False)
        q.CFRunLoopRemoveSource(q.CFRunLoopGetMain(), source, q.kCFRunLoopCommonModes)
        q.CFMachPortInvalidate(tap)
