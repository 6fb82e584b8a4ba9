"""The main window's lifecycle: the camera first, the pipeline built in the background
(and rebuilt on a change of model or input), the preview and stats timers, shutdown."""

from __future__ import annotations

import logging

from PySide6.QtGui import QCloseEvent

from realtime.ui import controller as ctl
from realtime.ui.messages import first_line, readable
from realtime.ui.window_outputs import OutputsRoom
from realtime.ui.window_sources import SourcesRoom

log = logging.getLogger(__name__)


class LifecycleRoom(SourcesRoom, OutputsRoom):
    """Builds, shows and stops; every error lands in the banner."""

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
                               f"Camera: {readable(exc)}"))

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
        self.preview.set_message("Not running: " + first_line(exc))
        self.banner.show_message(f"Could not start: {readable(exc)}", restart=True)
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
