"""The actions' room: every hotkey by name (window or system-wide) and the view (swap
on/off, original, side by side); full screen and help are the window's, asked for by
signal."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QAbstractButton, QButtonGroup

from realtime.ui import controller as ctl
from realtime.ui.banners import ErrorBanner
from realtime.ui.controls import ControlsPanel
from realtime.ui.global_hotkeys import INSTALL_HINT, GlobalHotkeys, availability
from realtime.ui.preview import PreviewWidget
from realtime.ui.window_faces import FacesRoom
from realtime.ui.window_outputs import OutputsRoom
from realtime.ui.window_sources import SourcesRoom
from realtime.ui.window_state import WindowSettings


class ActionsRoom(QObject):
    """Hotkeys and the view controls."""

    fullscreen_requested = Signal()
    help_requested = Signal()

    def __init__(self, prefs: WindowSettings, controller: ctl.Controller, *,
                 preview: PreviewWidget, view_buttons: QButtonGroup, controls: ControlsPanel,
                 banner: ErrorBanner, global_hotkeys: GlobalHotkeys, sources: SourcesRoom,
                 faces: FacesRoom, outputs: OutputsRoom) -> None:
        super().__init__(preview)
        self.prefs = prefs
        self.controller = controller
        self.preview = preview
        self.view_buttons = view_buttons  # each button's "mode" property names its view
        self.controls = controls
        self.banner = banner
        self.global_hotkeys = global_hotkeys
        self.sources = sources
        self.faces = faces
        self.outputs = outputs
        mode = prefs.settings.preview_mode
        self._last_view = mode if mode != "original" else "swapped"  # where O goes back to
        global_hotkeys.triggered.connect(self.on_action)
        view_buttons.buttonClicked.connect(self._view_clicked)
        controls.global_hotkeys_toggled.connect(self.set_global_hotkeys)

    def on_action(self, action: str) -> None:
        """Every hotkey (window or system-wide) arrives here by name."""
        if action.startswith("source:"):
            self.sources.select_source(int(action.split(":", 1)[1]) - 1)
        elif action == "next":
            if self.controller.next_source():
                self.sources.show_selected()
        elif action == "previous":
            if self.controller.previous_source():
                self.sources.show_selected()
        elif action == "swap":
            self.set_swap_enabled(not self.prefs.settings.swap_enabled)
        elif action == "original":
            self.set_preview_mode(self._last_view if self.preview.mode == "original"
                                  else "original")
        elif action == "record":
            self.outputs.set_recording(not self.outputs.record_wanted)
        elif action == "vcam":
            self.outputs.set_virtual_camera(not self.outputs.vcam_wanted)
        elif action == "fullscreen":
            self.fullscreen_requested.emit()
        elif action == "help":
            self.help_requested.emit()
        elif action == "next-face":
            self.faces.select_next_face()
        elif action == "assign-face":
            self.faces.assign_selected_face()

    def set_swap_enabled(self, enabled: bool) -> None:
        self.controller.set_swap_enabled(enabled)
        self.prefs.change(swap_enabled=enabled)
        self.outputs.update_badges()

    def _view_clicked(self, button: QAbstractButton) -> None:
        self.set_preview_mode(str(button.property("mode")))

    def set_preview_mode(self, mode: str) -> None:
        if mode != "original":
            self._last_view = mode
        self.preview.set_mode(mode)
        for button in self.view_buttons.buttons():
            button.setChecked(button.property("mode") == mode)
        self.prefs.change(preview_mode=mode)
        self.outputs.update_badges()

    def set_global_hotkeys(self, on: bool) -> None:
        try:
            if on:
                self.global_hotkeys.start()
            else:
                self.global_hotkeys.stop()
        except Exception as exc:
            self.banner.show_message(str(exc))
            on = False
        self.prefs.change(global_hotkeys=on)
        self.refresh_global_hotkeys_note()

    def refresh_global_hotkeys_note(self) -> None:
        """The controls say whether system-wide hotkeys can run here; they start when the
        settings ask for them and they can."""
        reason = availability()
        if reason is None:
            note = ("Off by default. X11, Windows and macOS (allow Input Monitoring); "
                    "not Wayland.")
        else:
            note = f"Unavailable: {reason}."
            if "pynput" in reason:
                note = f"Needs pynput: {INSTALL_HINT}. Works on X11, Windows, macOS; not Wayland."
        self.controls.set_global_hotkeys(self.global_hotkeys.running, note, reason is None)
        if self.prefs.settings.global_hotkeys and reason is None \
                and not self.global_hotkeys.running:
            self.set_global_hotkeys(True)
