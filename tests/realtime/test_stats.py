"""Sliding-window stage statistics, rates and the stats line."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from realtime.stats import PipelineStats, RateCounter, StatsRecorder, Summary, summarize


def test_summarize_percentiles() -> None:
    values = list(range(1, 101))
    s = summarize(values)
    assert s.p50 == pytest.approx(np.percentile(values, 50))
    assert s.p95 == pytest.approx(95.05)
    assert s.p99 == pytest.approx(99.01)
    assert s.count == 100
    assert summarize([]).count == 0


def test_stage_window_is_bounded() -> None:
    rec = StatsRecorder(window=10)
    for i in range(100):
        rec.add_stage("swap", float(i))
    s = rec.stage("swap")
    assert s.count == 10
    assert s.p50 == pytest.approx(94.5)  # only the last ten: 90..99


def test_rate_counter_steady_and_stalled() -> None:
    c = RateCounter(window_s=2.0)
    for i in range(60):
        c.tick(now=i / 30.0)
    assert c.rate(now=59 / 30.0) == pytest.approx(30.0, rel=0.01)
    # a stream that stopped decays to zero once its events leave the window
    assert c.rate(now=59 / 30.0 + 1.0) < 20.0
    assert c.rate(now=59 / 30.0 + 3.0) == 0.0
    assert c.total == 60


def test_snapshot_orders_stages_and_formats_a_line() -> None:
    rec = StatsRecorder()
    rec.add_stages({"swap": 5.0, "detect": 2.0, "custom": 1.0})
    rec.add_latency(40.0)
    for _ in range(3):
        rec.tick("in")
        rec.tick("out")
    snap = rec.snapshot(drops={"capture": 4}, swap_mode="sync", faces=1)
    assert list(snap.stages) == ["detect", "swap", "custom"]
    assert snap.frames_in == 3
    assert snap.latency.p50 == 40.0
    line = snap.format_line()
    assert "capture=4" in line and "swap=5.0" in line and "latency p50 40" in line


def test_recorder_is_thread_safe() -> None:
    rec = StatsRecorder(window=1000)

    def work() -> None:
        for i in range(500):
            rec.add_stage("s", float(i))
            rec.tick("in")

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert rec.total("in") == 2000
    assert rec.stage("s").count == 1000


def test_rare_events_get_a_long_window() -> None:
    """A CPU swap every 1.25 s must read 0.8/s, not 0 (too few events in 2 s)."""
    c = RateCounter(window_s=StatsRecorder.RATE_WINDOWS_S["swap"])
    for i in range(12):
        c.tick(now=i * 1.25)
    assert c.rate(now=11 * 1.25 + 0.9) == pytest.approx(0.8, rel=0.01)
    assert RateCounter(window_s=2.0).rate(now=0.0) == 0.0


def test_status_bar_figures() -> None:
    stats = PipelineStats(fps_out=24.5, fps_processed=26.0,
                          latency=Summary(p50=41.0, p95=77.0, count=9),
                          drops={"capture": 3, "output": 4},
                          stages={"detect": Summary(p50=6.5, count=9),
                                  "swap": Summary(p50=30.0, count=9),
                                  "track": Summary(count=0)})
    assert stats.fps == 24.5 and stats.total_drops == 7
    assert stats.stage_p50() == {"detect": 6.5, "swap": 30.0}  # stages that never ran left out
    starting = PipelineStats(fps_processed=12.0)  # nothing delivered yet
    assert starting.fps == 12.0 and starting.total_drops == 0 and starting.stage_p50() == {}


def test_the_stats_line_names_flow_fallbacks_only_when_there_are_some() -> None:
    from realtime.stats import PipelineStats

    assert "fallbacks" not in PipelineStats().format_line()
    assert "flow fallbacks 3" in PipelineStats(texture_fallbacks=3).format_line()
