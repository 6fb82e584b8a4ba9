"""The main window's actions: every hotkey by name (window or system-wide), the view
(swap on/off, original, side by side, full screen) and photos dropped on the window."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QDragEnterEvent, QDropEvent

from realtime.ui.global_hotkeys import INSTALL_HINT, availability
from realtime.ui.window_faces import FacesRoom
from realtime.ui.window_lifecycle import LifecycleRoom


class ActionsRoom(LifecycleRoom, FacesRoom):
    """Hotkeys and the view controls."""

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
