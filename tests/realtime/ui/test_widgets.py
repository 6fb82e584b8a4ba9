"""The window's parts on their own: preview, gallery, model dialog, system-wide hotkeys."""

from __future__ import annotations

import sys
import threading
import types
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent, QImage
from pytestqt.qtbot import QtBot

from realtime.types import Detection, Face, Frame, SourceFace, StageTimings, SwapResult
from realtime.ui import global_hotkeys
from realtime.ui.gallery import Gallery
from realtime.ui.model_dialog import ModelDialog
from realtime.ui.preview import PreviewWidget, StageChart


def _result() -> SwapResult:
    original = np.zeros((90, 160, 3), np.uint8)
    original[:, :] = (255, 0, 0)  # blue in BGR
    swapped = np.zeros_like(original)
    swapped[:, :] = (0, 0, 255)  # red
    return SwapResult(Frame(0, 0, original), swapped, (), StageTimings(), True)


@pytest.mark.parametrize(("mode", "left", "right"), [
    ("swapped", (255, 0, 0), (255, 0, 0)),
    ("original", (0, 0, 255), (0, 0, 255)),
    ("side-by-side", (0, 0, 255), (255, 0, 0)),
])
def test_preview_modes_draw_the_right_picture(qtbot: QtBot, mode: str,
                                              left: tuple[int, int, int],
                                              right: tuple[int, int, int]) -> None:
    widget = PreviewWidget()
    qtbot.addWidget(widget)
    widget.resize(640, 180)
    widget.set_mode(mode)
    widget.set_result(_result())
    image = widget.grab().toImage().convertToFormat(QImage.Format.Format_RGB888)
    y = image.height() // 2
    def rgb(x: float) -> tuple[int, int, int]:
        colour = image.pixelColor(int(image.width() * x), y)
        return colour.red(), colour.green(), colour.blue()

    got_left, got_right = rgb(0.3), rgb(0.7)
    assert got_left == left and got_right == right
    with pytest.raises(ValueError, match="preview mode"):
        widget.set_mode("upside-down")


def _result_with_face(track_id: int) -> SwapResult:
    original = np.full((180, 320, 3), 90, np.uint8)
    swapped = np.full_like(original, 140)
    landmarks = np.array([[140, 80], [180, 80], [160, 100], [145, 120], [175, 120]],
                         np.float32)
    face = Face(track_id, Detection(np.array([120, 50, 200, 140], np.float32), 0.9,
                                    landmarks))
    return SwapResult(Frame(0, 0, original), swapped, (face,), StageTimings(), True)


def _grab(widget: PreviewWidget) -> np.ndarray:
    image = widget.grab().toImage().convertToFormat(QImage.Format.Format_RGB888)
    data = np.frombuffer(image.constBits(), np.uint8, image.sizeInBytes())
    return data.reshape(image.height(), image.bytesPerLine())[:, :image.width() * 3] \
        .reshape(image.height(), image.width(), 3).copy()


@pytest.mark.parametrize("mode", ["swapped", "original", "side-by-side"])
def test_face_badge_is_drawn_on_the_preview_only(qtbot: QtBot, mode: str) -> None:
    widget = PreviewWidget()
    qtbot.addWidget(widget)
    widget.resize(640, 360)
    widget.set_mode(mode)
    result = _result_with_face(7)
    frames_before = (result.frame.image.tobytes(), result.image.tobytes())
    widget.set_result(result)
    plain = _grab(widget)
    widget.set_face_badges({7: "ID 63 · Alice"})
    badged = _grab(widget)
    changed = np.argwhere((plain != badged).any(axis=2))
    # the frames the outputs get are untouched: the badge exists only in the widget
    assert (result.frame.image.tobytes(), result.image.tobytes()) == frames_before
    if mode == "original":
        assert changed.size == 0  # the camera's own picture carries no meter
        return
    assert changed.size > 0
    # drawn just above the face's top-left corner, in the swapped picture
    rects = dict(widget.face_rects())
    rect = [r for tid, r in widget.face_rects() if tid == 7][-1]
    assert rects and rect.left() - 2 <= changed[:, 1].min() <= rect.left() + 2
    assert changed[:, 0].max() <= rect.top() + 2
    widget.set_face_badges({8: "ID 10"})  # another track: nothing over this face
    assert (_grab(widget) == plain).all()


def test_clicking_a_face_on_the_preview_names_its_track(qtbot: QtBot) -> None:
    widget = PreviewWidget()
    qtbot.addWidget(widget)
    widget.resize(640, 360)
    widget.set_mode("side-by-side")
    widget.set_result(_result_with_face(7))
    rects = [r for _tid, r in widget.face_rects()]
    assert len(rects) == 2  # the face on both sides
    for rect in rects:
        with qtbot.waitSignal(widget.face_clicked) as signal:
            qtbot.mouseClick(widget, Qt.MouseButton.LeftButton,
                             pos=rect.center().toPoint())
        assert signal.args[0] == 7
    assert widget.selected_face == 7
    with qtbot.assertNotEmitted(widget.face_clicked):
        qtbot.mouseClick(widget, Qt.MouseButton.LeftButton, pos=QPointF(5, 5).toPoint())
    with qtbot.assertNotEmitted(widget.face_clicked):
        qtbot.mouseClick(widget, Qt.MouseButton.RightButton, pos=rects[0].center().toPoint())


def test_stage_chart_keeps_latest(qtbot: QtBot) -> None:
    chart = StageChart()
    qtbot.addWidget(chart)
    chart.set_stages({"detect": 4.0, "swap": 20.0})
    chart.grab()
    assert chart.stages == {"detect": 4.0, "swap": 20.0}


def test_gallery_numbers_ready_tiles_and_accepts_drops(qtbot: QtBot, tmp_path: Path) -> None:
    gallery = Gallery()
    qtbot.addWidget(gallery)
    requested: list[tuple[list[Path], str]] = []
    gallery.add_requested.connect(lambda paths, name: requested.append((paths, name)))
    a = gallery.add_entry([tmp_path / "a.png"])
    b = gallery.add_entry([tmp_path / "b.png"])
    c = gallery.add_entry([tmp_path / "c.png"], "Cee")
    assert gallery.tiles[a.key].busy.isVisibleTo(gallery.tiles[a.key])
    face = SourceFace("Ann", (str(tmp_path / "a.png"),), thumbnail=np.zeros((8, 8, 3), np.uint8))
    gallery.set_ready(a.key, face)
    gallery.set_failed(b.key, "No face found in this photo")
    gallery.set_ready(c.key, SourceFace("Cee", (str(tmp_path / "c.png"),)))
    gallery.set_active(1)
    assert gallery.tiles[a.key].title.text() == "1 · Ann"
    assert gallery.tiles[b.key].title.text() == "b"
    assert gallery.tiles[c.key].title.text() == "2 · Cee"
    assert "ffb300" in gallery.tiles[c.key].styleSheet()  # the active one is highlighted
    selected: list[int] = []
    gallery.select_requested.connect(selected.append)
    qtbot.mouseClick(gallery.tiles[c.key], Qt.MouseButton.LeftButton)
    assert selected == [1]

    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(tmp_path / "d.jpg"))])
    drop = QDropEvent(QPointF(5, 5), Qt.DropAction.CopyAction, mime,
                      Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    gallery.dropEvent(drop)
    assert requested == [([tmp_path / "d.jpg"], "")]
    gallery.remove_entry(b.key)
    assert [e.key for e in gallery.entries] == [a.key, c.key]


def test_model_dialog_downloads_with_progress_and_cancel(qtbot: QtBot, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    installed: set[str] = set()
    monkeypatch.setattr("realtime.ui.controller.model_state",
                        lambda models_dir, name: "installed" if name in installed else "missing")
    release = threading.Event()
    calls: list[str] = []

    def download(name: str, models_dir: Path, progress, cancel: threading.Event) -> Path:  # type: ignore[no-untyped-def]
        calls.append(name)
        progress(50, 100)
        if name == "arcface-w600k" and len(calls) == 2:
            release.wait(5)
            if cancel.is_set():
                raise RuntimeError("cancelled")
        installed.add(name)
        return models_dir / name

    dialog = ModelDialog(tmp_path, ["inswapper-128", "arcface-w600k"], download=download,
                         import_model=lambda src, d: ["inswapper-128"])
    qtbot.addWidget(dialog)
    assert "inswapper" in dialog.rows["inswapper-128"].text()
    dialog.start_download()
    assert not dialog.busy and "licence" in dialog.status.text()  # must accept first
    dialog.accept_licence.setChecked(True)
    dialog.start_download()
    qtbot.waitUntil(lambda: calls == ["inswapper-128", "arcface-w600k"], timeout=3000)
    assert dialog.cancel_button.isEnabled()
    dialog.cancel()
    release.set()
    qtbot.waitUntil(lambda: not dialog.busy, timeout=3000)
    assert "cancelled" in dialog.status.text() and installed == {"inswapper-128"}
    release.clear()
    release.set()
    with qtbot.waitSignal(dialog.finished, timeout=3000):
        dialog.start_download()  # resumes: only the missing one
    assert calls[-1] == "arcface-w600k" and installed == {"inswapper-128", "arcface-w600k"}


def test_model_dialog_import_off_the_gui_thread(qtbot: QtBot, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("realtime.ui.controller.model_state", lambda d, n: "missing")
    threads: list[str] = []

    def fake_import(src: Path, models_dir: Path) -> list[str]:
        threads.append(threading.current_thread().name)
        raise ValueError(f"{src.name}: not a known model file")

    dialog = ModelDialog(tmp_path, ["inswapper-128"], import_model=fake_import)
    qtbot.addWidget(dialog)
    dialog.import_file(tmp_path / "weird.bin")
    qtbot.waitUntil(lambda: not dialog.busy, timeout=3000)
    assert threads and threads[0] != threading.main_thread().name
    assert "not a known model file" in dialog.status.text()


def test_global_hotkeys_explain_when_pynput_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(global_hotkeys.importlib.util, "find_spec", lambda name: None)
    reason = global_hotkeys.availability()
    assert reason is not None and "pip install swapcam[hotkeys]" in reason
    with pytest.raises(global_hotkeys.GlobalHotkeysUnavailable, match="pynput"):
        global_hotkeys.GlobalHotkeys().start()


def test_global_hotkeys_wayland_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(global_hotkeys.importlib.util, "find_spec", lambda name: object())
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("XDG_SESSION_TYPE", "wayland")
    reason = global_hotkeys.availability()
    assert reason is not None and "Wayland" in reason


def test_global_hotkeys_reach_the_gui_thread(qtbot: QtBot,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    class FakeListener:
        def __init__(self, mapping: dict[str, object]) -> None:
            self.mapping = mapping
            self.thread = threading.Thread(target=self._press)
            self.stopped = False

        def _press(self) -> None:  # pynput calls back on its own thread
            self.mapping["<ctrl>+<alt>+3"]()  # type: ignore[operator]

        def start(self) -> None:
            self.thread.start()

        def stop(self) -> None:
            self.stopped = True

        def join(self, timeout: float) -> None:
            self.thread.join(timeout)

    keyboard = types.ModuleType("pynput.keyboard")
    keyboard.GlobalHotKeys = FakeListener  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pynput", types.ModuleType("pynput"))
    monkeypatch.setitem(sys.modules, "pynput.keyboard", keyboard)
    monkeypatch.setattr(global_hotkeys, "availability", lambda: None)
    hotkeys = global_hotkeys.GlobalHotkeys()
    received: list[tuple[str, bool]] = []
    hotkeys.triggered.connect(lambda action: received.append(
        (action, threading.current_thread() is threading.main_thread())))
    hotkeys.start()
    qtbot.waitUntil(lambda: bool(received), timeout=3000)
    assert received == [("source:3", True)]
    listener = hotkeys._listener
    hotkeys.stop()
    assert listener.stopped and not hotkeys.running


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="None is immortal from Python 3.12")
def test_qt_binding_keeps_none_alive(qtbot: QtBot) -> None:
    """PySide6 6.12.0 on Python 3.11 returns None from void methods without a reference:
    every call lowers None's count, and the app aborts ("deallocating None") within
    seconds of painting. pyproject must keep such a build out."""
    from PySide6.QtWidgets import QLabel

    label = QLabel()
    qtbot.addWidget(label)
    before = sys.getrefcount(None)
    for _ in range(2000):
        label.setEnabled(True)
    assert sys.getrefcount(None) >= before - 100, "this PySide6 build leaks None references"


def test_a_new_banner_is_a_coloured_strip_with_its_buttons_before_dismiss(qtbot: QtBot) -> None:
    from PySide6.QtWidgets import QPushButton

    from realtime.ui.banners import Banner

    strip = Banner("#123456")
    qtbot.addWidget(strip)
    assert strip.isHidden()
    retry = strip.add_button("Retry")
    assert {b.text() for b in strip.findChildren(QPushButton)} == {"Retry", "Dismiss"}
    layout = strip.layout()
    assert layout is not None
    order = [layout.itemAt(i).widget() for i in range(layout.count())]
    assert order == [strip.label, retry, strip.dismiss]
    strip.label.setText("Preparing the enhancer…")
    strip.show()
    qtbot.mouseClick(strip.dismiss, Qt.MouseButton.LeftButton)
    assert strip.isHidden()
