"""What every room of the main window shares: its parts and state (declared here,
made by ``MainWindow.__init__``), and the settings persistence (change, save, geometry)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QTimer
from PySide6.QtWidgets import (
    QButtonGroup,
    QLabel,
    QMainWindow,
    QMenu,
    QProgressBar,
    QScrollArea,
    QWidget,
)

from realtime.config import SettingError, Settings
from realtime.settings_store import SettingsSaveError, SettingsStore
from realtime.ui import controller as ctl
from realtime.ui.banners import ErrorBanner, ModelsBanner, StageSignal
from realtime.ui.controls import ControlsPanel
from realtime.ui.gallery import Gallery
from realtime.ui.global_hotkeys import GlobalHotkeys
from realtime.ui.help_overlay import HelpOverlay
from realtime.ui.model_dialog import ModelDialog
from realtime.ui.preview import PreviewWidget, StageChart
from realtime.ui.workers import SerialWorker

log = logging.getLogger(__name__)


def default_record_folder() -> Path:
    """The user's Videos folder (platformdirs), not the folder swapcam was started in."""
    import platformdirs

    return Path(platformdirs.user_videos_dir())


class WindowState(QMainWindow):
    """The main window's shared parts; each room (a mixin below ``MainWindow``) adds one job."""

    store: SettingsStore
    settings: Settings
    controller: ctl.Controller
    worker: SerialWorker  # pipeline builds and source vectors, in submission order
    probe_worker: SerialWorker
    outputs: SerialWorker  # virtual camera and recorder
    vcam_wanted: bool
    record_wanted: bool
    _vcam_request: int
    _record_request: int
    global_hotkeys: GlobalHotkeys
    model_dialog: ModelDialog | None
    _generation: int
    _entry_generation: dict[int, int]
    _preview_version: int
    _last_view: str
    _reported_reconnect: bool
    _closing: bool
    backend: str
    record_on_start: Path | None
    banner: ErrorBanner
    models_banner: ModelsBanner
    preview: PreviewWidget
    face_menu: QMenu | None  # the open "who is this face" menu
    info_row: QWidget
    view_buttons: QButtonGroup
    stats_label: QLabel
    chart: StageChart
    gallery: Gallery
    controls: ControlsPanel
    side: QScrollArea
    help: HelpOverlay
    status_model: QLabel
    conversion: QProgressBar
    stage_signal: StageSignal
    preview_timer: QTimer
    stats_timer: QTimer

    # -- settings persistence ---------------------------------------------------------

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
