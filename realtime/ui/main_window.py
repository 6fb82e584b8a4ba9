"""The main window: preview, stats, gallery, controls, hotkeys, errors, persistence.

Threading: the GUI thread never waits for a model. Building the pipeline and
computing source vectors run in submission order on one ``SerialWorker``; the
preview is a timer that polls the pipeline's preview slot (version check) and the
stats/errors are polled twice a second. Every error lands in the banner at the top
and the window stays usable: change the camera or the model and it rebuilds.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QObject, QPoint, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QColor, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QButtonGroup,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMenu,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QStyle,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from realtime.config import SettingError, Settings
from realtime.settings_store import SettingsSaveError, SettingsStore
from realtime.types import SourceFace
from realtime.ui import controller as ctl
from realtime.ui.controls import ControlsPanel
from realtime.ui.gallery import Entry, Gallery
from realtime.ui.global_hotkeys import INSTALL_HINT, GlobalHotkeys, availability
from realtime.ui.help_overlay import HelpOverlay
from realtime.ui.hotkeys import install_hotkeys
from realtime.ui.model_dialog import ModelDialog
from realtime.ui.preview import PreviewWidget, StageChart
from realtime.ui.workers import SerialWorker

log = logging.getLogger(__name__)

PREVIEW_INTERVAL_MS = 15  # ~60 Hz polling; a redraw happens only on a new version
STATS_INTERVAL_MS = 500
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def default_record_folder() -> Path:
    """The user's Videos folder (platformdirs), not the folder swapcam was started in."""
    import platformdirs

    return Path(platformdirs.user_videos_dir())


class ErrorBanner(QFrame):
    """A red strip with the newest message; earlier ones in the tooltip."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.messages: list[str] = []
        self.setStyleSheet("ErrorBanner { background: #5c1d1d; border-radius: 4px; } "
                           "QLabel { color: #fff; }")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 6, 6)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.action = QPushButton("Restart")
        self.action.setVisible(False)
        dismiss = QPushButton("Dismiss")
        dismiss.clicked.connect(self.clear)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.action)
        layout.addWidget(dismiss)
        self.hide()

    def show_message(self, message: str, *, restart: bool = False) -> None:
        self.messages.append(message)
        shown = message if len(message) < 600 else message[:600] + "…"
        more = f"  ({len(self.messages)} messages)" if len(self.messages) > 1 else ""
        self.label.setText(shown + more)
        self.setToolTip("\n\n".join(self.messages[-10:]))
        self.action.setVisible(restart)
        self.show()

    def clear(self) -> None:
        self.messages.clear()
        self.hide()


class ModelsBanner(QFrame):
    """An amber strip saying which models are missing, with a button that opens the
    Models dialog. It never opens the dialog by itself (the window stays explorable)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setStyleSheet("ModelsBanner { background: #5a4300; border-radius: 4px; } "
                           "QLabel { color: #fff; }")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 6, 6)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.button = QPushButton("Get models…")
        dismiss = QPushButton("Dismiss")
        dismiss.clicked.connect(self.hide)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.button)
        layout.addWidget(dismiss)
        self.names: tuple[str, ...] = ()
        self.hide()

    def show_missing(self, model: str, names: tuple[str, ...]) -> None:
        self.names = names
        self.label.setText(f"To swap faces with {model}, swapcam needs {', '.join(names)}. "
                           "The camera works meanwhile.")
        self.show()


class StageSignal(QObject):
    """Carries ``on_stage`` calls from the engine worker to the GUI thread (queued)."""

    stage = Signal(str, int, int, str)  # model, done, total, what


class MainWindow(QMainWindow):
    def __init__(
        self,
        store: SettingsStore,
        settings: Settings,
        controller: ctl.Controller,
        *,
        startup_warning: str | None = None,
    ) -> None:
        super().__init__()
        self.setWindowTitle("swapcam")
        self.setAcceptDrops(True)
        self.store = store
        self.settings = settings
        self.controller = controller
        self.worker = SerialWorker("engine", self)
        self.probe_worker = SerialWorker("probe", self)
        self.outputs = SerialWorker("outputs", self)  # virtual camera and recorder
        self.vcam_wanted = False
        self.record_wanted = False
        self._vcam_request = 0
        self._record_request = 0
        self.global_hotkeys = GlobalHotkeys(self)
        self.global_hotkeys.triggered.connect(self.on_action)
        self.model_dialog: ModelDialog | None = None
        self._generation = 0
        self._entry_generation: dict[int, int] = {}
        self._preview_version = -1
        self._last_view = settings.preview_mode if settings.preview_mode != "original" \
            else "swapped"
        self._reported_reconnect = False
        self._closing = False
        self.backend = ""
        self.record_on_start: Path | None = None
        self._build_ui()
        self.shortcuts = install_hotkeys(self, self.on_action)
        self.preview_timer = QTimer(self)
        self.preview_timer.setInterval(PREVIEW_INTERVAL_MS)
        self.preview_timer.timeout.connect(self._tick_preview)
        self.stats_timer = QTimer(self)
        self.stats_timer.setInterval(STATS_INTERVAL_MS)
        self.stats_timer.timeout.connect(self._tick_stats)
        self._restore_geometry()
        self._fill_controls()
        self._restore_sources()
        self._update_badges()
        if startup_warning:
            self.banner.show_message(startup_warning)

    # -- layout -------------------------------------------------------------------------

    def _build_ui(self) -> None:
        central = QWidget()
        outer = QHBoxLayout(central)
        outer.setContentsMargins(8, 8, 8, 8)
        left = QVBoxLayout()
        self.banner = ErrorBanner()
        self.banner.action.clicked.connect(self.rebuild)
        left.addWidget(self.banner)
        self.models_banner = ModelsBanner()
        self.models_banner.button.clicked.connect(
            lambda: self.show_model_dialog(self.models_banner.names or None))
        left.addWidget(self.models_banner)
        self.preview = PreviewWidget()
        self.preview.set_mode(self.settings.preview_mode
                              if self.settings.preview_mode in ("swapped", "original",
                                                                "side-by-side") else "swapped")
        self.preview.face_clicked.connect(self.show_face_menu)
        self.face_menu: QMenu | None = None  # the open "who is this face" menu
        left.addWidget(self.preview, 1)
        self.info_row = QWidget()
        row = QHBoxLayout(self.info_row)
        row.setContentsMargins(0, 0, 0, 0)
        left_info = QVBoxLayout()
        view_row = QHBoxLayout()
        view_row.setSpacing(0)
        self.view_buttons = QButtonGroup(self)
        for mode, label in (("swapped", "Swapped"), ("original", "Original (O)"),
                            ("side-by-side", "Side by side")):
            button = QToolButton()
            button.setText(label)
            button.setCheckable(True)
            button.setChecked(mode == self.preview.mode)
            button.setProperty("mode", mode)
            button.clicked.connect(lambda _c=False, m=mode: self.set_preview_mode(m))
            self.view_buttons.addButton(button)
            view_row.addWidget(button)
        view_row.addStretch(1)
        self.info_row.setStyleSheet(
            "QToolButton { padding: 3px 10px; } "
            "QToolButton:checked { background: #ffb300; color: #151515; font-weight: bold; }")
        left_info.addLayout(view_row)
        self.stats_label = QLabel("—")
        self.stats_label.setTextFormat(Qt.TextFormat.RichText)
        self.stats_label.setMinimumWidth(300)
        left_info.addWidget(self.stats_label)
        row.addLayout(left_info, 2)
        self.chart = StageChart()
        self.chart.setMaximumWidth(360)
        row.addWidget(self.chart, 1)
        left.addWidget(self.info_row)
        self.gallery = Gallery()
        self.gallery.add_requested.connect(self.add_source)
        self.gallery.remove_requested.connect(self.remove_source)
        self.gallery.rename_requested.connect(self.rename_source)
        self.gallery.select_requested.connect(self.select_source)
        self.gallery.folder_requested.connect(lambda folder: self.use_source_folder(Path(folder)))
        left.addWidget(self.gallery)
        outer.addLayout(left, 1)
        self.controls = ControlsPanel()
        self.controls.changed.connect(self.apply_changes)
        self.controls.vcam_toggled.connect(self.set_virtual_camera)
        self.controls.record_toggled.connect(self.set_recording)
        self.controls.get_models_requested.connect(lambda: self.show_model_dialog())
        self.controls.global_hotkeys_toggled.connect(self.set_global_hotkeys)
        self.side = QScrollArea()
        self.side.setWidget(self.controls)
        self.side.setWidgetResizable(True)
        scrollbar = self.style().pixelMetric(QStyle.PixelMetric.PM_ScrollBarExtent)
        self.side.setFixedWidth(max(350, self.controls.minimumSizeHint().width()) + scrollbar + 4)
        self.side.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        outer.addWidget(self.side)
        self.setCentralWidget(central)
        self.help = HelpOverlay(central)
        self.status_model = QLabel()
        self.conversion = QProgressBar()
        self.conversion.setMaximumWidth(260)
        self.conversion.setFormat("%p%")
        self.conversion.hide()
        self.statusBar().addPermanentWidget(self.conversion)
        self.statusBar().addPermanentWidget(self.status_model)
        self.stage_signal = StageSignal(self)
        self.stage_signal.stage.connect(self._conversion_stage)
        self.controller.on_stage = self.stage_signal.stage.emit
        self.statusBar().showMessage("Press F1 or ? for hotkeys", 8000)

    def _fill_controls(self) -> None:
        self.controls.set_settings(self.settings)
        self.controls.set_models([self.settings.model], self.settings.model)
        self.controls.set_engines({}, self.settings.engine)
        self.controls.set_recording(False, f"Saves to {self._record_folder()}")
        self.controls.set_vcam_state(False, "off")
        self._refresh_global_hotkeys_note()
        self.probe_worker.submit("probe models and engines", self._probe, self._probed,
                                 lambda exc, _t: log.warning("probe failed: %s", exc))

    def _probe(self) -> tuple[list[str], dict[str, str | None]]:
        return ctl.installed_swappers(self.controller.models_dir), ctl.engine_status()

    def _probed(self, result: tuple[list[str], dict[str, str | None]]) -> None:
        installed, engines = result
        self.controls.set_models(installed, self.settings.model)
        self.controls.set_engines(engines, self.settings.engine, self.backend)

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Show the camera at once, build the pipeline in the background, start the
        timers."""
        self.preview_timer.start()
        self.stats_timer.start()
        self._show_camera()
        self.rebuild()

    def _show_camera(self) -> None:
        """The camera alone (no models) until the pipeline runs."""
        settings = self.settings
        self.worker.submit("show the camera", lambda: self.controller.show_camera(settings),
                           None, lambda exc, _t: self.banner.show_message(
                               f"Camera: {_readable(exc)}"))

    def next_step(self) -> str:
        """What the preview tells the user to do next ('' when it is swapping)."""
        if self.models_banner.isVisible() or not self.controller.swapping:
            if self.models_banner.names:
                return "Camera only: get the models to swap faces (Get models… above)"
            return f"Camera only while {self.settings.model} loads…"
        if not any(e.state == "ready" for e in self.gallery.entries):
            return "Add a photo of the face to wear: drop it here or use + below"
        return ""

    def _conversion_stage(self, model: str, done: int, total: int, what: str) -> None:
        self.conversion.setVisible(done < total)
        self.conversion.setRange(0, max(total, 1))
        self.conversion.setValue(done)
        self.conversion.setFormat(f"converting {model}: {what} %p%")
        self.statusBar().showMessage(f"Converting {model} to ONNX (once): {what}")

    def rebuild(self) -> None:
        """A new pipeline from the current settings, then every source re-added."""
        self._generation += 1
        generation = self._generation
        self.banner.action.setVisible(False)
        # the camera keeps showing (unswapped) while the models load or convert
        if self.preview.result is None:
            self.preview.set_message(f"Loading {self.settings.model}…")
        self.statusBar().showMessage(f"Loading {self.settings.model} on {self.settings.engine}…")
        settings = self.settings
        self.controller.set_active_hint(settings.active_source)
        self.worker.submit(
            "build pipeline", lambda: self.controller.build(settings),
            lambda runtime: self._built(generation, runtime),
            lambda exc, trace: self._build_failed(generation, exc, trace))
        for entry in self.gallery.entries:
            if entry.state != "failed":
                self._submit_add(entry)

    def _built(self, generation: int, runtime: ctl.Runtime) -> None:
        if generation != self._generation:
            return
        self.backend = runtime.backend
        self.models_banner.names = ()
        self.models_banner.hide()
        self.conversion.hide()
        if self.preview.result is None:
            self.preview.set_message("Waiting for the first frame…")
        self.status_model.setText(f"{self.settings.model} · {runtime.backend}")
        self.statusBar().showMessage(f"Running: {runtime.input_description}", 5000)
        self.controls.set_engine_in_use(runtime.backend)
        if self.settings.virtual_cam and not self.vcam_wanted:
            self.set_virtual_camera(True)


    def _build_failed(self, generation: int, exc: BaseException, trace: str) -> None:
        if generation != self._generation:
            return
        log.debug("build failed:\n%s", trace)
        self.conversion.hide()
        if isinstance(exc, ctl.ModelsMissing):
            # a banner, not the dialog: a user who closed the dialog is not asked again
            self.statusBar().showMessage("Waiting for models", 5000)
            self.models_banner.show_missing(exc.model, exc.names)
            if self.preview.result is None:
                self.preview.set_message(f"{exc}\nGet models… (above) downloads or "
                                         "imports them.")
            self._show_camera()
            return
        self._show_camera()
        self.statusBar().showMessage("Not running", 5000)
        self.preview.set_message("Not running: " + _first_line(exc))
        self.banner.show_message(f"Could not start: {_readable(exc)}", restart=True)
        self.status_model.setText(f"{self.settings.model} · not running")

    def closeEvent(self, event: QCloseEvent) -> None:
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Save, then stop everything this window started (idempotent)."""
        if self._closing:
            return
        self._closing = True
        self.preview_timer.stop()
        self.stats_timer.stop()
        self._save(geometry=True)
        if self.model_dialog is not None:
            self.model_dialog.reject()
        self.global_hotkeys.stop()
        self.probe_worker.stop()
        self.outputs.stop()
        self.worker.stop()
        self.controller.shutdown()

    # -- timers ---------------------------------------------------------------------------

    def _tick_preview(self) -> None:
        version, result = self.controller.preview()
        if version != self._preview_version and result is not None:
            self._preview_version = version
            self.preview.set_result(result)
            if self.record_on_start is not None:  # `live --record`: the frame size is known
                path, self.record_on_start = self.record_on_start, None
                self.set_recording(True, path)

    def _tick_stats(self) -> None:
        self.preview.set_hint(self.next_step())
        for message in self.controller.take_errors():
            restart = not self.controller.running or "thread failed" in message
            self.banner.show_message(message, restart=restart)
            if "virtual camera" in message:
                self.vcam_wanted = False
                self.controls.set_vcam_state(False, message, error=True)
            if "recorder" in message:
                self.record_wanted = False
                self.controls.set_recording(False, message)
            self._update_badges()
        stats = self.controller.stats()
        if stats is None:
            return
        reconnecting = stats.source_state == "reconnecting"
        if reconnecting != self._reported_reconnect:
            self._reported_reconnect = reconnecting
            if reconnecting:
                self.banner.show_message(
                    f"Lost the camera ({self.settings.camera}); trying to reconnect…")
            self._update_badges()
        self.stats_label.setText(
            f"<b>{stats.fps:.1f}</b> fps &nbsp;·&nbsp; latency p50 <b>{stats.latency.p50:.0f}"
            f"</b> / p95 <b>{stats.latency.p95:.0f}</b> ms &nbsp;·&nbsp; drops "
            f"<b>{stats.total_drops}</b><br>faces {stats.faces} &nbsp;·&nbsp; swaps/s "
            f"{stats.swaps_per_s:.1f} ({stats.swap_mode or '-'})<br>"
            f"{self.settings.model} on {self.backend or '…'}"
            + (f"<br>{stats.format_meter()}" if stats.identity is not None else ""))
        self.preview.set_face_badges(self.controller.face_badges())
        self.chart.set_stages(stats.stage_p50())

    # -- hotkeys --------------------------------------------------------------------------

    def on_action(self, action: str) -> None:
        """Every hotkey (window or system-wide) arrives here by name."""
        if action.startswith("source:"):
            self.select_source(int(action.split(":", 1)[1]) - 1)
        elif action == "next":
            if self.controller.next_source():
                self._source_selected()
        elif action == "previous":
            if self.controller.previous_source():
                self._source_selected()
        elif action == "swap":
            self.set_swap_enabled(not self.settings.swap_enabled)
        elif action == "original":
            self.set_preview_mode(self._last_view if self.preview.mode == "original"
                                  else "original")
        elif action == "record":
            self.set_recording(not self.record_wanted)
        elif action == "vcam":
            self.set_virtual_camera(not self.vcam_wanted)
        elif action == "fullscreen":
            self.toggle_fullscreen()
        elif action == "help":
            self.help.toggle()
        elif action == "next-face":
            self.select_next_face()
        elif action == "assign-face":
            self.assign_selected_face()

    # -- one identity per person --------------------------------------------------------

    def _faces_left_to_right(self) -> list[int]:
        result = self.preview.result
        faces = sorted(result.faces, key=lambda f: float(f.box[0])) if result else []
        return [f.track_id for f in faces]

    def select_next_face(self) -> int | None:
        """Outline the next face in the preview (left to right); ``A`` then assigns it."""
        faces = self._faces_left_to_right()
        if not faces:
            self.preview.select_face(None)
            self.statusBar().showMessage("No face in the preview to select", 3000)
            return None
        current = self.preview.selected_face
        track_id = faces[(faces.index(current) + 1) % len(faces)] if current in faces \
            else faces[0]
        self.preview.select_face(track_id)
        self.statusBar().showMessage(f"Face {faces.index(track_id) + 1} of {len(faces)} "
                                     "selected: A gives it an identity", 4000)
        return track_id

    def assign_selected_face(self) -> None:
        """The identity menu for the outlined face (the first one when none is)."""
        track_id = self.preview.selected_face
        if track_id not in self._faces_left_to_right():
            track_id = self.select_next_face()
        if track_id is None:
            return
        rects = [r for tid, r in self.preview.face_rects() if tid == track_id]
        at = rects[-1].center().toPoint() if rects else self.preview.rect().center()
        self.show_face_menu(track_id, self.preview.mapToGlobal(at))

    def face_menu_for(self, track_id: int) -> QMenu:
        """Every gallery identity (keys 1–9), the active source, or leave the face alone;
        the face's current choice is checked."""
        from realtime.faces.mapping import ACTIVE_SOURCE, LEAVE_ALONE

        current = self.controller.face_assignments().get(track_id)
        menu = QMenu(self)
        menu.setTitle("Who is this face?")
        header = menu.addAction("This person wears…")
        header.setEnabled(False)
        choices: list[tuple[str, str]] = [
            (f"&{i + 1}  {s.name}" if i < 9 else s.name, s.name)
            for i, s in enumerate(self.controller.sources())]
        if not choices:
            empty = menu.addAction("(no photos in the gallery yet)")
            empty.setEnabled(False)
        for label, choice in choices:
            self._face_action(menu, label, track_id, choice, current)
        menu.addSeparator()
        self._face_action(menu, "&Active source (follows 1–9)", track_id, ACTIVE_SOURCE,
                          current)
        self._face_action(menu, "&Leave alone", track_id, LEAVE_ALONE, current)
        if current is not None:
            menu.addSeparator()
            policy = "active source" if self.settings.unassigned_faces == "source" \
                else "left alone"
            forget = menu.addAction(f"&Forget (like other faces: {policy})")
            forget.triggered.connect(lambda _c=False: self.assign_face(track_id, None))
        return menu

    def _face_action(self, menu: QMenu, label: str, track_id: int, choice: str,
                     current: str | None) -> None:
        action = menu.addAction(label)
        action.setCheckable(True)
        action.setChecked(choice == current)
        action.setData(choice)
        action.triggered.connect(lambda _c=False: self.assign_face(track_id, choice))

    def show_face_menu(self, track_id: int, global_pos: QPoint) -> None:
        """Pop up the identity menu for a face (a click on it in the preview)."""
        if self.face_menu is not None:
            self.face_menu.close()
        self.face_menu = self.face_menu_for(track_id)
        self.face_menu.aboutToHide.connect(self.preview.update)
        self.face_menu.popup(global_pos)

    def assign_face(self, track_id: int, choice: str | None) -> None:
        from realtime.faces.mapping import ACTIVE_SOURCE, LEAVE_ALONE

        if not self.controller.assign_face(track_id, choice):
            self.statusBar().showMessage("Faces can be assigned once the model runs", 4000)
            return
        what = {None: "its assignment is forgotten", ACTIVE_SOURCE: "wears the active source",
                LEAVE_ALONE: "is left alone"}.get(choice, f"wears {choice}")
        self.statusBar().showMessage(f"This face {what}; followed while it moves", 4000)
        self.preview.set_face_badges(self.controller.face_badges())

    def select_source(self, index: int) -> None:
        if self.controller.select_source(index):
            self._source_selected()
        else:
            count = self.controller.source_count()
            self.statusBar().showMessage(
                f"There is no source {index + 1} (you have {count}); add photos below.", 4000)

    def _source_selected(self) -> None:
        index = self.controller.active_source
        self.gallery.set_active(index)
        sources = self.controller.sources()
        name = sources[index].name if index < len(sources) else ""
        self.statusBar().showMessage(f"Source {index + 1}: {name}", 3000)
        self._change(active_source=index)

    def set_swap_enabled(self, enabled: bool) -> None:
        self.controller.set_swap_enabled(enabled)
        self._change(swap_enabled=enabled)
        self._update_badges()

    def set_preview_mode(self, mode: str) -> None:
        if mode != "original":
            self._last_view = mode
        self.preview.set_mode(mode)
        for button in self.view_buttons.buttons():
            button.setChecked(button.property("mode") == mode)
        self._change(preview_mode=mode)
        self._update_badges()

    def toggle_fullscreen(self) -> None:
        full = not self.isFullScreen()
        for widget in (self.side, self.gallery, self.info_row):
            widget.setVisible(not full)
        self.menuBar().setVisible(not full)
        self.statusBar().setVisible(not full)
        if full:
            self.showFullScreen()
        else:
            self.showNormal()

    # -- outputs --------------------------------------------------------------------------

    def set_virtual_camera(self, on: bool) -> None:
        """Switch the virtual camera on the outputs worker (opening one can take seconds)."""
        self.vcam_wanted = on
        self._vcam_request += 1
        request, settings = self._vcam_request, self.settings
        self.controls.set_vcam_state(on, "starting…" if on else "off")
        self._change(virtual_cam=on)
        self.outputs.submit(
            "virtual camera", lambda: self.controller.set_virtual_camera(on, settings),
            lambda description: self._vcam_done(request, on, str(description)),
            lambda exc, _trace: self._vcam_failed(request, exc))
        self._update_badges()

    def _vcam_done(self, request: int, on: bool, description: str) -> None:
        if request == self._vcam_request:
            self.controls.set_vcam_state(on, description if on else "off")
            self._update_badges()

    def _vcam_failed(self, request: int, exc: BaseException) -> None:
        if request != self._vcam_request:
            return
        message = _readable(exc)  # no v4l2loopback / OBS camera: the text says how to get one
        self.vcam_wanted = False
        self.controls.set_vcam_state(False, message, error=True)
        self.banner.show_message(f"Virtual camera unavailable: {message}")
        self._change(virtual_cam=False)
        self._update_badges()

    def set_recording(self, on: bool, path: Path | None = None) -> None:
        """Start or stop recording on the outputs worker (ffmpeg starts and flushes there)."""
        self.record_wanted = on
        self._record_request += 1
        request, settings, folder = self._record_request, self.settings, self._record_folder()
        self.controls.set_recording(on, "starting…" if on else "finishing the file…")

        def work() -> Path | None:
            if on:
                if self.controller.recording:
                    return self.controller.recording_path
                return self.controller.start_recording(folder, settings, path)
            return self.controller.stop_recording()

        self.outputs.submit("recorder", work,
                            lambda result: self._record_done(request, on, result),
                            lambda exc, _trace: self._record_failed(request, exc))
        self._update_badges()

    def _record_done(self, request: int, on: bool, path: Path | None) -> None:
        if request != self._record_request:
            return
        if on:
            self.controls.set_recording(True, f"Recording to {path}")
        else:
            self.controls.set_recording(False, f"Saved {path}" if path else
                                        f"Saves to {self._record_folder()}")
        self._update_badges()

    def _record_failed(self, request: int, exc: BaseException) -> None:
        if request != self._record_request:
            return
        self.record_wanted = False
        self.controls.set_recording(False, _readable(exc))
        self.banner.show_message(f"Recording failed: {_readable(exc)}")
        self._update_badges()

    def _record_folder(self) -> Path:
        return Path(self.settings.record_path).expanduser() if self.settings.record_path \
            else default_record_folder()

    def _update_badges(self) -> None:
        badges: list[tuple[str, QColor]] = []
        if self._reported_reconnect:  # the last frame stays up: say it is frozen
            badges.append(("CAMERA LOST — RECONNECTING", QColor(198, 40, 40, 230)))
        if not self.settings.swap_enabled:
            badges.append(("SWAP OFF", QColor(97, 97, 97, 220)))
        if self.preview.mode == "original":
            badges.append(("ORIGINAL", QColor(21, 101, 192, 220)))
        if self.record_wanted:
            badges.append(("● REC", QColor(198, 40, 40, 230)))
        if self.vcam_wanted:
            badges.append(("VIRTUAL CAM", QColor(46, 125, 50, 230)))
        self.preview.set_badges(badges)

    # -- sources --------------------------------------------------------------------------

    def _restore_sources(self) -> None:
        names = self.settings.source_names
        for i, spec in enumerate(self.settings.sources):
            paths = [Path(p) for p in spec.split(os.pathsep) if p]
            if paths:
                self.gallery.add_entry(paths, names[i] if i < len(names) else "")
        if self.settings.sources_dir:
            self._add_folder_photos(Path(self.settings.sources_dir).expanduser())
        self.gallery.set_active(self.settings.active_source)

    def use_source_folder(self, folder: Path) -> None:
        """Remember ``folder`` and add each of its photos not in the gallery yet (choosing
        a folder is a fresh start: photos removed earlier come back)."""
        self._change(sources_dir=str(folder), removed_sources=())
        self._add_folder_photos(folder)

    def _add_folder_photos(self, folder: Path) -> None:
        """Add the folder's photos that are neither in the gallery nor removed by the user."""
        if not folder.is_dir():
            self.banner.show_message(f"Source folder {folder} is not there any more.")
            return
        skip = {p for e in self.gallery.entries for p in e.paths}
        skip.update(self.settings.removed_sources)
        for child in sorted(folder.iterdir()):
            if child.suffix.lower() in IMAGE_SUFFIXES and str(child) not in skip:
                self.add_source([child])

    def _in_source_folder(self, path: str) -> bool:
        folder = self.settings.sources_dir
        return bool(folder) and Path(path).parent == Path(folder).expanduser()

    def add_source(self, paths: list[Path], name: str = "") -> Entry | None:
        """A new identity from ``paths`` (a folder adds each image in it)."""
        expanded: list[Path] = []
        for path in paths:
            if Path(path).is_dir():
                for child in sorted(Path(path).iterdir()):
                    if child.suffix.lower() in IMAGE_SUFFIXES:
                        self.add_source([child])
            else:
                expanded.append(Path(path))
        if not expanded:
            return None
        # a photo the user adds by hand is wanted again, also at the next start
        added = {str(p) for p in expanded}
        if added & set(self.settings.removed_sources):
            self._change(removed_sources=tuple(p for p in self.settings.removed_sources
                                               if p not in added))
        entry = self.gallery.add_entry(expanded, name)
        if self._generation > 0:  # before start(), the first build adds every entry
            self._submit_add(entry)
        self._save_sources()
        return entry

    def _submit_add(self, entry: Entry) -> None:
        generation = self._generation
        self._entry_generation[entry.key] = generation
        entry.state, entry.message = "busy", ""
        self.gallery.refresh()
        paths = [Path(p) for p in entry.paths]
        name = entry.name or None
        self.worker.submit(
            f"add source {entry.name}", lambda: self.controller.add_source(paths, name),
            lambda face: self._source_added(entry.key, generation, face),
            lambda exc, trace: self._source_failed(entry.key, generation, exc, trace))

    def _source_added(self, key: int, generation: int, face: SourceFace) -> None:
        if self._entry_generation.get(key) != generation or self.gallery.entry(key) is None:
            return
        self.gallery.set_ready(key, face)
        self.gallery.set_active(self.controller.active_source)
        self._save_sources()

    def _source_failed(self, key: int, generation: int, exc: BaseException, trace: str) -> None:
        if self._entry_generation.get(key) != generation:
            return
        if isinstance(exc, ctl.NotRunning):
            entry = self.gallery.entry(key)
            if entry is not None:
                entry.state, entry.message = "busy", ""
                self.gallery.refresh()
                self.gallery.tiles[key].status.setText("waiting for the model…")
                self.gallery.tiles[key].busy.setVisible(False)
            return
        log.debug("source failed:\n%s", trace)
        self.gallery.set_failed(key, _tile_message(exc))
        self._save_sources()

    def remove_source(self, key: int) -> None:
        entry = self.gallery.entry(key)
        if entry is None:
            return
        was_ready = entry.state == "ready"
        self.gallery.remove_entry(key)
        self._entry_generation.pop(key, None)
        # the remembered folder would add its photos back at the next start
        from_folder = [p for p in entry.paths if self._in_source_folder(p)
                       and p not in self.settings.removed_sources]
        if len(entry.paths) == 1 and from_folder:
            self._change(removed_sources=(*self.settings.removed_sources, *from_folder))
        self._save_sources()
        if was_ready:
            paths = entry.paths
            self.worker.submit(f"remove {entry.name}",
                               lambda: self.controller.remove_source(paths),
                               lambda _r: self._source_selected(),
                               lambda exc, _t: self.banner.show_message(_readable(exc)))

    def rename_source(self, key: int, name: str) -> None:
        entry = self.gallery.entry(key)
        if entry is None:
            return
        self.gallery.rename_entry(key, name)
        self._save_sources()
        paths = entry.paths
        self.worker.submit(f"rename {name}", lambda: self.controller.rename_source(paths, name),
                           None, lambda exc, _t: self.banner.show_message(_readable(exc)))

    def _save_sources(self) -> None:
        kept = [e for e in self.gallery.entries if e.state != "failed"]
        self._change(sources=tuple(os.pathsep.join(e.paths) for e in kept),
                     source_names=tuple(e.name for e in kept))

    # -- settings --------------------------------------------------------------------------

    def apply_changes(self, changes: dict[str, Any]) -> None:
        """A change from the controls: save it, then apply it live or rebuild."""
        before = self.settings
        self._change(**changes)
        if any(getattr(before, k) != getattr(self.settings, k) for k in ctl.REBUILD_FIELDS):
            self.controls.set_models(self.controls_models(), self.settings.model)
            self.rebuild()
            return
        self.controller.update_settings(self.settings)
        vcam_fields = ("vcam_width", "vcam_height", "vcam_fps", "ai_label")
        if self.vcam_wanted and any(k in changes for k in vcam_fields):
            self.set_virtual_camera(True)  # a new output with the new size/label
        if "record_path" in changes:
            self.controls.set_recording(self.record_wanted, f"Saves to {self._record_folder()}")

    def controls_models(self) -> list[str]:
        combo = self.controls.model
        return [str(combo.itemData(i)) for i in range(combo.count())
                if combo.itemData(i) not in (None, "__get_more__")
                and "(not installed)" not in combo.itemText(i)]

    def _change(self, **changes: Any) -> None:
        try:
            new = self.settings.with_changes(**changes)
        except SettingError as exc:  # a control offered a value the rules refuse
            log.error("%s", exc)
            self.statusBar().showMessage(f"Not applied: {exc}", 8000)
            return
        if new != self.settings:
            self.settings = new
            self._save()

    def _save(self, *, geometry: bool = False) -> None:
        if geometry:
            data = bytes(self.saveGeometry().toBase64().data()).decode("ascii")
            self.settings = self.settings.with_changes(window_geometry=data)
        try:
            self.store.save(self.settings)
        except SettingsSaveError as exc:
            log.error("%s", exc)
            if not self._closing:
                self.banner.show_message(str(exc))

    def _restore_geometry(self) -> None:
        if self.settings.window_geometry:
            data = QByteArray.fromBase64(self.settings.window_geometry.encode("ascii"))
            if self.restoreGeometry(data):
                return
        self.resize(1400, 860)

    # -- models ---------------------------------------------------------------------------

    def show_model_dialog(self, names: tuple[str, ...] | None = None, reason: str = "") -> None:
        if self.model_dialog is not None:
            self.model_dialog.raise_()
            return
        wanted = names or tuple(n for model in ctl.REQUIRED_MODELS
                                for n in ctl.REQUIRED_MODELS[model])
        dialog = ModelDialog(self.controller.models_dir, list(dict.fromkeys(wanted)),
                             reason=reason, parent=self)
        self.model_dialog = dialog
        dialog.finished.connect(self._model_dialog_closed)
        dialog.open()
        self.controls.set_models(self.controls_models(), self.settings.model)

    def _model_dialog_closed(self, _result: int) -> None:
        self.model_dialog = None
        self.probe_worker.submit("probe models", self._probe, self._probed)
        if (not self.controller.swapping and not self._closing
                and not ctl.missing_models(self.controller.models_dir, self.settings.model)):
            self.rebuild()

    # -- system-wide hotkeys --------------------------------------------------------------

    def set_global_hotkeys(self, on: bool) -> None:
        try:
            if on:
                self.global_hotkeys.start()
            else:
                self.global_hotkeys.stop()
        except Exception as exc:
            self.banner.show_message(str(exc))
            on = False
        self._change(global_hotkeys=on)
        self._refresh_global_hotkeys_note()

    def _refresh_global_hotkeys_note(self) -> None:
        reason = availability()
        if reason is None:
            note = ("Off by default. X11, Windows and macOS (grant Accessibility access); "
                    "not Wayland.")
        else:
            note = f"Unavailable: {reason}."
            if "pynput" in reason:
                note = f"Needs pynput: {INSTALL_HINT}. Works on X11, Windows, macOS; not Wayland."
        self.controls.set_global_hotkeys(self.global_hotkeys.running, note, reason is None)
        if self.settings.global_hotkeys and reason is None and not self.global_hotkeys.running:
            self.set_global_hotkeys(True)

    # -- drag and drop onto the whole window -------------------------------------------------

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        for url in event.mimeData().urls():
            if url.isLocalFile():
                self.add_source([Path(url.toLocalFile())])
        event.acceptProposedAction()


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _readable(exc: BaseException) -> str:
    text = str(exc).strip()
    return text if text else type(exc).__name__


def _tile_message(exc: BaseException) -> str:
    """Short text for a gallery tile (the full text is in its tooltip)."""
    name = type(exc).__name__
    if name == "NoFaceError":
        return "No face found in this photo"
    if name == "SourceImageError":
        return "Not a readable image"
    return _first_line(exc)[:80]
