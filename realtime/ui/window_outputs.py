"""The outputs' room: the virtual camera and the recorder (switched on the outputs
worker: opening one can take seconds) and the preview badges that say what is on."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject
from PySide6.QtGui import QColor

from realtime.ui import controller as ctl
from realtime.ui.banners import ErrorBanner
from realtime.ui.controls import ControlsPanel
from realtime.ui.messages import readable
from realtime.ui.preview import PreviewWidget
from realtime.ui.window_state import WindowSettings, default_record_folder
from realtime.ui.workers import SerialWorker

# a change of these reopens a running virtual camera (new size or label)
VCAM_FIELDS = ("vcam_width", "vcam_height", "vcam_fps", "ai_label")


class OutputsRoom(QObject):
    """What goes out (virtual camera, recording) and the badges on the preview."""

    def __init__(self, prefs: WindowSettings, controller: ctl.Controller,
                 controls: ControlsPanel, worker: SerialWorker, banner: ErrorBanner,
                 preview: PreviewWidget) -> None:
        super().__init__(controls)
        self.prefs = prefs
        self.controller = controller
        self.controls = controls
        self.worker = worker  # the outputs worker: never waits behind a pipeline build
        self.banner = banner
        self.preview = preview
        self.vcam_wanted = False
        self.record_wanted = False
        self.record_on_start: Path | None = None  # `live --record`: once a frame shows
        self.camera_lost = False  # the last frame stays up: a badge says it is frozen
        self._vcam_request = 0
        self._record_request = 0
        controls.vcam_toggled.connect(self.set_virtual_camera)
        controls.record_toggled.connect(self.set_recording)

    def show_idle(self) -> None:
        """The controls' first state: nothing on, and where recordings will go."""
        self.controls.set_recording(False, f"Saves to {self.record_folder()}")
        self.controls.set_vcam_state(False, "off")

    def set_virtual_camera(self, on: bool) -> None:
        """Switch the virtual camera on the outputs worker (opening one can take seconds)."""
        self.vcam_wanted = on
        self._vcam_request += 1
        request, settings = self._vcam_request, self.prefs.settings
        self.controls.set_vcam_state(on, "starting…" if on else "off")
        self.prefs.change(virtual_cam=on)
        self.worker.submit(
            "virtual camera", lambda: self.controller.outputs.set_virtual_camera(on, settings),
            lambda description: self._vcam_done(request, on, str(description)),
            lambda exc, _trace: self._vcam_failed(request, exc))
        self.update_badges()

    def _vcam_done(self, request: int, on: bool, description: str) -> None:
        if request == self._vcam_request:
            self.controls.set_vcam_state(on, description if on else "off")
            self.update_badges()

    def _vcam_failed(self, request: int, exc: BaseException) -> None:
        if request != self._vcam_request:
            return
        message = readable(exc)  # no v4l2loopback / OBS camera: the text says how to get one
        self.vcam_wanted = False
        self.controls.set_vcam_state(False, message, error=True)
        self.banner.show_message(f"Virtual camera unavailable: {message}")
        self.prefs.change(virtual_cam=False)
        self.update_badges()

    def set_recording(self, on: bool, path: Path | None = None) -> None:
        """Start or stop recording on the outputs worker (ffmpeg starts and flushes there)."""
        self.record_wanted = on
        self._record_request += 1
        request, settings, folder = self._record_request, self.prefs.settings, \
            self.record_folder()
        self.controls.set_recording(on, "starting…" if on else "finishing the file…")
        outputs = self.controller.outputs

        def work() -> Path | None:
            if on:
                if outputs.recording:
                    return outputs.recording_path
                return outputs.start_recording(folder, settings, path)
            return outputs.stop_recording()

        self.worker.submit("recorder", work,
                           lambda result: self._record_done(request, on, result),
                           lambda exc, _trace: self._record_failed(request, exc))
        self.update_badges()

    def _record_done(self, request: int, on: bool, path: Path | None) -> None:
        if request != self._record_request:
            return
        if on:
            self.controls.set_recording(True, f"Recording to {path}")
        else:
            self.controls.set_recording(False, f"Saved {path}" if path else
                                        f"Saves to {self.record_folder()}")
        self.update_badges()

    def _record_failed(self, request: int, exc: BaseException) -> None:
        if request != self._record_request:
            return
        self.record_wanted = False
        self.controls.set_recording(False, readable(exc))
        self.banner.show_message(f"Recording failed: {readable(exc)}")
        self.update_badges()

    def record_folder(self) -> Path:
        record_path = self.prefs.settings.record_path
        return Path(record_path).expanduser() if record_path else default_record_folder()

    # -- what other rooms tell this one -------------------------------------------------

    def pipeline_built(self) -> None:
        """A pipeline runs: the virtual camera comes back on when the settings say so."""
        if self.prefs.settings.virtual_cam and not self.vcam_wanted:
            self.set_virtual_camera(True)

    def frame_shown(self) -> None:
        """A frame is on the preview: its size is known, so `live --record` can start."""
        if self.record_on_start is not None:
            path, self.record_on_start = self.record_on_start, None
            self.set_recording(True, path)

    def error_reported(self, message: str) -> None:
        """The pipeline reported an error: an output it names has stopped."""
        if "virtual camera" in message:
            self.vcam_wanted = False
            self.controls.set_vcam_state(False, message, error=True)
        if "recorder" in message:
            self.record_wanted = False
            self.controls.set_recording(False, message)
        self.update_badges()

    def settings_changed(self, changes: dict[str, object]) -> None:
        """A live change from the controls: a running virtual camera reopens with its new
        size or label; the recorder's note names a new folder."""
        if self.vcam_wanted and any(k in changes for k in VCAM_FIELDS):
            self.set_virtual_camera(True)
        if "record_path" in changes:
            self.controls.set_recording(self.record_wanted, f"Saves to {self.record_folder()}")

    def update_badges(self) -> None:
        badges: list[tuple[str, QColor]] = []
        if self.camera_lost:
            badges.append(("CAMERA LOST — RECONNECTING", QColor(198, 40, 40, 230)))
        if not self.prefs.settings.swap_enabled:
            badges.append(("SWAP OFF", QColor(97, 97, 97, 220)))
        if self.preview.mode == "original":
            badges.append(("ORIGINAL", QColor(21, 101, 192, 220)))
        if self.record_wanted:
            badges.append(("● REC", QColor(198, 40, 40, 230)))
        if self.vcam_wanted:
            badges.append(("VIRTUAL CAM", QColor(46, 125, 50, 230)))
        self.preview.set_badges(badges)
