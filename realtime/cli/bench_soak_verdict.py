"""``bench --soak``: what one sample holds, how samples are taken, and the verdict.

A sample is one row of the soak's time series: the process's memory (RSS and USS from
psutil), open file handles, OS threads, objects the garbage collector tracks, device
memory on a GPU, and the pipeline's figures over the window since the previous sample
(fps in/out, drops, latency p50/p95, texture age p95, swaps per second).

The verdict reads only the samples and the run's errors, so it is tested on made-up
series (a leak that must fail) as well as on real short runs.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

# The verdict's limits (issue 27): growth after the warm-up (the first tenth of the run).
WARMUP_FRACTION = 0.10
RSS_GROWTH_LIMIT = 0.05
FPS_DROP_LIMIT = 0.10


@dataclass(frozen=True)
class Sample:
    t: float  # seconds since the run started
    rss_mb: float
    uss_mb: float
    fds: int
    threads: int
    gc_objects: int
    device_mb: float | None
    fps_in: float
    fps_out: float
    drops: int  # frames dropped in this window, every handoff and sink together
    latency_p50_ms: float
    latency_p95_ms: float
    texture_age_p95_s: float | None
    swaps_per_s: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Counters:
    """The pipeline's running totals at one moment (read by the run, turned into rates
    per window by :class:`Sampler`)."""

    frames_in: int
    frames_out: int
    swaps: int
    drops: int
    latency_p50_ms: float
    latency_p95_ms: float


def process_figures() -> dict[str, Any]:
    """This process's memory, handles, threads and GC objects, and device memory when
    torch is already in use on a GPU (never imported for this)."""
    import psutil

    proc = psutil.Process()
    mem = proc.memory_full_info()
    fds = proc.num_fds() if hasattr(proc, "num_fds") else proc.num_handles()
    return {"rss_mb": mem.rss / 2**20, "uss_mb": mem.uss / 2**20, "fds": int(fds),
            "threads": int(proc.num_threads()), "gc_objects": len(gc.get_objects()),
            "device_mb": _device_mb()}


def _device_mb() -> float | None:
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    try:
        if not torch.cuda.is_available() or not torch.cuda.is_initialized():
            return None
        return float(torch.cuda.memory_allocated()) / 2**20
    except Exception:  # a broken driver is a figure we lack, not a failure of the run
        return None


def percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))])


class Sampler:
    """Turns running totals and process figures into one :class:`Sample` per call.
    ``texture_ages`` collected between samples (seconds) give the window's p95."""

    def __init__(self, figures: Callable[[], dict[str, Any]] = process_figures) -> None:
        self._figures = figures
        self._last: tuple[float, Counters] | None = None
        self._ages: list[float] = []
        self.samples: list[Sample] = []

    def start(self, t: float, counters: Counters) -> None:
        self._last = (t, counters)

    def note_texture_ages(self, ages: Sequence[float]) -> None:
        self._ages.extend(ages)

    def sample(self, t: float, counters: Counters) -> Sample:
        if self._last is None:
            raise RuntimeError("Sampler.sample before start")
        t0, c0 = self._last
        dt = max(t - t0, 1e-6)
        age = percentile(self._ages, 95)
        row = Sample(
            t=round(t, 2), **self._figures(),
            fps_in=(counters.frames_in - c0.frames_in) / dt,
            fps_out=(counters.frames_out - c0.frames_out) / dt,
            drops=max(0, counters.drops - c0.drops),
            latency_p50_ms=counters.latency_p50_ms, latency_p95_ms=counters.latency_p95_ms,
            texture_age_p95_s=None if age is None else round(age, 3),
            swaps_per_s=(counters.swaps - c0.swaps) / dt)
        self._last = (t, counters)
        self._ages = []
        self.samples.append(row)
        return row


@dataclass
class Verdict:
    ok: bool
    rss_growth: float | None
    fds_growth: int | None
    threads_growth: int | None
    fps_out_drop: float | None
    errors: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _mean(rows: Sequence[Sample], key: str) -> float | None:
    values = [float(getattr(r, key)) for r in rows]
    return sum(values) / len(values) if values else None


def judge(samples: Sequence[Sample], duration: float, errors: Sequence[str] = (),
          quiet: Callable[[Sample], bool] = lambda s: True) -> Verdict:
    """Pass/fail over a run of ``duration`` seconds.

    Fails on: RSS growth after the warm-up > 5 %; any growth of file handles or threads
    after the warm-up (at the end, when every fault is over); output fps falling > 10 %
    between the first and the last fifth; any error given. ``quiet(sample)`` is False
    for samples whose window held a fault: they do not count for fps (a camera lost for
    5 s lowers that window's fps on purpose)."""
    errors = list(errors)
    warm = [s for s in samples if s.t >= WARMUP_FRACTION * duration]
    if len(warm) < 2:
        errors.append(f"too few samples after the warm-up ({len(warm)}): run longer")
        return Verdict(False, None, None, None, None, errors)
    base, last = warm[0], warm[-1]
    rss_growth = (last.rss_mb - base.rss_mb) / base.rss_mb
    fds_growth = last.fds - base.fds
    threads_growth = last.threads - base.threads
    first = [s for s in warm if s.t <= 0.2 * duration and quiet(s)] or \
        [s for s in warm[:2] if quiet(s)] or warm[:1]
    final = [s for s in warm if s.t >= 0.8 * duration and quiet(s)] or warm[-1:]
    fps_first, fps_last = _mean(first, "fps_out"), _mean(final, "fps_out")
    fps_drop = 0.0 if not fps_first else max(0.0, (fps_first - (fps_last or 0.0)) / fps_first)
    if rss_growth > RSS_GROWTH_LIMIT:
        errors.append(f"RSS grew {rss_growth:.1%} after the warm-up ({base.rss_mb:.0f} → "
                      f"{last.rss_mb:.0f} MB; limit {RSS_GROWTH_LIMIT:.0%})")
    if fds_growth > 0:
        errors.append(f"open file handles grew by {fds_growth} after the warm-up "
                      f"({base.fds} → {last.fds})")
    if threads_growth > 0:
        errors.append(f"threads grew by {threads_growth} after the warm-up "
                      f"({base.threads} → {last.threads})")
    if fps_drop > FPS_DROP_LIMIT:
        errors.append(f"output fps fell {fps_drop:.1%} between the first and last fifth "
                      f"({fps_first:.1f} → {fps_last:.1f}; limit {FPS_DROP_LIMIT:.0%})")
    figures = {
        "rss_mb_after_warmup": round(base.rss_mb, 1), "rss_mb_end": round(last.rss_mb, 1),
        "fds_after_warmup": base.fds, "fds_end": last.fds,
        "threads_after_warmup": base.threads, "threads_end": last.threads,
        "fps_out_first_fifth": _round(fps_first), "fps_out_last_fifth": _round(fps_last),
        "latency_p95_ms_first_fifth": _round(_mean(first, "latency_p95_ms")),
        "latency_p95_ms_last_fifth": _round(_mean(final, "latency_p95_ms")),
    }
    return Verdict(not errors, round(rss_growth, 4), fds_growth, threads_growth,
                   round(fps_drop, 4), errors, figures)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


