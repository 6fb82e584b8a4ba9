"""The window's settings: the one ``Settings`` value every room reads, changed and saved
here only (a refused value or a failed save is said in the status bar or the banner)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QStatusBar

from realtime.config import SettingError, Settings
from realtime.settings_store import SettingsSaveError, SettingsStore
from realtime.ui.banners import ErrorBanner

log = logging.getLogger(__name__)


def default_record_folder() -> Path:
    """The user's Videos folder (platformdirs), not the folder swapcam was started in."""
    import platformdirs

    return Path(platformdirs.user_videos_dir())


class WindowSettings:
    """The current settings and their file; rooms read ``settings`` and write through
    ``change``."""

    def __init__(self, store: SettingsStore, settings: Settings, *, banner: ErrorBanner,
                 status: QStatusBar) -> None:
        self.store = store
        self.settings = settings
        self._banner = banner
        self._status = status
        self._closing = False

    def change(self, **changes: Any) -> None:
        """Apply and save ``changes``; a value the rules refuse keeps the settings."""
        try:
            new = self.settings.with_changes(**changes)
        except SettingError as exc:  # a control offered a value the rules refuse
            log.error("%s", exc)
            self._status.showMessage(f"Not applied: {exc}", 8000)
            return
        if new != self.settings:
            self.settings = new
            self.save()

    def save(self) -> None:
        try:
            self.store.save(self.settings)
        except SettingsSaveError as exc:
            log.error("%s", exc)
            if not self._closing:  # the banner is going away with the window
                self._banner.show_message(str(exc))

    def save_on_close(self, geometry: str) -> None:
        """The last save, with the window's geometry (base64 of ``saveGeometry``)."""
        self._closing = True
        self.settings = self.settings.with_changes(window_geometry=geometry)
        self.save()
