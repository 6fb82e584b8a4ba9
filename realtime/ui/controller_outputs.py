"""The controller's outputs: the virtual camera and the recorder, switched on the one
``SinkSwitch`` the pipeline writes to (toggling them never rebuilds it)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from realtime.config import Settings
from realtime.types import SwapResult
from realtime.ui.runtime import RecorderFactory, SinkFactory
from realtime.ui.sink_switch import SinkSwitch


class OutputSwitching:
    """The outputs the pipeline's one ``switch`` feeds; ``preview`` gives the newest
    frame (its size is the outputs' size before one was sent)."""

    def __init__(self, switch: SinkSwitch, vcam_factory: SinkFactory,
                 recorder_factory: RecorderFactory,
                 preview: Callable[[], tuple[int, SwapResult | None]]) -> None:
        self._switch = switch
        self._vcam_factory = vcam_factory
        self._recorder_factory = recorder_factory
        self._preview = preview
        self.recording_path: Path | None = None

    def set_virtual_camera(self, on: bool, settings: Settings) -> str:
        """Switch the virtual camera; returns its description. Raises when unavailable."""
        if not on:
            self._switch.detach("virtual camera")
            return "off"
        width, height = self._frame_size(settings)
        sink = self._vcam_factory(settings, width, height)
        self._switch.attach("virtual camera", sink)
        return sink.describe()

    @property
    def virtual_camera_on(self) -> bool:
        return self._switch.has("virtual camera")

    def start_recording(self, folder: Path, settings: Settings, path: Path | None = None) -> Path:
        """Record to ``path`` or to a new time-stamped file in ``folder``."""
        if path is None:
            path = folder / time.strftime("swapcam-%Y%m%d-%H%M%S.mkv")
        path.parent.mkdir(parents=True, exist_ok=True)
        width, height = self._frame_size(settings)
        self._switch.attach("recorder", self._recorder_factory(path, width, height,
                                                               settings.camera_fps))
        self.recording_path = path
        return path

    def stop_recording(self) -> Path | None:
        path, self.recording_path = self.recording_path, None
        self._switch.detach("recorder")
        return path

    @property
    def recording(self) -> bool:
        return self._switch.has("recorder")

    def stop(self) -> None:
        """Close every output (they flush); the controller shuts down."""
        self._switch.stop()
        self.recording_path = None

    def _frame_size(self, settings: Settings) -> tuple[int, int]:
        """(width, height) of the frames going out: last sent, newest preview, or asked."""
        if self._switch.last_size is not None:
            return self._switch.last_size
        _version, result = self._preview()
        if result is not None:
            return int(result.image.shape[1]), int(result.image.shape[0])
        return settings.camera_width, settings.camera_height
