"""Windows' console close event closes the window and waits for its shutdown; faked at
``sys.platform`` and ``ctypes`` (``windll.kernel32.SetConsoleCtrlHandler`` and
``WINFUNCTYPE``, which exist only on Windows)."""

from __future__ import annotations

import ctypes
import sys
import threading
import types
from typing import Any

import pytest
from PySide6.QtWidgets import QWidget
from pytestqt.qtbot import QtBot

from realtime.ui import console_close
from realtime.ui.console_close import ConsoleCloseGuard


def fake_kernel32(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, bool]]:
    calls: list[tuple[Any, bool]] = []

    def set_handler(handler: Any, add: bool) -> int:
        calls.append((handler, add))
        return 1

    def winfunctype(restype: Any, *argtypes: Any) -> Any:
        assert (restype, argtypes) == (ctypes.c_int, (ctypes.c_ulong,))  # BOOL(DWORD)
        return lambda function: function

    kernel32 = types.SimpleNamespace(SetConsoleCtrlHandler=set_handler)
    monkeypatch.setattr(ctypes, "windll", types.SimpleNamespace(kernel32=kernel32),
                        raising=False)
    monkeypatch.setattr(ctypes, "WINFUNCTYPE", winfunctype, raising=False)
    return calls


def test_close_event_closes_the_window_and_waits(monkeypatch: pytest.MonkeyPatch,
                                                 qtbot: QtBot) -> None:
    monkeypatch.setattr(sys, "platform", "win32")
    calls = fake_kernel32(monkeypatch)
    window = QWidget()
    qtbot.addWidget(window)
    window.show()
    guard = ConsoleCloseGuard(window)
    assert guard.install()
    (handler, added), = calls
    assert added
    assert handler(0) == 0 and handler(1) == 0 and window.isVisible()  # Ctrl-C, Ctrl-Break
    answer: list[int] = []
    thread = threading.Thread(target=lambda: answer.append(handler(2)))  # Windows' thread
    thread.start()
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=3000)
    assert answer == []  # still waiting for the shutdown
    guard.shut_down()
    thread.join(2)
    assert answer == [1] and calls[-1] == (handler, False)


def test_close_event_gives_up_after_the_wait(monkeypatch: pytest.MonkeyPatch,
                                             qtbot: QtBot) -> None:
    monkeypatch.setattr(sys, "platform", "win32")
    calls = fake_kernel32(monkeypatch)
    monkeypatch.setattr(console_close, "WAIT_S", 0.05)
    window = QWidget()
    qtbot.addWidget(window)
    guard = ConsoleCloseGuard(window)
    guard.install()
    assert calls[0][0](console_close.CTRL_LOGOFF_EVENT) == 1


def test_other_systems_install_nothing(monkeypatch: pytest.MonkeyPatch, qtbot: QtBot) -> None:
    monkeypatch.setattr(sys, "platform", "linux")
    window = QWidget()
    qtbot.addWidget(window)
    guard = ConsoleCloseGuard(window)
    assert not guard.install()
    guard.shut_down()  # harmless
