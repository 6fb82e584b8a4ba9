"""What one build makes (``Runtime``) and the shapes the controller relies on.

The pipeline and the source bank are seen through small protocols, so the window's
tests run a fake graph; the real one is built in ``realtime.ui.runtime_build``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from realtime.config import Settings
from realtime.stats import PipelineStats
from realtime.types import SourceFace, SwapResult
from realtime.ui.sink_switch import Sink

# The identity encoder each swapper needs: a missing one is as fatal as the swapper.
REQUIRED_MODELS: dict[str, tuple[str, ...]] = {
    "simswap-224": ("simswap-224", "arcface-simswap"),
    "simswap-512": ("simswap-512", "arcface-simswap"),
    "inswapper-128": ("inswapper-128", "arcface-w600k"),
}


class ModelsMissing(RuntimeError):
    """The chosen model (or its identity encoder) is not installed; ``names`` lists them."""

    def __init__(self, model: str, names: Sequence[str]) -> None:
        self.model = model
        self.names = tuple(names)
        super().__init__(
            f"{model} needs model files that are not installed: {', '.join(self.names)}"
        )


class NotRunning(RuntimeError):
    """A source was edited while no pipeline exists (it is retried after the next build)."""


class PipelineLike(Protocol):
    @property
    def source_index(self) -> int: ...
    def start(self) -> None: ...
    def stop(self, timeout: float = 1.0, *, raise_error: bool = True) -> None: ...
    def select_source(self, index: int) -> None: ...
    def set_swap_enabled(self, enabled: bool) -> None: ...
    def update_settings(self, settings: Settings) -> None: ...
    def stats(self) -> PipelineStats: ...
    def preview(self) -> tuple[int, SwapResult | None]: ...


class BankLike(Protocol):
    @property
    def sources(self) -> tuple[SourceFace, ...]: ...
    def add(self, paths: Sequence[Path], name: str | None = None) -> SourceFace: ...
    def remove(self, index: int) -> SourceFace: ...
    def rename(self, index: int, name: str) -> SourceFace: ...


@dataclass
class Runtime:
    """What one build made: the running graph and the parts the UI reports on."""

    pipeline: PipelineLike
    bank: BankLike
    backend: str  # the engine the swapper runs on, e.g. "onnxruntime-cpu"
    input_description: str
    closers: list[Callable[[], None]] = field(default_factory=list)
    preview_only: bool = False  # the camera without models (camera_runtime)
    # the face enhancer's state line ("preparing the enhancer…"; "" when there is none)
    enhancer_status: Callable[[], str] = field(default=lambda: "")


BuildFn = Callable[[Settings, Path, Path, Sink], Runtime]
SinkFactory = Callable[[Settings, int, int], Sink]
RecorderFactory = Callable[[Path, int, int, float], Sink]

