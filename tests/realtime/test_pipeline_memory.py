"""Issue 25 item 5: running out of GPU memory anywhere in the frame path costs a smaller
batch, then a model (enhancer, parser: the box mask), then a frame shown unswapped, with a
notice for the window and the headless stats line; never the end of the session.

The real pipeline threads on the CPU device, the generator on the strict TensorRT double
(``tests.realtime.test_pipeline_gpu``'s setup), the out-of-memory errors injected."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import torch

from engines.base import EngineError
from realtime.config import Settings
from realtime.io.clip import ClipSource
from realtime.io.sinks import NullSink
from realtime.pipeline import Pipeline
from realtime.session import passthrough_source
from tests.realtime.frame.test_process_torch import _trt_processor
from tests.realtime.test_pipeline_gpu import FAMILY, detector  # noqa: F401 (fixture)


def _run_until(pipe: Pipeline, done: Any, seconds: float = 25.0) -> None:
    pipe.start()
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not done():
            time.sleep(0.05)
            pipe.check()  # before: the WorkerError of the out-of-memory error raised here
    finally:
        pipe.stop()
        pipe.wait_stopped()


def test_generator_out_of_memory_at_every_batch_keeps_the_session_with_a_notice(
        detector: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """Two faces: the generator runs out of memory at two rows (→ one a call), then once
    at one row (→ the parser off, that frame unswapped), then fits. The session goes on
    swapping, and the stats carry the notice. Before: the OutOfMemoryError at one row was
    an EngineError that stopped the pipeline."""
    dev = _trt_processor(tmp_path, monkeypatch, "parsing")
    engine, plain = dev._engine, dev._engine.run_torch
    rows_seen: list[int] = []

    def tight(feeds: Any) -> Any:
        rows = int(feeds["target"].shape[0])
        rows_seen.append(rows)
        if rows >= 2 or rows_seen.count(1) == 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return plain(feeds)

    engine.run_torch = tight  # type: ignore[method-assign]
    settings = Settings(swap_mode="sync", mask="parsing", faces="all", quality_meter=False,
                        color_match=False)
    pipe = Pipeline(ClipSource(640, 480, fps=20, faces=2), dev, detector,
                    (passthrough_source(FAMILY),), [NullSink()], settings)
    swapped = [0]
    plain_composite = dev.composite

    def counting(*args: Any) -> Any:
        swapped[0] += 1
        return plain_composite(*args)

    dev.composite = counting  # type: ignore[method-assign]
    _run_until(pipe, lambda: swapped[0] >= 3)
    assert pipe.error is None
    assert swapped[0] >= 3, rows_seen  # frames swapped after the out-of-memory errors
    assert rows_seen[:2] == [2, 1] and set(rows_seen[2:]) == {1}, rows_seen
    assert dev.parser is None  # the box mask now
    notice = pipe.stats().memory_notice
    assert notice is not None
    assert "1 face(s) per call" in notice and "parser is off" in notice, notice
    assert notice in pipe.stats().format_line()  # live --no-window's line


def test_parser_out_of_memory_on_the_worker_turns_it_off(
        detector: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """Async mode: the parser (on the swap worker) runs out of memory once: the box mask
    from then on, textures keep coming, a notice. Before: the worker's error stopped the
    pipeline."""
    dev = _trt_processor(tmp_path, monkeypatch, "parsing")
    parser = dev.parser
    assert parser is not None

    def short(crops: Any) -> Any:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 512.00 MiB")

    parser.masks_torch = short  # type: ignore[method-assign]
    settings = Settings(swap_mode="async", texture="flow", mask="parsing", faces="all",
                        quality_meter=False, color_match=False)
    pipe = Pipeline(ClipSource(640, 480, fps=20, faces=1), dev, detector,
                    (passthrough_source(FAMILY),), [NullSink()], settings)
    _run_until(pipe, lambda: len(pipe.textures) >= 1 and pipe.stats().swaps_per_s > 0)
    assert pipe.error is None
    assert dev.parser is None and not dev.uses_parser
    assert len(pipe.textures) >= 1  # swapped with the box mask after the error
    assert pipe.stats().memory_notice == "GPU memory is short: the face parser is off (box mask)"


def test_an_engines_out_of_memory_error_also_halves_the_batch() -> None:
    """TensorRT and ONNX Runtime report memory as EngineErrors with their own words:
    those halve the batch too; any other EngineError is raised as it is. Before: only
    torch.OutOfMemoryError was recognised."""
    from realtime.frame.memory_guard import BatchCap, OutOfMemory, is_out_of_memory

    ort = EngineError("inswapper.onnx: inference failed ([ONNXRuntimeError] : 6 : "
                      "RUNTIME_EXCEPTION : Failed to allocate memory for requested buffer)")
    assert is_out_of_memory(ort)
    assert not is_out_of_memory(EngineError("batch must be 1..8, got 9"))
    cap = BatchCap("face parser")
    seen: list[int] = []

    def call(rows: torch.Tensor) -> list[int]:
        seen.append(int(rows.shape[0]))
        if rows.shape[0] > 1:
            raise ort
        return [int(rows[0])]

    assert cap.run(call, torch.arange(3)) == [0, 1, 2]
    assert seen == [3, 1, 1, 1] and cap.rows == 1
    with pytest.raises(OutOfMemory):
        cap.run(lambda rows: (_ for _ in ()).throw(ort), torch.arange(1))
    with pytest.raises(EngineError, match="batch must be"):
        BatchCap("x").run(lambda rows: (_ for _ in ()).throw(
            EngineError("batch must be 1..8, got 9")), torch.arange(2))


def test_the_steps_go_enhancer_then_parser_then_unswapped_frames() -> None:
    from realtime.frame.memory_guard import MemoryFallback

    closed: list[str] = []

    class Enhancer:
        def close(self) -> None:
            closed.append("enhancer")

    class Processor:
        enhancer: Any = Enhancer()
        parser: Any = object()
        batch_cap = None

    processor = Processor()
    guard = MemoryFallback(processor)
    oom = torch.OutOfMemoryError("CUDA out of memory")

    def failing() -> str:
        raise oom

    assert guard.run(failing, fallback=lambda: "plain") == "plain"
    assert processor.enhancer is None and closed == ["enhancer"]
    assert processor.parser is not None
    guard.run(failing, fallback=lambda: "plain")
    assert processor.parser is None
    guard.run(failing, fallback=lambda: "plain")
    guard.run(failing, fallback=lambda: "plain")
    assert guard.notice == ("GPU memory is short: the face enhancer is off; the face parser "
                            "is off (box mask); 2 frame(s) shown unswapped")
    with pytest.raises(ValueError):  # not memory: raised as it is
        guard.run(lambda: (_ for _ in ()).throw(ValueError("bad")), fallback=lambda: "x")
