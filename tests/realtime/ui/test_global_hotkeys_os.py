"""System-wide hotkeys per OS, faked at ``sys.platform`` and a fake ``pynput.keyboard``
whose listener reports ``IS_TRUSTED`` as pynput's macOS listener does."""

from __future__ import annotations

import sys
import types
from typing import ClassVar

import pytest

from realtime.ui import global_hotkeys


class Listener:
    trusted = True
    instances: ClassVar[list[Listener]] = []

    def __init__(self, mapping: dict[str, object]) -> None:
        self.mapping, self.started, self.stopped, self.waited = mapping, False, False, False
        Listener.instances.append(self)

    def start(self) -> None:
        self.started = True

    def wait(self) -> None:  # pynput: blocks until the listener thread is ready
        assert self.started
        self.waited = True
        if sys.platform == "darwin":
            self.IS_TRUSTED = Listener.trusted

    def stop(self) -> None:
        self.stopped = True

    def join(self, timeout: float) -> None:
        pass


@pytest.fixture
def pynput(monkeypatch: pytest.MonkeyPatch) -> type[Listener]:
    keyboard = types.ModuleType("pynput.keyboard")
    keyboard.GlobalHotKeys = Listener  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pynput", types.ModuleType("pynput"))
    monkeypatch.setitem(sys.modules, "pynput.keyboard", keyboard)
    monkeypatch.setattr(global_hotkeys.importlib.util, "find_spec", lambda name: object())
    Listener.instances.clear()
    return Listener


def test_macos_without_permission_says_where_to_allow_it(
        monkeypatch: pytest.MonkeyPatch, pynput: type[Listener]) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.setattr(Listener, "trusted", False)
    hotkeys = global_hotkeys.GlobalHotkeys()
    with pytest.raises(global_hotkeys.GlobalHotkeysUnavailable, match="Accessibility"):
        hotkeys.start()
    (listener,) = Listener.instances
    assert listener.waited and listener.stopped and not hotkeys.running


def test_macos_with_permission_runs(monkeypatch: pytest.MonkeyPatch,
                                    pynput: type[Listener]) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    hotkeys = global_hotkeys.GlobalHotkeys()
    hotkeys.start()
    assert hotkeys.running and not Listener.instances[0].stopped
    hotkeys.stop()


def test_windows_needs_no_display_or_permission(monkeypatch: pytest.MonkeyPatch,
                                                pynput: type[Listener]) -> None:
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.setenv("XDG_SESSION_TYPE", "wayland")  # ignored off Linux
    assert global_hotkeys.availability() is None
    hotkeys = global_hotkeys.GlobalHotkeys()
    hotkeys.start()
    assert hotkeys.running and not Listener.instances[0].waited
    hotkeys.stop()


def test_linux_without_display(monkeypatch: pytest.MonkeyPatch, pynput: type[Listener]) -> None:
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setenv("XDG_SESSION_TYPE", "x11")
    assert global_hotkeys.availability() == "no X11 display (DISPLAY is not set)"
