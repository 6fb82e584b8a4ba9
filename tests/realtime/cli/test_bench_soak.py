"""``bench --soak``: the sampler and the verdict, on made-up series and on short real runs
of the live pipeline (passthrough model: seconds, not minutes), one with a leak that the
verdict must catch."""

from __future__ import annotations

import json
import mmap
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import main
from realtime.cli.bench_soak_faults import NullCameraBackend
from realtime.cli.bench_soak_verdict import Counters, Sample, Sampler, judge, process_figures


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def series(n: int = 30, every: float = 10.0, *, rss: float = 1000.0, rss_step: float = 0.0,
           fds: int = 20, fd_step: float = 0.0, threads: int = 16, thread_at: float | None = None,
           fps: float = 30.0, fps_end: float | None = None) -> list[Sample]:
    rows = []
    for i in range(1, n + 1):
        t = i * every
        frac = i / n
        rows.append(Sample(
            t=t, rss_mb=rss + rss_step * i, uss_mb=rss * 0.9, fds=fds + int(fd_step * i),
            threads=threads + (1 if thread_at is not None and t >= thread_at else 0),
            gc_objects=60000, device_mb=None,
            fps_in=fps, fps_out=fps if fps_end is None or frac < 0.5 else fps_end, drops=0,
            latency_p50_ms=50.0, latency_p95_ms=90.0, texture_age_p95_s=1.0,
            swaps_per_s=0.5))
    return rows


def test_flat_run_passes_with_its_figures() -> None:
    verdict = judge(series(), 300.0)
    assert verdict.ok, verdict.errors
    assert verdict.rss_growth == 0 and verdict.fds_growth == 0 and verdict.threads_growth == 0
    assert verdict.figures["fps_out_first_fifth"] == 30.0
    assert verdict.figures["rss_mb_after_warmup"] == 1000.0


def test_rss_growth_after_the_warmup_fails() -> None:
    # +0.2 % per sample: 3000 → ~+5.4 % from the 3rd sample (10 % of 300 s) to the 30th
    verdict = judge(series(rss_step=2.0), 300.0)
    assert not verdict.ok
    assert verdict.rss_growth is not None and verdict.rss_growth > 0.05
    assert any("RSS grew" in e for e in verdict.errors)
    # the same growth inside the warm-up only does not count
    early = [s if s.t >= 30 else Sample(**{**s.as_dict(), "rss_mb": 500.0})
             for s in series()]
    assert judge(early, 300.0).ok


def test_any_handle_or_thread_growth_fails() -> None:
    fds = judge(series(fd_step=0.1), 300.0)
    assert not fds.ok and fds.fds_growth == 3 and any("handles" in e for e in fds.errors)
    threads = judge(series(thread_at=200.0), 300.0)
    assert not threads.ok and threads.threads_growth == 1
    assert any("threads grew" in e for e in threads.errors)


def test_fps_falling_more_than_a_tenth_fails_but_a_fault_window_does_not() -> None:
    assert not judge(series(fps_end=26.0), 300.0).ok  # -13 %
    assert judge(series(fps_end=28.0), 300.0).ok  # -7 %
    rows = series()
    rows[-1] = Sample(**{**rows[-1].as_dict(), "fps_out": 2.0})  # a camera lost at the end
    assert not judge(rows, 300.0).ok
    assert judge(rows, 300.0, quiet=lambda s: s.t != rows[-1].t).ok


def test_errors_and_too_few_samples_fail() -> None:
    verdict = judge(series(), 300.0, errors=["worker error: boom"])
    assert not verdict.ok and verdict.errors == ["worker error: boom"]
    short = judge(series(n=1), 300.0)
    assert not short.ok and "too few samples" in short.errors[0]


def test_sampler_turns_totals_into_rates_per_window() -> None:
    figures = {"rss_mb": 1.0, "uss_mb": 1.0, "fds": 3, "threads": 2, "gc_objects": 5,
               "device_mb": None}
    sampler = Sampler(lambda: figures)
    sampler.start(0.0, Counters(0, 0, 0, 0, 0.0, 0.0))
    sampler.note_texture_ages([0.5] * 18 + [4.0] * 2)
    first = sampler.sample(10.0, Counters(300, 290, 5, 10, 40.0, 80.0))
    assert (first.fps_in, first.fps_out, first.swaps_per_s, first.drops) == (30.0, 29.0,
                                                                             0.5, 10)
    assert first.texture_age_p95_s == 4.0
    second = sampler.sample(15.0, Counters(400, 390, 5, 12, 41.0, 81.0))
    assert (second.fps_out, second.drops, second.swaps_per_s) == (20.0, 2, 0.0)
    assert second.texture_age_p95_s is None  # none noted in this window


def test_process_figures_are_this_process() -> None:
    import psutil

    before = process_figures()
    hold = mmap.mmap(-1, 64 * 2**20)  # 64 MB of fresh pages, touched
    hold.write(b"\1" * (64 * 2**20))
    files = [open(__file__, "rb") for _ in range(3)]  # noqa: SIM115
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        after = process_figures()
    finally:
        stop.set()
        thread.join()
        for f in files:
            f.close()
    assert after["rss_mb"] - before["rss_mb"] > 50 and hold[0] == 1
    assert after["fds"] - before["fds"] == 3
    assert after["threads"] - before["threads"] == 1
    assert after["threads"] == psutil.Process().num_threads() + 1
    assert before["device_mb"] is None or before["device_mb"] >= 0


LEAK_PER_FRAME = 4 * 2**20  # a loaded machine may pass only a few frames in 8 s


class LeakySink:
    """A sink that keeps every frame it is sent: the leak the verdict must catch."""

    name = "leaky"

    def __init__(self) -> None:
        self.kept: list[mmap.mmap] = []
        self.error = None

    def start(self) -> None:
        pass

    def send(self, image: np.ndarray, captured_ns: int) -> None:
        # fresh anonymous pages, written: RSS grows whatever the heap already holds free
        # (a copy could reuse memory freed earlier in this worker and grow nothing)
        page = mmap.mmap(-1, LEAK_PER_FRAME)
        page.write(image.tobytes()[:LEAK_PER_FRAME].ljust(LEAK_PER_FRAME, b"\1"))
        self.kept.append(page)

    def stop(self) -> None:
        pass

    def describe(self) -> str:
        return "leaky sink"


def soak_args(tmp_path: Path, seconds: float, *extra: str) -> Any:
    import argparse

    from realtime.cli.bench import configure_parser

    parser = argparse.ArgumentParser()
    configure_parser(parser)
    parser.add_argument("--models-dir", default=str(tmp_path / "models"))
    args = parser.parse_args(["--soak", str(seconds), "--model", "passthrough",
                              "--sample-every", "1", "--fps", "15",
                              "--json", str(tmp_path / "soak.json"), *extra])
    return args


def run(args: Any, extra_sinks: tuple[Any, ...] = ()) -> tuple[int, dict[str, Any]]:
    from realtime.cli.bench import _source_photo, ensure_models, machine_info
    from realtime.cli.bench_soak import run_soak

    code = run_soak(args, ensure_models=ensure_models, source_photo=_source_photo,
                    machine_info=machine_info, extra_sinks=extra_sinks)
    return code, json.loads(args.json.read_text())


@pytest.mark.timeout(240)
def test_short_real_run_samples_and_a_leak_fails_it(tmp_path: Path) -> None:
    code, clean = run(soak_args(tmp_path, 8))
    samples = clean["samples"]
    assert len(samples) >= 6
    assert set(samples[0]) == {"t", "rss_mb", "uss_mb", "fds", "threads", "gc_objects",
                               "device_mb", "fps_in", "fps_out", "drops", "latency_p50_ms",
                               "latency_p95_ms", "texture_age_p95_s", "swaps_per_s"}
    assert all(s["fps_out"] > 3 for s in samples[1:])  # frames flowed through every window
    v = clean["verdict"]
    # 8 s leave a 0.8 s warm-up: the detector's first runs still grow memory a little
    # (the hour's warm-up is 6 minutes), so the clean run is the leak's yardstick here
    assert v["fds_growth"] <= 0 and v["threads_growth"] <= 0, v
    assert not any("handles" in e or "threads" in e for e in v["errors"])
    assert clean["run"]["recording_frames"]["played"] > 0
    assert set(clean["verdict"]) >= {"ok", "rss_growth", "fds_growth", "threads_growth",
                                     "fps_out_drop", "errors"}
    assert code == (0 if v["ok"] else 1)
    import pyvirtualcam.camera  # the soak's null device is not left for later cameras

    assert NullCameraBackend.NAME not in pyvirtualcam.camera.BACKENDS

    leaky = LeakySink()  # 4 MB per frame: far over 5 % in 8 s even at a few fps
    code, leaked = run(soak_args(tmp_path, 8), extra_sinks=(leaky,))
    assert code == 1 and not leaked["verdict"]["ok"]
    assert any("RSS grew" in e for e in leaked["verdict"]["errors"]), leaked["verdict"]
    assert leaked["verdict"]["rss_growth"] > max(0.05, 3 * v["rss_growth"])
    assert len(leaky.kept) > 50
    # the growth is the leak's size, in MB (a fraction depends on the worker's RSS at
    # the start: 2.5 GB on a busy worker): at least half of what was kept between the
    # first and last samples, at the run's mean rate
    first, last = leaked["samples"][0], leaked["samples"][-1]
    kept_mb = len(leaky.kept) * LEAK_PER_FRAME / 2**20 * (last["t"] - first["t"]) / 8
    assert last["rss_mb"] - first["rss_mb"] > 0.5 * kept_mb, (first, last, len(leaky.kept))


def test_plot_is_written_and_bad_arguments_are_refused(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from realtime.cli.bench_soak_plot import plot_soak

    report = {"samples": [s.as_dict() for s in series()],
              "faults": [{"t": 120.0, "kind": "camera_lost", "message": "m",
                          "recovered_s": 1.2, "ok": True}],
              "verdict": judge(series(), 300.0).as_dict(), "run": {"seconds": 300.0}}
    out = tmp_path / "plot.png"
    plot_soak(report, out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
    with pytest.raises(SystemExit):
        main.main(["bench", "--soak", "abc"])
    with pytest.raises(ValueError, match="--soak and --sample-every must be > 0"):
        run(soak_args(tmp_path, 0))


def test_sigterm_ends_the_soak_early_with_its_report(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "soak.json"
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    command = [sys.executable, str(Path(main.__file__).resolve()), "bench", "--soak", "120",
               "--model", "passthrough", "--sample-every", "1", "--fps", "15",
               "--json", str(out)]
    log = tmp_path / "soak.log"
    with open(log, "wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 90
        while log.read_text(errors="replace").count(" s  rss ") < 3:
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        process.send_signal(signal.SIGTERM)
        code = process.wait(60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    report = json.loads(out.read_text())
    assert code in (0, 1) and report["run"]["seconds"] < 60
    assert any("ended early" in w for w in report["run"]["warnings"])
    assert report["run"]["recording_frames"]["played"] > 0  # the recording was closed
