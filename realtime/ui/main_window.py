"""The main window: preview, stats, gallery, controls, hotkeys, errors, persistence.

Threading: the GUI thread never waits for a model. Building the pipeline and
computing source vectors run in submission order on one ``SerialWorker``; the
preview is a timer that polls the pipeline's preview slot (version check) and the
stats/errors are polled twice a second. Every error lands in the banner at the top
and the window stays usable: change the camera or the model and it rebuilds.

This module lays the window out and wires it; each job lives in a room (a mixin):
``window_state`` (shared parts, settings persistence), ``window_outputs`` (virtual
camera, recorder, badges), ``window_sources`` (the gallery), ``window_faces`` (who
is this face), ``window_lifecycle`` (build, timers, shutdown), ``window_models``
(models dialog, settings changes), ``window_actions`` (hotkeys, view, drops).
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QButtonGroup,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QScrollArea,
    QStyle,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from realtime.config import Settings
from realtime.settings_store import SettingsStore
from realtime.ui import controller as ctl
from realtime.ui.banners import ErrorBanner, ModelsBanner, StageSignal
from realtime.ui.controls import ControlsPanel
from realtime.ui.gallery import Gallery
from realtime.ui.global_hotkeys import GlobalHotkeys
from realtime.ui.help_overlay import HelpOverlay
from realtime.ui.hotkeys import install_hotkeys
from realtime.ui.preview import PreviewWidget, StageChart
from realtime.ui.window_actions import ActionsRoom
from realtime.ui.window_models import ModelsRoom
from realtime.ui.window_sources import IMAGE_SUFFIXES
from realtime.ui.window_state import default_record_folder
from realtime.ui.workers import SerialWorker

__all__ = ["IMAGE_SUFFIXES", "PREVIEW_INTERVAL_MS", "STATS_INTERVAL_MS", "ErrorBanner",
           "MainWindow", "ModelsBanner", "StageSignal", "default_record_folder"]

log = logging.getLogger(__name__)

PREVIEW_INTERVAL_MS = 15  # ~60 Hz polling; a redraw happens only on a new version
STATS_INTERVAL_MS = 500


class MainWindow(ActionsRoom, ModelsRoom):
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
        self.model_dialog = None
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
        self.face_menu = None  # the open "who is this face" menu
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
