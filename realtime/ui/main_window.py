"""The main window: preview, stats, gallery, controls, hotkeys, errors, persistence.

Threading: the GUI thread never waits for a model. Building the pipeline and
computing source vectors run in submission order on one ``SerialWorker``; the
preview is a timer that polls the pipeline's preview slot (version check) and the
stats/errors are polled twice a second. Every error lands in the banner at the top
and the window stays usable: change the camera or the model and it rebuilds.

This module lays the window out and composes its rooms; each room is an object that
owns one job's state, is handed the widgets, workers and other rooms it uses in its
constructor, and is reached by method calls and Qt signals: ``window_state``
(``WindowSettings``: the settings, changed and saved), ``window_sources`` (the
gallery), ``window_outputs`` (virtual camera, recorder, badges), ``window_faces``
(who is this face), ``window_lifecycle`` (build, timers, errors), ``window_models``
(models dialog, settings changes), ``window_actions`` (hotkeys, view).
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QByteArray, Qt
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QButtonGroup,
    QHBoxLayout,
    QLabel,
    QMainWindow,
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
from realtime.ui.banners import ErrorBanner, ModelsBanner, NoticeBanner, StageSignal
from realtime.ui.controls import ControlsPanel
from realtime.ui.gallery import Gallery
from realtime.ui.global_hotkeys import GlobalHotkeys
from realtime.ui.help_overlay import HelpOverlay
from realtime.ui.hotkeys import install_hotkeys
from realtime.ui.preview import PreviewWidget, StageChart
from realtime.ui.window_actions import ActionsRoom
from realtime.ui.window_faces import FacesRoom
from realtime.ui.window_lifecycle import PREVIEW_INTERVAL_MS, STATS_INTERVAL_MS, LifecycleRoom
from realtime.ui.window_models import ModelsRoom
from realtime.ui.window_outputs import OutputsRoom
from realtime.ui.window_sources import IMAGE_SUFFIXES, SourcesRoom
from realtime.ui.window_state import WindowSettings, default_record_folder
from realtime.ui.workers import SerialWorker

__all__ = ["IMAGE_SUFFIXES", "PREVIEW_INTERVAL_MS", "STATS_INTERVAL_MS", "ErrorBanner",
           "MainWindow", "ModelsBanner", "StageSignal", "default_record_folder"]

log = logging.getLogger(__name__)


class MainWindow(QMainWindow):
    """Lays out the widgets, makes the workers and composes the rooms."""

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
        self.controller = controller
        self.worker = SerialWorker("engine", self)  # pipeline builds, then source vectors
        self.probe_worker = SerialWorker("probe", self)
        self.output_worker = SerialWorker("outputs", self)  # virtual camera and recorder
        self.global_hotkeys = GlobalHotkeys(self)
        self._closing = False
        self._build_ui(settings)
        status = self.statusBar()
        self.prefs = WindowSettings(store, settings, banner=self.banner, status=status)
        self.sources = SourcesRoom(self.prefs, controller, self.gallery, self.worker,
                                   self.banner, status)
        self.outputs = OutputsRoom(self.prefs, controller, self.controls, self.output_worker,
                                   self.banner, self.preview)
        self.faces = FacesRoom(self.prefs, controller, self.preview, status)
        self.lifecycle = LifecycleRoom(
            self.prefs, controller, self.worker, preview=self.preview, banner=self.banner,
            models_banner=self.models_banner, status=status, status_model=self.status_model,
            conversion=self.conversion, stats_label=self.stats_label, chart=self.chart,
            sources=self.sources, outputs=self.outputs, memory_banner=self.memory_banner)
        self.models = ModelsRoom(self.prefs, controller, self.controls, self.probe_worker,
                                 self.lifecycle, self.outputs, dialog_parent=self)
        self.actions_room = ActionsRoom(
            self.prefs, controller, preview=self.preview, view_buttons=self.view_buttons,
            controls=self.controls, banner=self.banner, global_hotkeys=self.global_hotkeys,
            sources=self.sources, faces=self.faces, outputs=self.outputs)
        self.actions_room.fullscreen_requested.connect(self.toggle_fullscreen)
        self.actions_room.help_requested.connect(self.help.toggle)
        self.models_banner.button.clicked.connect(
            lambda: self.models.show_model_dialog(self.models_banner.names or None))
        self.shortcuts = install_hotkeys(self, self.actions_room.on_action)
        self._restore_geometry()
        self.controls.set_settings(settings)
        self.models.show_installed()
        self.outputs.show_idle()
        self.actions_room.refresh_global_hotkeys_note()
        self.sources.restore()
        self.outputs.update_badges()
        if startup_warning:
            self.banner.show_message(startup_warning)

    @property
    def settings(self) -> Settings:
        """The settings in force (``prefs`` changes and saves them)."""
        return self.prefs.settings

    def start(self) -> None:
        """Show the camera at once, build the pipeline in the background."""
        self.lifecycle.start()

    # -- layout -------------------------------------------------------------------------

    def _build_ui(self, settings: Settings) -> None:
        central = QWidget()
        outer = QHBoxLayout(central)
        outer.setContentsMargins(8, 8, 8, 8)
        left = QVBoxLayout()
        self.banner = ErrorBanner()
        left.addWidget(self.banner)
        self.models_banner = ModelsBanner()
        left.addWidget(self.models_banner)
        self.memory_banner = NoticeBanner()
        left.addWidget(self.memory_banner)
        self.preview = PreviewWidget()
        self.preview.set_mode(settings.preview_mode if settings.preview_mode in (
            "swapped", "original", "side-by-side") else "swapped")
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
        left.addWidget(self.gallery)
        outer.addLayout(left, 1)
        self.controls = ControlsPanel()
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
        self.statusBar().showMessage("Press F1 or ? for hotkeys", 8000)

    def _restore_geometry(self) -> None:
        geometry = self.prefs.settings.window_geometry
        if geometry and self.restoreGeometry(QByteArray.fromBase64(geometry.encode("ascii"))):
            return
        self.resize(1400, 860)

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

    # -- photos dropped anywhere on the window ------------------------------------------

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        for url in event.mimeData().urls():
            if url.isLocalFile():
                self.sources.add_source([Path(url.toLocalFile())])
        event.acceptProposedAction()

    # -- closing ------------------------------------------------------------------------

    def closeEvent(self, event: QCloseEvent) -> None:
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Save, then stop everything this window started (idempotent)."""
        if self._closing:
            return
        self._closing = True
        self.lifecycle.stop()
        self.prefs.save_on_close(bytes(self.saveGeometry().toBase64().data()).decode("ascii"))
        self.models.close_dialog()
        self.global_hotkeys.stop()
        self.probe_worker.stop()
        self.output_worker.stop()
        self.worker.stop()
        self.controller.shutdown()
