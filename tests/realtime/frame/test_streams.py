"""realtime.frame.streams and swap_timing on tests.fake_cuda, and the double's own controls:
what it must refuse or count for the pipeline's budgets to mean anything (issue 25)."""

from __future__ import annotations

import threading
from collections import Counter

import numpy as np
import pytest
import torch

from realtime.frame.streams import adopt, own_stream, stream_key, tensors_of, written
from realtime.frame.swap_timing import SwapTimer
from tests import fake_cuda


def _thread(name: str, fn: object) -> None:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            fn()  # type: ignore[operator]
        except BaseException as exc:  # handed to the test thread
            errors.append(exc)

    thread = threading.Thread(target=run, name=name)
    thread.start()
    thread.join(10)
    if errors:
        raise errors[0]


def test_a_read_on_a_stream_that_did_not_wait_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_cuda.install(monkeypatch)
    writer, reader = torch.cuda.Stream(), torch.cuda.Stream()
    with torch.cuda.stream(writer):
        made = torch.zeros(4) + 1
        done = torch.cuda.Event()
        done.record(writer)
    with torch.cuda.stream(reader), pytest.raises(fake_cuda.StreamOrderError):
        made * 2
    with torch.cuda.stream(reader):
        reader.wait_event(done)
        assert float((made * 2).sum()) == 8.0


def test_the_default_stream_is_shared_and_a_host_wait_there_waits_for_every_thread(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Two threads with no stream of their own: an engine launch queued by one through the
    legacy default stream is waited for by the other's download (a cross-thread wait)."""
    fake_cuda.install(monkeypatch)
    engine = torch.cuda.Stream()

    def worker() -> None:
        fake_cuda.enqueue(engine.cuda_stream, lambda: None, ms=30.0)
        torch.cuda.current_stream().wait_stream(engine)  # run_torch's ordering

    _thread("worker", worker)
    _thread("frame", lambda: torch.zeros(3).cpu())
    assert fake_cuda.default_stream_threads == {"worker", "frame"}
    assert fake_cuda.cross_waits == [("frame", "worker")]
    assert fake_cuda.thread_waits("frame") == Counter({"Tensor.cpu": 1})


def test_own_streams_keep_each_threads_host_waits_to_itself(
        monkeypatch: pytest.MonkeyPatch) -> None:
    fake_cuda.install(monkeypatch)
    engine = torch.cuda.Stream()
    seen: list[int] = []

    def worker() -> None:
        with own_stream() as mine:
            assert mine is not None and stream_key() == mine.cuda_stream
            seen.append(mine.cuda_stream)
            fake_cuda.enqueue(engine.cuda_stream, lambda: None, ms=30.0)
            torch.cuda.current_stream().wait_stream(engine)

    _thread("worker", worker)

    def frame() -> None:
        with own_stream() as mine:
            seen.append(mine.cuda_stream)
            torch.zeros(3).cpu()

    _thread("frame", frame)
    assert len(set(seen)) == 2 and 0 not in seen
    assert fake_cuda.default_stream_threads == set()
    assert fake_cuda.cross_waits == []


def test_adopt_orders_the_reader_and_records_the_tensors(
        monkeypatch: pytest.MonkeyPatch) -> None:
    fake_cuda.install(monkeypatch)
    writer, reader = torch.cuda.Stream(), torch.cuda.Stream()
    with torch.cuda.stream(writer):
        crop = torch.ones(2, 2, 3) * 3
        event = written()
    with torch.cuda.stream(reader):
        adopt(event, tensors_of([crop, None]))
        assert float(crop.sum()) == 36.0
    assert fake_cuda.recorded == [(threading.current_thread().name, reader.cuda_stream)]
    adopt(None, [crop])  # the host path: nothing to order
    assert len(fake_cuda.recorded) == 1


def test_no_cuda_means_no_streams_and_no_events() -> None:
    assert not torch.cuda.is_available()
    with own_stream() as mine:
        assert mine is None
    assert written() is None and stream_key() == 0


def test_the_swap_timer_reads_gpu_time_once_done_and_never_waits(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The frame thread's timer: the launch took no wall time worth a frame, the GPU 40 ms;
    the reading comes once a host wait (the frame's download) completed the work. Before
    (the wall clock around the call) it read the launch."""
    fake_cuda.install(monkeypatch)
    engine = torch.cuda.Stream()
    timer = SwapTimer(on_device=True)
    with own_stream():
        timing = timer.begin()
        fake_cuda.enqueue(engine.cuda_stream, lambda: None, ms=40.0)
        torch.cuda.current_stream().wait_stream(engine)
        timer.end(timing)
        assert timer.done() == []  # still running: no reading, no wait
        assert fake_cuda.thread_waits(threading.current_thread().name) == Counter()
        torch.zeros(2).cpu()  # the frame's download
        assert timer.done() == [40.0]
        assert timer.done() == []


def test_elapsed_time_refuses_what_cuda_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_cuda.install(monkeypatch)
    plain, timed = torch.cuda.Event(), torch.cuda.Event(enable_timing=True)
    with pytest.raises(RuntimeError, match="enable_timing"):
        plain.elapsed_time(timed)
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    stream = torch.cuda.Stream()
    start.record(stream)
    fake_cuda.enqueue(stream.cuda_stream, lambda: None, ms=5.0)
    end.record(stream)
    with pytest.raises(RuntimeError, match="not ready"):
        start.elapsed_time(end)
    fake_cuda.gpu_catches_up()
    assert start.elapsed_time(end) == 5.0


def test_device_reads_and_implicit_syncs_are_counted_per_kind(
        monkeypatch: pytest.MonkeyPatch) -> None:
    fake_cuda.install(monkeypatch)
    device = torch.arange(6.0)
    host = torch.from_numpy(np.arange(6.0))
    device.numpy()
    device.item() if device.numel() == 1 else device[:1].item()
    device.tolist()
    device.to("cpu")
    bool(device[0])
    device.nonzero()
    torch.masked_select(device, device > 2)
    device[device > 2]
    torch.unique(device)
    torch.equal(device, device)
    device.pin_memory()
    host.numpy()
    host.cpu()  # host tensors: no wait
    counts = fake_cuda.thread_waits(threading.current_thread().name)
    assert counts == Counter({
        "Tensor.numpy": 1, "Tensor.item": 1, "Tensor.tolist": 1, 'Tensor.to("cpu")': 1,
        "Tensor.__bool__": 1, "nonzero (implicit sync)": 1, "masked_select (implicit sync)": 1,
        "boolean-mask indexing": 1, "unique (implicit sync)": 1, "equal (implicit sync)": 1,
        "pin_memory": 1}), counts
