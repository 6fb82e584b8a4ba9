"""One identity per person in the window: click a face (or C then A), pick an identity.

The window, its controller and the pipeline are real: t1.jpg (six people) played as the
camera → RetinaFace → tracker → processor; the gallery is a real ``SourceBank`` of two
package portraits. The recogniser is a pixel one (grey aligned crop, normalised), since
random-weight ArcFace files cannot tell people apart, and the swapper returns each crop
unchanged while recording which identity each face got.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QApplication, QMenu
from pytestqt.qtbot import QtBot

from realtime.config import Settings
from realtime.faces.align import warp_face
from realtime.faces.mapping import ACTIVE_SOURCE, LEAVE_ALONE
from realtime.settings_store import SettingsStore
from realtime.types import AlignedFace
from realtime.ui import controller as ctl
from realtime.ui.main_window import MainWindow

FAMILY = "inswapper-128"


def _signature(crop: np.ndarray) -> np.ndarray:
    # 16×32 = 512 values: the size of an identity vector
    grey = cv2.resize(cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY), (16, 32),
                      interpolation=cv2.INTER_AREA).astype(np.float32).ravel()
    grey -= grey.mean()
    return grey / (np.linalg.norm(grey) + 1e-6)


class PixelEncoder:
    family = FAMILY
    model_key = "pixel-signature-24"  # the bank's vector cache keys on it

    def identify(self, image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        return _signature(warp_face(image, landmarks, FAMILY).crop)

    def embed(self, image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        return self.identify(image, landmarks)


class RecordingSwapper:
    """Returns each crop unchanged; records (identity vector, crop signature) per face."""

    family = FAMILY
    crop_size = 128
    backend = "recording"

    def __init__(self) -> None:
        self.calls: list[tuple[np.ndarray, np.ndarray]] = []

    def swap(self, crops: Sequence[AlignedFace], identity: np.ndarray) -> list[np.ndarray]:
        # one (512,) vector per face: the swappers take (N, 512) (identity strength)
        rows = np.broadcast_to(np.asarray(identity).reshape(-1, 512), (len(crops), 512))
        for face, row in zip(crops, rows, strict=True):
            self.calls.append((row.copy(), _signature(face.crop)))
        return [face.crop.copy() for face in crops]


class Build:
    """The controller's build hook: the real pipeline on the parts above."""

    def __init__(self, camera: Path, models_dir: Path) -> None:
        self.camera, self.models_dir = camera, models_dir
        self.swapper = RecordingSwapper()
        self.runtimes: list[ctl.Runtime] = []

    def __call__(self, settings: Settings, models_dir: Path, cache_dir: Path,
                 sink: ctl.Sink) -> ctl.Runtime:
        from realtime.faces.detect import make_detector
        from realtime.faces.sources import SourceBank
        from realtime.frame.process import FrameProcessor
        from realtime.io.capture import open_source
        from realtime.pipeline import Pipeline

        def detector() -> object:
            return make_detector("retinaface", self.models_dir, engine="onnxruntime-cpu",
                                 detect_width=960)

        encoder = PixelEncoder()
        bank = SourceBank(lambda _family: encoder, detector(), cache_dir,  # type: ignore[arg-type,return-value]
                          families=(FAMILY,))
        processor = FrameProcessor(self.swapper, encoder, settings)  # type: ignore[arg-type]
        pipeline = Pipeline(open_source(str(self.camera), fps=8.0), processor,
                            detector(), bank, [sink], settings)  # type: ignore[arg-type]
        runtime = ctl.Runtime(pipeline, bank, "recording", "t1.jpg")
        self.runtimes.append(runtime)
        return runtime


@pytest.fixture
def build(t1_path: Path, tmp_path: Path) -> Build:
    return Build(t1_path, tmp_path / "models")


@pytest.fixture
def window(qtbot: QtBot, build: Build, tmp_path: Path,
           face_photos: dict[str, Path]) -> Iterator[MainWindow]:
    settings = Settings(camera=str(build.camera), model=FAMILY, swap_mode="sync",
                        # pixel signatures of different faces are far closer than
                        # ArcFace's: only the same face may re-identify as a person
                        match_threshold=0.95, max_faces=6, detect_every=4,
                        detect_width=960, color_match=False,
                        quality_meter=False, record_path=str(tmp_path / "rec"))
    controller = ctl.Controller(tmp_path / "models", tmp_path / "cache", build=build,
                                prepare=None)
    win = MainWindow(SettingsStore(tmp_path / "config" / "settings.toml"), settings,
                     controller)
    qtbot.addWidget(win)
    win.resize(1280, 800)
    win.show()
    win.start()
    qtbot.waitUntil(lambda: controller.swapping, timeout=30000)
    for name in ("astronaut", "grace_hopper"):
        win.sources.add_source([face_photos[name]])
    qtbot.waitUntil(lambda: len(win.gallery.ready_entries()) == 2, timeout=30000)
    # the pipeline's own frames, with every face of t1 tracked
    qtbot.waitUntil(lambda: win.preview.result is not None
                    and len(win.preview.result.faces) == 6
                    and win.preview.result.swapped, timeout=30000)
    yield win
    win.close()


def _pipeline(build: Build):  # type: ignore[no-untyped-def]
    return build.runtimes[-1].pipeline


def _open_menu(qtbot: QtBot, window: MainWindow) -> QMenu:
    qtbot.waitUntil(lambda: window.faces.menu is not None and window.faces.menu.isVisible(),
                    timeout=3000)
    assert window.faces.menu is not None
    return window.faces.menu


def _click_action(qtbot: QtBot, menu: QMenu, choice: str) -> None:
    action = next(a for a in menu.actions() if a.data() == choice)
    qtbot.mouseClick(menu, Qt.MouseButton.LeftButton,
                     pos=menu.actionGeometry(action).center())


class People:
    """Tells which of t1's people a swapped crop shows (nearest pixel signature)."""

    def __init__(self, image: np.ndarray, faces: Sequence[object]) -> None:
        self.ids = [f.track_id for f in faces]  # type: ignore[attr-defined]
        self.refs = np.stack([_signature(warp_face(image, f.landmarks, FAMILY).crop)  # type: ignore[attr-defined]
                              for f in faces])

    def who(self, signature: np.ndarray) -> int:
        return self.ids[int(np.argmax(self.refs @ signature))]


def _wait_worn(qtbot: QtBot, build: Build, people: People, track_id: int,
               vector: np.ndarray) -> None:
    """Wait until the swapper got ``vector`` for the person on ``track_id``."""
    def worn() -> bool:
        return any(people.who(sig) == track_id and float(ident @ vector) > 0.999
                   for ident, sig in build.swapper.calls[-30:])
    qtbot.waitUntil(worn, timeout=30000)


def test_clicking_a_face_assigns_it_a_gallery_identity(
    qtbot: QtBot, window: MainWindow, build: Build, t1_bgr: np.ndarray,
) -> None:  # fmt: skip
    result = window.preview.result
    assert result is not None
    rects = dict(window.preview.face_rects())  # swapped view: one rect per face
    assert len(rects) == 6
    face = sorted(result.faces, key=lambda f: float(f.box[0]))[1]  # second from the left
    qtbot.mouseClick(window.preview, Qt.MouseButton.LeftButton,
                     pos=rects[face.track_id].center().toPoint())
    menu = _open_menu(qtbot, window)
    choices = [a.data() for a in menu.actions() if a.data()]
    assert choices == ["astronaut", "grace_hopper", ACTIVE_SOURCE, LEAVE_ALONE]
    _click_action(qtbot, menu, "grace_hopper")

    pipeline = _pipeline(build)
    assert pipeline.face_assignments()[face.track_id] == "grace_hopper"
    # the badge on the preview says so, and the swapper gets that identity for that face
    assert window.preview.face_badges[face.track_id] == "grace_hopper"
    grace = next(s for s in window.controller.sources() if s.name == "grace_hopper")
    _wait_worn(qtbot, build, People(t1_bgr, result.faces), face.track_id,
               grace.embeddings[FAMILY])
    # a click on empty picture (above the faces) opens nothing
    window.faces.menu = None
    qtbot.mouseClick(window.preview, Qt.MouseButton.LeftButton, pos=QPoint(5, 5))
    QApplication.processEvents()
    assert window.faces.menu is None


def test_hotkeys_cycle_faces_and_leave_one_alone(
    qtbot: QtBot, window: MainWindow, build: Build, t1_bgr: np.ndarray,
) -> None:  # fmt: skip
    result = window.preview.result
    assert result is not None
    left_to_right = [f.track_id for f in sorted(result.faces, key=lambda f: float(f.box[0]))]
    window.activateWindow()
    qtbot.keyClick(window, Qt.Key.Key_C)
    assert window.preview.selected_face == left_to_right[0]
    qtbot.keyClick(window, Qt.Key.Key_C)
    qtbot.keyClick(window, Qt.Key.Key_C)
    assert window.preview.selected_face == left_to_right[2]
    qtbot.keyClick(window, Qt.Key.Key_A)
    menu = _open_menu(qtbot, window)
    _click_action(qtbot, menu, LEAVE_ALONE)
    pipeline = _pipeline(build)
    assert pipeline.face_assignments() == {left_to_right[2]: LEAVE_ALONE}
    assert window.preview.face_badges[left_to_right[2]] == "left alone"

    # that person is no longer swapped: after a fresh batch, no call carries their face
    people = People(t1_bgr, result.faces)
    qtbot.wait(600)  # frames planned before the change have gone through
    build.swapper.calls.clear()
    qtbot.waitUntil(lambda: len(build.swapper.calls) >= 15, timeout=30000)
    seen = {people.who(s) for _, s in build.swapper.calls}
    assert seen == set(left_to_right) - {left_to_right[2]}

    # the menu for an assigned face offers to forget it; forgetting swaps it again
    window.faces.show_face_menu(left_to_right[2], QPoint(100, 100))
    menu = _open_menu(qtbot, window)
    forget = next(a for a in menu.actions() if a.text().startswith("&Forget"))
    qtbot.mouseClick(menu, Qt.MouseButton.LeftButton, pos=menu.actionGeometry(forget).center())
    assert pipeline.face_assignments() == {}
    active = window.controller.sources()[window.controller.active_source]
    _wait_worn(qtbot, build, people, left_to_right[2], active.embeddings[FAMILY])


def test_the_unassigned_faces_setting_reaches_the_pipeline(
    qtbot: QtBot, window: MainWindow, build: Build, t1_bgr: np.ndarray,
) -> None:  # fmt: skip
    combo = window.controls.unassigned
    assert combo.currentData() == "source"
    result = window.preview.result
    assert result is not None
    first = min(result.faces, key=lambda f: float(f.box[0]))
    window.faces.assign_face(first.track_id, "astronaut")
    combo.setCurrentIndex(combo.findData("leave"))
    combo.activated.emit(combo.currentIndex())  # what a user's pick emits
    pipeline = _pipeline(build)
    assert window.settings.unassigned_faces == "leave"
    assert pipeline.settings.unassigned_faces == "leave"
    assert pipeline.face_map.unassigned == "leave"
    # now only the assigned person is swapped
    people = People(t1_bgr, result.faces)
    qtbot.wait(600)  # frames planned before the change have gone through
    build.swapper.calls.clear()
    qtbot.waitUntil(lambda: len(build.swapper.calls) >= 3, timeout=30000)
    assert {people.who(s) for _, s in build.swapper.calls} == {first.track_id}
    # saved with the other settings
    assert SettingsStore(window.prefs.store.path).load().settings.unassigned_faces == "leave"


def test_an_assigned_face_keeps_its_place_under_faces_at_most(
    qtbot: QtBot, window: MainWindow, build: Build, t1_bgr: np.ndarray,
) -> None:  # fmt: skip
    result = window.preview.result
    assert result is not None
    people = People(t1_bgr, result.faces)
    smallest = min(result.faces, key=lambda f: f.detection.area)
    window.models.apply_changes({"max_faces": 1})
    qtbot.wait(600)
    build.swapper.calls.clear()
    qtbot.waitUntil(lambda: len(build.swapper.calls) >= 3, timeout=30000)
    before = {people.who(s) for _, s in build.swapper.calls}
    # one of the largest (two of t1's faces are within 1 % of each other)
    assert len(before) == 1 and smallest.track_id not in before

    # given an identity, the smallest face is the one swapped: people first, then size
    window.faces.assign_face(smallest.track_id, "grace_hopper")
    grace = next(s for s in window.controller.sources() if s.name == "grace_hopper")
    _wait_worn(qtbot, build, people, smallest.track_id, grace.embeddings[FAMILY])
    qtbot.wait(600)
    build.swapper.calls.clear()
    qtbot.waitUntil(lambda: len(build.swapper.calls) >= 3, timeout=30000)
    assert {people.who(s) for _, s in build.swapper.calls} == {smallest.track_id}
