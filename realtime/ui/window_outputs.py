"""The main window's outputs: the virtual camera, the recorder and the preview badges
that say what is on."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QColor

from realtime.ui.messages import readable
from realtime.ui.window_state import WindowState, default_record_folder


class OutputsRoom(WindowState):
    """Switches the outputs on the outputs worker (opening one can take seconds)."""

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
        message = readable(exc)  # no v4l2loopback / OBS camera: the text says how to get one
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
        self.controls.set_recording(False, readable(exc))
        self.banner.show_message(f"Recording failed: {readable(exc)}")
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
