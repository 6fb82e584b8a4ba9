"""Sliding-window timing statistics for the live pipeline.

Every stage adds its milliseconds to a bounded window; rates count events within the
last few seconds; a snapshot gives p50/p95/p99 per stage, fps in/out, drops per
handoff and end-to-end latency (capture timestamp → the sink accepted the frame).
All methods are thread-safe: workers write, the UI or CLI reads.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

STAGES: tuple[str, ...] = ("capture", "detect", "track", "align", "swap", "composite", "sink")


@dataclass(frozen=True)
class Summary:
    """Percentiles in milliseconds over the window; ``count`` samples in it."""

    p50: float = 0.0
    p95: float = 0.0
    p99: float = 0.0
    mean: float = 0.0
    count: int = 0


@dataclass(frozen=True)
class PipelineStats:
    """One snapshot of the pipeline's health, cheap to make and to display."""

    fps_in: float = 0.0
    fps_out: float = 0.0
    fps_processed: float = 0.0
    swaps_per_s: float = 0.0  # swapped-texture refresh rate
    stages: dict[str, Summary] = field(default_factory=dict)
    latency: Summary = Summary()
    drops: dict[str, int] = field(default_factory=dict)
    frames_in: int = 0
    frames_out: int = 0
    faces: int = 0
    swap_mode: str = ""
    source_name: str | None = None
    source_state: str = ""
    reconnects: int = 0
    error: str | None = None
    # the identity meter (None: off, or nothing measured lately): cosines and the
    # landmark distance over the inter-ocular distance, mean over the faces measured
    identity: float | None = None
    identity_before: float | None = None
    keep: float | None = None
    meter_encoder: str = ""
    # frames whose texture flow could not be used (not finite): the plain texture showed
    texture_fallbacks: int = 0
    # what running out of GPU memory took away (smaller batches, models off), or None
    memory_notice: str | None = None

    @property
    def fps(self) -> float:
        """The rate a viewer sees: frames out, or processed ones before any went out."""
        return self.fps_out or self.fps_processed

    @property
    def total_drops(self) -> int:
        return sum(self.drops.values())

    def stage_p50(self) -> dict[str, float]:
        """p50 milliseconds of each stage that ran in the window."""
        return {name: s.p50 for name, s in self.stages.items() if s.count}

    def format_line(self) -> str:
        """One human line: fps, drops, latency and the p50 of each stage that ran."""
        drops = " ".join(f"{k}={v}" for k, v in self.drops.items())
        stages = " ".join(
            f"{name}={s.p50:.1f}" for name, s in self.stages.items() if s.count
        )
        return (
            f"fps in {self.fps_in:5.1f} out {self.fps_out:5.1f} | swaps/s {self.swaps_per_s:4.2f}"
            f" ({self.swap_mode}) | faces {self.faces} | drops {drops or '-'}"
            f" | latency p50 {self.latency.p50:.0f} p95 {self.latency.p95:.0f} ms"
            f" | p50 ms {stages or '-'}"
            + (f" | flow fallbacks {self.texture_fallbacks}" if self.texture_fallbacks else "")
            + (f" | {self.memory_notice}" if self.memory_notice else "")
        ) + self.format_meter(" | ")

    def format_meter(self, prefix: str = "") -> str:
        """``"identity 63/100 (before 12) keep 0.04 [arcface-w600k]"`` or ``""``."""
        if self.identity is None:
            return ""
        text = f"{prefix}identity {_score(self.identity)}/100"
        if self.identity_before is not None:
            text += f" (before {_score(self.identity_before)})"
        if self.keep is not None:
            text += f" keep {self.keep:.2f}"
        return text + (f" [{self.meter_encoder}]" if self.meter_encoder else "")


def _score(cosine: float) -> int:
    return round(max(0.0, min(1.0, cosine)) * 100)


def meter_fields(quality: Any) -> dict[str, Any]:
    """The identity meter's summary (or None: off) as ``PipelineStats`` fields."""
    if quality is None:
        return {}
    encoder = quality.encoder + ("" if quality.independent else " (the swap's own encoder)")
    return {"identity": quality.identity, "identity_before": quality.before,
            "keep": quality.keep, "meter_encoder": encoder}


def summarize(samples: Sequence[float] | np.ndarray) -> Summary:
    """Percentiles of a list of milliseconds (zeros when empty)."""
    if len(samples) == 0:
        return Summary()
    values = np.asarray(samples, dtype=np.float64)
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return Summary(float(p50), float(p95), float(p99), float(values.mean()), int(values.size))


class RateCounter:
    """Events per second over the last ``window_s`` seconds."""

    def __init__(self, window_s: float = 2.0) -> None:
        self.window_s = window_s
        self._times: deque[float] = deque()
        self.total = 0

    def tick(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self._times.append(now)
        self.total += 1
        self._trim(now)

    def rate(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        self._trim(now)
        if len(self._times) < 2:
            return 0.0
        first, last = self._times[0], self._times[-1]
        interval = (last - first) / (len(self._times) - 1)
        # A steady stream: events over the span they cover. A stalled stream (no event
        # for two usual intervals) decays: the span is stretched to "now".
        span = last - first if now - last <= 2.0 * interval else now - first
        return (len(self._times) - 1) / max(span, 1e-6)

    def _trim(self, now: float) -> None:
        while self._times and now - self._times[0] > self.window_s:
            self._times.popleft()


class StatsRecorder:
    """Collects stage times, latencies and event rates from several threads."""

    # Rare events need a longer window to show a rate (a CPU swap lands every ~1-2 s).
    RATE_WINDOWS_S: ClassVar[dict[str, float]] = {"swap": 10.0}

    def __init__(self, window: int = 300, rate_window_s: float = 2.0) -> None:
        self._lock = threading.Lock()
        self._window = window
        self._rate_window_s = rate_window_s
        self._stages: dict[str, deque[float]] = {}
        self._latency: deque[float] = deque(maxlen=window)
        self._rates: dict[str, RateCounter] = {}

    def add_stage(self, name: str, ms: float) -> None:
        with self._lock:
            window = self._stages.get(name)
            if window is None:
                window = self._stages[name] = deque(maxlen=self._window)
            window.append(float(ms))

    def add_stages(self, timings: dict[str, float]) -> None:
        for name, ms in timings.items():
            self.add_stage(name, ms)

    def add_latency(self, ms: float) -> None:
        with self._lock:
            self._latency.append(float(ms))

    def tick(self, name: str) -> None:
        """Count one event (``"in"``, ``"out"``, ``"processed"``, ``"swap"``)."""
        with self._lock:
            counter = self._rates.get(name)
            if counter is None:
                window_s = self.RATE_WINDOWS_S.get(name, self._rate_window_s)
                counter = self._rates[name] = RateCounter(window_s)
            counter.tick()

    def rate(self, name: str) -> float:
        with self._lock:
            counter = self._rates.get(name)
            return 0.0 if counter is None else counter.rate()

    def total(self, name: str) -> int:
        with self._lock:
            counter = self._rates.get(name)
            return 0 if counter is None else counter.total

    def stage(self, name: str) -> Summary:
        with self._lock:
            return summarize(list(self._stages.get(name, ())))

    def reset(self) -> None:
        """Forget everything (e.g. after a warm-up period)."""
        with self._lock:
            self._stages.clear()
            self._latency.clear()
            self._rates.clear()

    def snapshot(self, **extra: object) -> PipelineStats:
        """A :class:`PipelineStats`; ``extra`` fills the fields the recorder cannot know."""
        with self._lock:
            stage_samples = {name: list(values) for name, values in self._stages.items()}
            latency = list(self._latency)
            rates = {name: (c.rate(), c.total) for name, c in self._rates.items()}
        ordered = [s for s in STAGES if s in stage_samples] + sorted(
            s for s in stage_samples if s not in STAGES
        )
        return PipelineStats(
            fps_in=rates.get("in", (0.0, 0))[0],
            fps_out=rates.get("out", (0.0, 0))[0],
            fps_processed=rates.get("processed", (0.0, 0))[0],
            swaps_per_s=rates.get("swap", (0.0, 0))[0],
            stages={name: summarize(stage_samples[name]) for name in ordered},
            latency=summarize(latency),
            frames_in=rates.get("in", (0.0, 0))[1],
            frames_out=rates.get("out", (0.0, 0))[1],
            **extra,  # type: ignore[arg-type]
        )
