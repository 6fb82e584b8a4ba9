"""Issue 25: the live pipeline's GPU path on the strict doubles, thread by thread.

The device processor runs the generator on the TensorRT double (asynchronous launches) with
``torch.cuda`` from tests.fake_cuda, where a launch completes only when a host wait covers
it (the slowest GPU there can be) and every host wait is counted per thread and kind. The
pipeline's threads are real; the detector is RetinaFace on ONNX Runtime (CPU).

Pinned per thread (``fake_cuda.ledger``): the process thread waits once a frame (the
frame's download) and never on the swap worker's engine work (``fake_cuda.cross_waits``);
no pipeline thread queues on the shared legacy default stream; the swap worker waits for
its own swap only.

The enhancer-on budget belongs with the enhancer on the device (issue 25 item 3): its
test calls ``_run(..., prepare=attach)``, where ``attach(processor)`` gives the device
processor its enhancer, with ``Settings(enhance=...)``, and pins the same per-thread waits.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from realtime.config import Settings
from realtime.faces.detect import make_detector
from realtime.io.clip import ClipSource
from realtime.io.sinks import NullSink
from realtime.pipeline import Pipeline
from realtime.session import passthrough_source
from tests import fake_cuda
from tests.realtime.frame.test_process_torch import _trt_processor

FAMILY = "inswapper-128"
WAITS = ("Tensor.cpu", "Tensor.numpy", "Tensor.item", "Tensor.tolist", 'Tensor.to("cpu")',
         "Tensor.__bool__", "Event.synchronize", "Stream.synchronize",
         "torch.cuda.synchronize", "boolean-mask indexing")


@pytest.fixture(scope="module")
def detector(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return make_detector("retinaface", tmp_path_factory.mktemp("models"))


def _waits(thread: str) -> Counter[str]:
    """The host waits of one pipeline thread (``pin_memory`` is an allocation, not a wait)."""
    counts = fake_cuda.thread_waits(f"swapcam-{thread}")
    return Counter({k: v for k, v in counts.items() if k != "pin_memory" and v})


def _run(detector: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings: Settings,
         *, swaps: int = 3, faces: int = 1, seconds: float = 25.0,
         prepare: Callable[[Any], None] | None = None) -> tuple[Pipeline, int]:
    """Run the pipeline until ``swaps`` swaps were made; returns it (stopped) and how many
    frames were composited (each one download). ``prepare(processor)``: the test hook
    for what a budget adds to the device processor (the enhancer's test)."""
    dev = _trt_processor(tmp_path, monkeypatch, settings.mask)
    dev.update_settings(settings)
    if prepare is not None:
        prepare(dev)
    composites = [0]
    plain = dev.composite

    def counting(*args: Any, **kwargs: Any) -> np.ndarray:
        composites[0] += 1
        return plain(*args, **kwargs)

    dev.composite = counting  # type: ignore[method-assign]
    pipe = Pipeline(ClipSource(640, 480, fps=20, faces=faces), dev, detector,
                    (passthrough_source(FAMILY),), [NullSink()], settings)
    pipe.start()
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and (
                pipe.stats_recorder.total("swap") < swaps or composites[0] < swaps + 2):
            time.sleep(0.05)
            pipe.check()
    finally:
        pipe.stop()
        pipe.wait_stopped()
    assert pipe.stats_recorder.total("swap") >= swaps and composites[0] >= swaps
    return pipe, composites[0]


def _no_thread_waits_on_another() -> None:
    assert fake_cuda.cross_waits == [], Counter(fake_cuda.cross_waits)
    pipeline_threads = {t for t in fake_cuda.default_stream_threads if t.startswith("swapcam")}
    assert pipeline_threads == set(), "threads queueing on the legacy default stream"


def test_async_flow_the_process_thread_never_waits_on_the_worker(
        detector: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Async mode with the flow texture: the process thread waits once a frame (the
    download) and never for the worker's generator; the worker waits for its own swap
    (one wait a swap: it takes its next job only once that swap completed), and the
    process thread's stream adopts each texture it reads (``record_stream``). Before: both
    threads queued on the default stream; the frame's download waited for the worker's
    generator (a cross-thread wait), and the flow downloaded grey crops every frame."""
    settings = Settings(swap_mode="async", texture="flow", mask="box", faces="all",
                        quality_meter=False, color_match=False)
    pipe, composites = _run(detector, tmp_path, monkeypatch, settings)
    _no_thread_waits_on_another()
    process = _waits("process")
    assert set(process) <= {"Tensor.cpu", "Event.synchronize"}, process
    assert process["Tensor.cpu"] == composites  # one download a frame, the frame's
    # the upload's staging event: only after a frame without a download (no face yet)
    assert process["Event.synchronize"] <= 2, process
    swap = _waits("swap")
    swaps = pipe.stats_recorder.total("swap")
    assert swap == Counter({"Event.synchronize": swaps}), (swap, swaps)
    streams = {handle for thread, handle in fake_cuda.recorded if thread == "swapcam-process"}
    assert len(streams) == 1 and 0 not in streams  # textures adopted on its own stream
    assert pipe.swap_mode == "async"


def test_sync_mode_one_download_a_frame_and_no_wait_for_the_swap_clock(
        detector: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Sync mode: the process thread swaps and composites on its own stream; its one wait
    a frame is the download; the swap's GPU time is read from events once they completed
    (never a wait for them)."""
    settings = Settings(swap_mode="sync", mask="box", faces="all", quality_meter=False,
                        color_match=False)
    pipe, composites = _run(detector, tmp_path, monkeypatch, settings)
    _no_thread_waits_on_another()
    process = _waits("process")
    assert set(process) <= {"Tensor.cpu", "Event.synchronize"}, process
    assert process["Tensor.cpu"] == composites
    assert process["Event.synchronize"] <= 2, process
    assert _waits("swap") == Counter()
    assert pipe.swap_mode == "sync"  # swaps were timed (from their events, in _run)


@pytest.mark.parametrize(("gpu_ms", "mode"), [(200.0, "async"), (0.5, "sync")])
def test_auto_mode_decides_from_the_swaps_gpu_time(
        detector: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gpu_ms: float,
        mode: str) -> None:
    """``--swap-mode auto`` from the GPU's time (CUDA events), not the launch's: a 200 ms
    generator on a 20 fps camera stays async; a 0.5 ms one goes sync. Before: the clock
    timed the launch (a few ms here, ~1 ms on a GPU), so a slow GPU went sync."""
    settings = Settings(swap_mode="auto", mask="box", faces="all", quality_meter=False,
                        color_match=False)
    fake_cuda_launch = gpu_ms

    def install_then_slow(*args: Any, **kwargs: Any) -> Any:
        made = make(*args, **kwargs)
        fake_cuda.launch_ms = fake_cuda_launch  # after install() reset it
        return made

    import tests.realtime.test_pipeline_gpu as here

    make = here._trt_processor
    monkeypatch.setattr(here, "_trt_processor", install_then_slow)
    pipe, _ = _run(detector, tmp_path, monkeypatch, settings, swaps=4)
    assert pipe.swap_mode == mode
    _no_thread_waits_on_another()


def test_enhancer_on_adds_no_host_wait_on_any_thread(
        detector: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Async + flow texture with the enhancer on (its engine on the device, ``run_torch``):
    the enhancer runs inside the worker's swap, so the process thread still waits once a
    frame with faces (the download; otherwise only its own staging buffer's upload event)
    and never on the worker, and the worker once a swap (its own swap's event). Before the
    enhancer moved to the device it cost 2N+3 host waits a swap call (crop downloads, a
    pageable upload, an event wait, an output ``.cpu()``)."""
    from engines.torch import TorchEngine
    from realtime.frame.enhance import FaceEnhancer, LazyEnhancer
    from tests.realtime.frame.test_enhance_device import SPEC_IN, SPEC_OUT, Restyle

    settings = Settings(swap_mode="async", texture="flow", mask="box", faces="all",
                        quality_meter=False, color_match=False, enhance="gfpgan",
                        enhance_blend=0.8)
    engine = TorchEngine(Restyle(), SPEC_IN, SPEC_OUT)
    calls: list[int] = []
    plain = engine.run_torch

    def counted(feeds: Any) -> Any:
        calls.append(1)
        return plain(feeds)

    engine.run_torch = counted  # type: ignore[method-assign]

    uploads = [0]

    def attach(processor: Any) -> None:
        processor.enhancer = LazyEnhancer.of(FaceEnhancer(engine))
        plain_upload = processor.upload

        def counting_upload(image: Any) -> Any:
            uploads[0] += 1
            return plain_upload(image)

        processor.upload = counting_upload

    pipe, composites = _run(detector, tmp_path, monkeypatch, settings, prepare=attach)
    assert calls, "the enhancer never ran"
    _no_thread_waits_on_another()
    process = _waits("process")
    assert set(process) <= {"Tensor.cpu", "Event.synchronize"}, process
    assert process["Tensor.cpu"] == composites
    # the pinned staging buffer's own event, only after a frame with no download (the
    # enhanced swaps are slow here, so many frames pass before the first texture)
    assert process["Event.synchronize"] <= uploads[0] - composites + 2, (process, uploads)
    swap = _waits("swap")
    assert swap == Counter({"Event.synchronize": pipe.stats_recorder.total("swap")}), swap
