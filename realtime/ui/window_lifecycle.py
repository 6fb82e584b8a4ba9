"""The lifecycle's room: the camera first, the pipeline built in the background (and
rebuilt on a change of model or input), the preview and stats timers, conversion
progress, and every pipeline error in the banner."""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QLabel, QProgressBar, QStatusBar

from realtime.ui import controller as ctl
from realtime.ui.banners import ErrorBanner, ModelsBanner, NoticeBanner, StageSignal
from realtime.ui.camera_choices import is_camera_spec
from realtime.ui.camera_permission import CameraPermission
from realtime.ui.messages import first_line, readable
from realtime.ui.preview import PreviewWidget, StageChart
from realtime.ui.window_outputs import OutputsRoom
from realtime.ui.window_sources import SourcesRoom
from realtime.ui.window_state import WindowSettings
from realtime.ui.workers import SerialWorker

log = logging.getLogger(__name__)

PREVIEW_INTERVAL_MS = 15  # ~60 Hz polling; a redraw happens only on a new version
STATS_INTERVAL_MS = 500


class LifecycleRoom(QObject):
    """Builds, shows and stops; every error lands in the banner."""

    built = Signal(str)  # a new pipeline runs, on this backend

    def __init__(self, prefs: WindowSettings, controller: ctl.Controller,
                 worker: SerialWorker, *, preview: PreviewWidget, banner: ErrorBanner,
                 models_banner: ModelsBanner, status: QStatusBar, status_model: QLabel,
                 conversion: QProgressBar, stats_label: QLabel, chart: StageChart,
                 sources: SourcesRoom, outputs: OutputsRoom,
                 memory_banner: NoticeBanner | None = None) -> None:
        super().__init__(preview)
        self.prefs = prefs
        self.controller = controller
        self.worker = worker  # the engine worker: builds, then the sources, in order
        self.preview = preview
        self.banner = banner
        self.models_banner = models_banner
        self.memory_banner = memory_banner  # GPU memory short: what was turned off
        self.status = status
        self.status_model = status_model  # "model · backend" at the status bar's right
        self.conversion = conversion
        self.stats_label = stats_label
        self.chart = chart
        self.sources = sources
        self.outputs = outputs
        self.backend = ""
        self._generation = 0
        self._preview_version = -1
        self.preview_timer = QTimer(self)
        self.preview_timer.setInterval(PREVIEW_INTERVAL_MS)
        self.preview_timer.timeout.connect(self._tick_preview)
        self.stats_timer = QTimer(self)
        self.stats_timer.setInterval(STATS_INTERVAL_MS)
        self.stats_timer.timeout.connect(self._tick_stats)
        self.stage_signal = StageSignal(self)
        self.stage_signal.stage.connect(self._conversion_stage)
        self.controller.on_stage = self.stage_signal.stage.emit
        banner.action.clicked.connect(self.rebuild)
        # macOS asks for the camera here, on the GUI thread, before the first open
        self.permission = CameraPermission(self)
        self.permission.granted.connect(self._open_camera)
        self.permission.refused.connect(self._camera_refused)

    def start(self) -> None:
        """Show the camera at once, build the pipeline in the background, start the
        timers. On a Mac that has not yet asked for the camera, after the person allows
        it (opened from a worker thread, the system's question fails)."""
        self.preview_timer.start()
        self.stats_timer.start()
        if is_camera_spec(self.prefs.settings.camera) and not self.permission.ensure():
            if self.permission.asking:
                self.preview.set_message("Waiting for the camera: macOS asks whether "
                                         "swapcam may use it (click Allow)")
            return
        self._open_camera()

    def _open_camera(self) -> None:
        self.show_camera()
        self.rebuild()

    def _camera_refused(self, text: str) -> None:
        self.preview.set_message("The camera is not allowed (the message above says where "
                                 "to allow it)")
        self.banner.show_message(text)

    def stop(self) -> None:
        self.preview_timer.stop()
        self.stats_timer.stop()

    def show_camera(self) -> None:
        """The camera alone (no models) until the pipeline runs."""
        settings = self.prefs.settings
        self.worker.submit("show the camera", lambda: self.controller.show_camera(settings),
                           None, lambda exc, _t: self.banner.show_message(
                               f"Camera: {readable(exc)}"))

    def next_step(self) -> str:
        """What the preview tells the user to do next ('' when it is swapping)."""
        if self.models_banner.isVisible() or not self.controller.swapping:
            if self.models_banner.names:
                return "Camera only: get the models to swap faces (Get models… above)"
            return f"Camera only while {self.prefs.settings.model} loads…"
        if not self.sources.has_ready():
            return "Add a photo of the face to wear: drop it here or use + below"
        return ""

    def _conversion_stage(self, model: str, done: int, total: int, what: str) -> None:
        self.conversion.setVisible(done < total)
        self.conversion.setRange(0, max(total, 1))
        self.conversion.setValue(done)
        self.conversion.setFormat(f"converting {model}: {what} %p%")
        self.status.showMessage(f"Converting {model} to ONNX (once): {what}")

    def rebuild(self) -> None:
        """A new pipeline from the current settings, then every source re-added."""
        self._generation += 1
        generation = self._generation
        settings = self.prefs.settings
        self.banner.action.setVisible(False)
        # the camera keeps showing (unswapped) while the models load or convert
        if self.preview.result is None:
            self.preview.set_message(f"Loading {settings.model}…")
        self.status.showMessage(f"Loading {settings.model} on {settings.engine}…")
        self.controller.set_active_hint(settings.active_source)
        self.worker.submit(
            "build pipeline", lambda: self.controller.build(settings),
            lambda runtime: self._built(generation, runtime),
            lambda exc, trace: self._build_failed(generation, exc, trace))
        self.sources.add_all(generation)

    def _built(self, generation: int, runtime: ctl.Runtime) -> None:
        if generation != self._generation:
            return
        self.backend = runtime.backend
        self.models_banner.names = ()
        self.models_banner.hide()
        self.conversion.hide()
        if self.preview.result is None:
            self.preview.set_message("Waiting for the first frame…")
        self.status_model.setText(f"{self.prefs.settings.model} · {runtime.backend}")
        self.status.showMessage(f"Running: {runtime.input_description}", 5000)
        self.built.emit(runtime.backend)
        self.outputs.pipeline_built()

    def _build_failed(self, generation: int, exc: BaseException, trace: str) -> None:
        if generation != self._generation:
            return
        log.debug("build failed:\n%s", trace)
        self.conversion.hide()
        if isinstance(exc, ctl.ModelsMissing):
            # a banner, not the dialog: a user who closed the dialog is not asked again
            self.status.showMessage("Waiting for models", 5000)
            self.models_banner.show_missing(exc.model, exc.names)
            if self.preview.result is None:
                self.preview.set_message(f"{exc}\nGet models… (above) downloads or "
                                         "imports them.")
            self.show_camera()
            return
        self.show_camera()
        self.status.showMessage("Not running", 5000)
        self.preview.set_message("Not running: " + first_line(exc))
        self.banner.show_message(f"Could not start: {readable(exc)}", restart=True)
        self.status_model.setText(f"{self.prefs.settings.model} · not running")

    # -- timers ---------------------------------------------------------------------------

    def _tick_preview(self) -> None:
        version, result = self.controller.preview()
        if version != self._preview_version and result is not None:
            self._preview_version = version
            self.preview.set_result(result)
            self.outputs.frame_shown()

    def _tick_stats(self) -> None:
        self.preview.set_hint(self.next_step())
        for message in self.controller.take_errors():
            restart = not self.controller.running or "thread failed" in message
            self.banner.show_message(message, restart=restart)
            self.outputs.error_reported(message)
        stats = self.controller.stats()
        if stats is None:
            return
        if self.memory_banner is not None:
            self.memory_banner.show_notice(stats.memory_notice)
        reconnecting = stats.source_state == "reconnecting"
        if reconnecting != self.outputs.camera_lost:
            self.outputs.camera_lost = reconnecting
            if reconnecting:
                self.banner.show_message(
                    f"Lost the camera ({self.prefs.settings.camera}); trying to reconnect…")
            self.outputs.update_badges()
        self.stats_label.setText(
            f"<b>{stats.fps:.1f}</b> fps &nbsp;·&nbsp; latency p50 <b>{stats.latency.p50:.0f}"
            f"</b> / p95 <b>{stats.latency.p95:.0f}</b> ms &nbsp;·&nbsp; drops "
            f"<b>{stats.total_drops}</b><br>faces {stats.faces} &nbsp;·&nbsp; swaps/s "
            f"{stats.swaps_per_s:.1f} ({stats.swap_mode or '-'})<br>"
            f"{self.prefs.settings.model} on {self.backend or '…'}"
            + enhancer_note(self.prefs.settings.enhance, self.controller.enhancer_status)
            + (f"<br>{stats.format_meter()}" if stats.identity is not None else ""))
        self.preview.set_face_badges(self.controller.faces.face_badges())
        self.chart.set_stages(stats.stage_p50())


def enhancer_note(enhance: str, status: str) -> str:
    """The stats line about the face enhancer while "Enhance face" is on: "preparing the
    enhancer…" during its build (frames are swapped without it), then its engine."""
    return f"<br>{status}" if enhance != "off" and status else ""
