"""The GUI process's settlement with its OS, each OS faked at ``sys.platform`` and the
lowest call: the order in which the GUI entry imports torch and Qt (recorded at
``builtins.__import__``, where every ``import`` statement goes), Windows' shell32, macOS's
Foundation ``NSProcessInfo``."""

from __future__ import annotations

import builtins
import ctypes
import sys
import types
from typing import Any, ClassVar

import pytest

import main
from realtime.desktop import process


class QtLoaded(Exception):
    """Stands for the rest of the start: the test ends where Qt is first imported."""


def record_imports(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """torch and PySide6 imports in order; torch is a stub (its real import takes
    seconds), and the first PySide6 import stops the start."""
    order: list[str] = []
    real = builtins.__import__

    def recording(name: str, globals_: Any = None, locals_: Any = None,
                  fromlist: Any = (), level: int = 0) -> Any:
        top = name.partition(".")[0]
        if level == 0 and top in ("torch", "PySide6"):
            order.append(top)
            if top == "PySide6":
                raise QtLoaded(name)
            return types.ModuleType("torch")
        return real(name, globals_, locals_, fromlist, level)

    monkeypatch.setattr(builtins, "__import__", recording)
    monkeypatch.setattr(process.importlib.util, "find_spec", lambda name: object())
    return order


def test_the_gui_entry_loads_torch_before_qt_on_windows(monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    order = record_imports(monkeypatch)
    monkeypatch.setattr(sys, "platform", "win32")
    assert main.main([]) == 1  # the window's start, stopped at Qt
    assert order[:2] == ["torch", "PySide6"]
    assert "swapcam: error:" in capsys.readouterr().err


def test_other_systems_do_not_pay_for_torch_before_the_window(
        monkeypatch: pytest.MonkeyPatch) -> None:
    order = record_imports(monkeypatch)
    monkeypatch.setattr(sys, "platform", "linux")
    assert main.main([]) == 1
    assert order[0] == "PySide6"


def test_torch_failing_to_load_is_reported_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    real = builtins.__import__

    def failing(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "torch":
            raise OSError("[WinError 1114] A dynamic link library (DLL) initialization "
                          "routine failed. Error loading \"c10.dll\"")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", failing)
    monkeypatch.setattr(process.importlib.util, "find_spec", lambda name: object())
    monkeypatch.setattr(sys, "platform", "win32")
    reason = process.load_torch_before_qt()
    assert reason is not None and "WinError 1114" in reason


class Shell32:
    def __init__(self) -> None:
        self.ids: list[str] = []

    def SetCurrentProcessExplicitAppUserModelID(self, value: ctypes.c_wchar_p) -> int:
        self.ids.append(str(value.value))
        return 0  # S_OK


def test_windows_sets_the_app_user_model_id(monkeypatch: pytest.MonkeyPatch) -> None:
    shell32 = Shell32()
    monkeypatch.setattr(ctypes, "windll", types.SimpleNamespace(shell32=shell32), raising=False)
    monkeypatch.setattr(sys, "platform", "win32")
    assert process.set_app_user_model_id()
    assert shell32.ids == [process.APP_USER_MODEL_ID]
    monkeypatch.setattr(sys, "platform", "linux")
    assert not process.set_app_user_model_id() and len(shell32.ids) == 1


class ProcessInfo:
    active: ClassVar[list[tuple[int, str]]] = []

    @classmethod
    def processInfo(cls) -> ProcessInfo:
        return cls()

    def beginActivityWithOptions_reason_(self, options: int, reason: str) -> object:
        token = (options, reason)
        ProcessInfo.active.append(token)
        return token

    def endActivity_(self, token: tuple[int, str]) -> None:
        ProcessInfo.active.remove(token)


def test_macos_holds_an_activity_against_app_nap(monkeypatch: pytest.MonkeyPatch) -> None:
    foundation = types.ModuleType("Foundation")
    foundation.NSProcessInfo = ProcessInfo  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "Foundation", foundation)
    monkeypatch.setattr(sys, "platform", "darwin")
    ProcessInfo.active = []
    end = process.hold_activity()
    ((options, reason),) = ProcessInfo.active
    assert options & 0x00FFFFFF and not options & (1 << 20)  # user-initiated, sleep allowed
    assert "virtual camera" in reason
    end()
    assert ProcessInfo.active == []


def test_macos_without_foundation_runs_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "Foundation", None)
    monkeypatch.setattr(sys, "platform", "darwin")
    process.hold_activity()()  # no error
