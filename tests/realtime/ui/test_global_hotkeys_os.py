"""System-wide hotkeys per OS, faked at ``sys.platform`` and the lowest OS call: a fake
``pynput.keyboard`` (Linux; on macOS its listener thread calls the Text Input Sources API
and, like macOS 14.7+, the fake dies when that call comes off the main thread), a fake
``Quartz`` (macOS event tap) and a fake ``user32`` (Windows ``RegisterHotKey``)."""

from __future__ import annotations

import ctypes
import sys
import threading
import types
from typing import Any, ClassVar

import pytest
from pytestqt.qtbot import QtBot

from realtime.ui import global_hotkeys


class Listener:
    trusted = True
    instances: ClassVar[list[Listener]] = []

    def __init__(self, mapping: dict[str, object]) -> None:
        self.mapping, self.started, self.stopped, self.waited = mapping, False, False, False
        Listener.instances.append(self)

    def start(self) -> None:
        self.started = True
        if sys.platform == "darwin":  # pynput's darwin listener: a thread that asks TIS
            thread = threading.Thread(target=text_input_source_layout)
            thread.start()
            thread.join()

    def wait(self) -> None:  # pynput: blocks until the listener thread is ready
        assert self.started
        self.waited = True
        if sys.platform == "darwin":
            self.IS_TRUSTED = Listener.trusted

    def stop(self) -> None:
        self.stopped = True

    def join(self, timeout: float) -> None:
        pass


CRASHES: list[str] = []


def text_input_source_layout() -> None:
    """TISCopyCurrentKeyboardLayoutInputSource as macOS 14.7+ has it: off the main thread
    the process is killed (EXC_BREAKPOINT); recorded here instead of killing pytest."""
    if threading.current_thread() is not threading.main_thread():
        CRASHES.append("EXC_BREAKPOINT: TIS called off the main thread")


@pytest.fixture
def pynput(monkeypatch: pytest.MonkeyPatch) -> type[Listener]:
    keyboard = types.ModuleType("pynput.keyboard")
    keyboard.GlobalHotKeys = Listener  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pynput", types.ModuleType("pynput"))
    monkeypatch.setitem(sys.modules, "pynput.keyboard", keyboard)
    monkeypatch.setattr(global_hotkeys.importlib.util, "find_spec", lambda name: object())
    Listener.instances.clear()
    CRASHES.clear()
    return Listener


def test_linux_without_display(monkeypatch: pytest.MonkeyPatch, pynput: type[Listener]) -> None:
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setenv("XDG_SESSION_TYPE", "x11")
    assert global_hotkeys.availability() == "no X11 display (DISPLAY is not set)"


# -- macOS: a Quartz event tap on the main run loop ---------------------------------------


class FakeQuartz(types.ModuleType):
    """The Quartz calls the tap makes; ``granted``: the Input Monitoring permission."""

    kCGSessionEventTap, kCGHeadInsertEventTap, kCGEventTapOptionListenOnly = 1, 0, 1
    kCGEventKeyDown, kCGEventTapDisabledByTimeout, kCGEventTapDisabledByUserInput = (
        10, 0xFFFFFFFE, 0xFFFFFFFF)
    kCGKeyboardEventKeycode, kCGKeyboardEventAutorepeat = 9, 8
    kCFRunLoopCommonModes = "kCFRunLoopCommonModes"

    def __init__(self, granted: bool) -> None:
        super().__init__("Quartz")
        self.granted, self.requested = granted, False
        self.callback: Any = None
        self.threads: list[bool] = []  # each call: on the main thread?
        self.loop_sources: list[tuple[str, str]] = []
        self.enabled: bool | None = None

    def _called(self) -> None:
        self.threads.append(threading.current_thread() is threading.main_thread())

    def CGPreflightListenEventAccess(self) -> bool:
        self._called()
        return self.granted

    def CGRequestListenEventAccess(self) -> bool:
        self.requested = True
        return False

    def CGEventMaskBit(self, kind: int) -> int:
        return 1 << kind

    def CGEventTapCreate(self, tap: int, place: int, options: int, mask: int,
                         callback: Any, refcon: Any) -> object | None:
        self._called()
        assert options == self.kCGEventTapOptionListenOnly and mask == 1 << 10
        if not self.granted:
            return None
        self.callback = callback
        return object()

    def CFMachPortCreateRunLoopSource(self, allocator: Any, port: Any, order: int) -> str:
        return "source"

    def CFRunLoopGetMain(self) -> str:
        return "main run loop"

    def CFRunLoopAddSource(self, loop: str, source: str, mode: str) -> None:
        self._called()
        self.loop_sources.append((loop, mode))

    def CFRunLoopRemoveSource(self, loop: str, source: str, mode: str) -> None:
        self.loop_sources.remove((loop, mode))

    def CGEventTapEnable(self, tap: Any, on: bool) -> None:
        self.enabled = on

    def CFMachPortInvalidate(self, port: Any) -> None:
        pass

    def CGEventGetFlags(self, event: dict[str, int]) -> int:
        return event["flags"]

    def CGEventGetIntegerValueField(self, event: dict[str, int], field: int) -> int:
        return event["code"] if field == self.kCGKeyboardEventKeycode else event["repeat"]


@pytest.fixture
def quartz(monkeypatch: pytest.MonkeyPatch, pynput: type[Listener]) -> Any:
    def install(granted: bool = True) -> FakeQuartz:
        module = FakeQuartz(granted)
        monkeypatch.setattr(sys, "platform", "darwin")
        monkeypatch.setitem(sys.modules, "Quartz", module)
        return module
    return install


def key_down(code: int, flags: int) -> dict[str, int]:
    return {"code": code, "flags": flags, "repeat": 0}


def test_macos_never_asks_tis_off_the_main_thread(quartz: Any, qtbot: QtBot) -> None:
    fake = quartz()
    hotkeys = global_hotkeys.GlobalHotkeys()
    fired: list[str] = []
    hotkeys.triggered.connect(fired.append)
    hotkeys.start()
    assert CRASHES == []  # pynput's listener thread was never started
    assert Listener.instances == []
    assert all(fake.threads) and fake.loop_sources == [("main run loop",
                                                        "kCFRunLoopCommonModes")]
    ctrl_alt = 0x40000 | 0x80000
    fake.callback(None, fake.kCGEventKeyDown, key_down(0x13, ctrl_alt), None)  # ANSI "2"
    fake.callback(None, fake.kCGEventKeyDown, key_down(0x31, ctrl_alt), None)  # space
    fake.callback(None, fake.kCGEventKeyDown, key_down(0x13, 0x40000), None)  # Ctrl only
    fake.callback(None, fake.kCGEventKeyDown, key_down(0x13, ctrl_alt | 0x100000), None)
    assert fired == ["source:2", "swap"]
    fake.callback(None, fake.kCGEventTapDisabledByTimeout, None, None)
    assert fake.enabled is True  # the system paused the tap: resumed
    hotkeys.stop()
    assert fake.loop_sources == [] and fake.enabled is False and not hotkeys.running


def test_macos_without_input_monitoring_says_where_to_allow_it(quartz: Any) -> None:
    fake = quartz(granted=False)
    hotkeys = global_hotkeys.GlobalHotkeys()
    with pytest.raises(global_hotkeys.GlobalHotkeysUnavailable, match="Input Monitoring"):
        hotkeys.start()
    assert fake.requested and not hotkeys.running and CRASHES == []


def test_macos_refuses_off_the_main_thread(quartz: Any) -> None:
    quartz()
    hotkeys = global_hotkeys.GlobalHotkeys()
    errors: list[BaseException] = []

    def start() -> None:
        try:
            hotkeys.start()
        except global_hotkeys.GlobalHotkeysUnavailable as exc:
            errors.append(exc)

    thread = threading.Thread(target=start)
    thread.start()
    thread.join()
    assert "main thread" in str(errors[0]) and not hotkeys.running


# -- Windows: RegisterHotKey, read by a native event filter -------------------------------


class User32:
    def __init__(self, refuse: set[int] = frozenset()) -> None:  # type: ignore[assignment]
        self.registered: dict[int, tuple[Any, int, int]] = {}
        self.refuse = refuse

    def RegisterHotKey(self, hwnd: Any, hotkey: int, modifiers: int, key: int) -> int:
        if key in self.refuse:
            return 0  # ERROR_HOTKEY_ALREADY_REGISTERED
        self.registered[hotkey] = (hwnd, modifiers, key)
        return 1

    def UnregisterHotKey(self, hwnd: Any, hotkey: int) -> int:
        return 1 if self.registered.pop(hotkey, None) else 0


def windows(monkeypatch: pytest.MonkeyPatch, user32: User32) -> None:
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setattr(ctypes, "windll", types.SimpleNamespace(user32=user32), raising=False)


def post(filter_: Any, message: int, w_param: int) -> tuple[bool, int]:
    from realtime.ui.hotkeys_windows import MSG

    msg = MSG(None, message, w_param, 0)
    result: tuple[bool, int] = filter_.nativeEventFilter(b"windows_generic_MSG",
                                                         ctypes.addressof(msg))
    return result


def test_windows_registers_hotkeys_and_installs_no_keyboard_hook(
        monkeypatch: pytest.MonkeyPatch, pynput: type[Listener], qtbot: QtBot) -> None:
    user32 = User32()
    windows(monkeypatch, user32)
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.setattr(global_hotkeys.importlib.util, "find_spec", lambda name: None)
    assert global_hotkeys.availability() is None  # pynput is not needed on Windows
    hotkeys = global_hotkeys.GlobalHotkeys()
    fired: list[str] = []
    hotkeys.triggered.connect(fired.append)
    hotkeys.start()
    assert Listener.instances == []  # pynput (a low-level hook) is never used
    by_key = {key: (hotkey, hwnd, mods) for hotkey, (hwnd, mods, key) in
              user32.registered.items()}
    assert set(by_key) == {*range(0x31, 0x3A), 0xDD, 0xDB, 0x20}
    assert all(hwnd is None and mods == 0x4003 for _id, hwnd, mods in by_key.values())
    native = hotkeys._listener._filter
    assert post(native, 0x0312, by_key[0x33][0]) == (True, 0)  # WM_HOTKEY, Ctrl+Alt+3
    assert post(native, 0x0312, by_key[0xDD][0]) == (True, 0)  # Ctrl+Alt+]
    assert post(native, 0x0100, by_key[0x33][0]) == (False, 0)  # WM_KEYDOWN: not ours
    assert fired == ["source:3", "next"]
    hotkeys.stop()
    assert user32.registered == {} and not hotkeys.running


def test_windows_when_another_program_holds_every_hotkey(
        monkeypatch: pytest.MonkeyPatch, qtbot: QtBot) -> None:
    windows(monkeypatch, User32(refuse={*range(0x31, 0x3A), 0xDD, 0xDB, 0x20}))
    hotkeys = global_hotkeys.GlobalHotkeys()
    with pytest.raises(global_hotkeys.GlobalHotkeysUnavailable, match="refused every"):
        hotkeys.start()
