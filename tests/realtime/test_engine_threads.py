"""Issue 25 item 2: the threads that open and build engines (the window's engine and probe
workers, the models dialog's, the enhancer's opener) each queue on a CUDA stream of their
own, never on the legacy default stream every thread shares (``tests.fake_cuda`` lists the
threads that queued there)."""

from __future__ import annotations

import pytest
from pytestqt.qtbot import QtBot

from realtime.frame.enhance import FaceEnhancer, LazyEnhancer
from realtime.frame.streams import written
from realtime.ui.workers import SerialWorker
from tests import fake_cuda
from tests.realtime.frame.test_enhance import IdentityGfpgan


def test_the_enhancer_opens_on_its_own_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: ``enhancer-open`` warmed up its engine on the default stream, so the frame's
    work on any thread without its own stream queued behind the build."""
    fake_cuda.install(monkeypatch)
    streams: list[int] = []

    def opener() -> FaceEnhancer:
        event = written()  # what an engine's build and warm-up queue
        streams.append(event.mark[0])
        return FaceEnhancer(IdentityGfpgan())

    lazy = LazyEnhancer(opener)
    assert lazy.wait(10) is not None
    assert streams and streams[0] != 0
    assert "enhancer-open" not in fake_cuda.default_stream_threads


def test_the_windows_engine_worker_runs_each_job_on_its_own_stream(
        qtbot: QtBot, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: a pipeline build (engine open, TensorRT warm-up) on ``swapcam-engine``
    queued on the default stream."""
    fake_cuda.install(monkeypatch)
    worker = SerialWorker("engine")
    done: list[int] = []
    try:
        for _ in range(2):
            worker.submit("build", lambda: written().mark[0], on_done=done.append)
        qtbot.waitUntil(lambda: len(done) == 2, timeout=5000)
    finally:
        worker.stop()
    assert 0 not in done and done[0] == done[1]  # one stream for the thread, made once
    assert "swapcam-engine" not in fake_cuda.default_stream_threads
