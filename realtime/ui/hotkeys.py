"""The window's hotkeys: one table drives the shortcuts, the help overlay and the docs.

Shortcuts are ``QShortcut`` objects with window scope, so a text field that wants a
key (typing a name) still gets it, and everything else in the window reacts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import QWidget


@dataclass(frozen=True)
class Hotkey:
    keys: tuple[str, ...]  # QKeySequence strings
    action: str  # the handler's name
    label: str  # what the help overlay shows for the keys
    description: str


HOTKEYS: tuple[Hotkey, ...] = (
    *(Hotkey((str(n),), f"source:{n}", str(n), f"use source {n}") for n in range(1, 10)),
    Hotkey(("]",), "next", "]", "next source"),
    Hotkey(("[",), "previous", "[", "previous source"),
    Hotkey(("Space",), "swap", "Space", "swap on / off"),
    Hotkey(("O",), "original", "O", "show original / swapped"),
    Hotkey(("R",), "record", "R", "record start / stop"),
    Hotkey(("V",), "vcam", "V", "virtual camera on / off"),
    Hotkey(("F",), "fullscreen", "F", "fullscreen preview"),
    Hotkey(("C",), "next-face", "C", "select the next face in the preview"),
    Hotkey(("A",), "assign-face", "A", "give the selected face an identity (or click it)"),
    Hotkey(("F1", "?"), "help", "F1 or ?", "this help"),
)


def help_rows() -> list[tuple[str, str]]:
    """(keys, description) rows for the overlay; the nine source keys share one row."""
    rows = [("1 … 9", "use source 1 … 9 (numbers on the gallery tiles)")]
    rows += [(h.label, h.description) for h in HOTKEYS if not h.action.startswith("source:")]
    return rows


def install_hotkeys(window: QWidget, handler: Callable[[str], None]) -> list[QShortcut]:
    """Create one shortcut per key in ``HOTKEYS``; each calls ``handler(action)``."""
    shortcuts: list[QShortcut] = []
    for hotkey in HOTKEYS:
        for keys in hotkey.keys:
            shortcut = QShortcut(QKeySequence(keys), window)
            shortcut.setContext(Qt.ShortcutContext.WindowShortcut)
            shortcut.setAutoRepeat(False)
            shortcut.activated.connect(lambda action=hotkey.action: handler(action))
            shortcuts.append(shortcut)
    return shortcuts
