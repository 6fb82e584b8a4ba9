"""Issue 25 item 3: a texture swapped in sync mode carries its flow reference grey made on
the host, so after a switch to async mode the flow reads nothing back from the device.

The real pipeline threads on the CPU device with the strict doubles; the swap worker's
first swap is held back so the async frames warp the texture sync mode made."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from realtime.config import Settings
from realtime.io.clip import ClipSource
from realtime.io.sinks import NullSink
from realtime.pipeline import Pipeline
from realtime.session import passthrough_source
from tests import fake_cuda
from tests.realtime.frame.test_process_torch import _trt_processor
from tests.realtime.test_pipeline_gpu import FAMILY, detector  # noqa: F401 (fixture)


def test_a_sync_texture_costs_no_device_read_after_the_switch_to_async(
        detector: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """The process thread downloads once a frame (the frame), also on the async frames
    that warp the sync-made texture. Before: the sync texture had no host grey, and the
    first async frame downloaded its target crop (one more ``Tensor.cpu``)."""
    dev = _trt_processor(tmp_path, monkeypatch, "box")
    gate = threading.Event()
    plain_rows, plain_composite = dev.swap_rows, dev.composite
    composites = [0]

    def held_on_worker(*args: Any, **kwargs: Any) -> Any:
        if threading.current_thread().name == "swapcam-swap":
            gate.wait(20)  # the async frames meanwhile show the sync texture
        return plain_rows(*args, **kwargs)

    def counting(*args: Any) -> np.ndarray:
        composites[0] += 1
        return plain_composite(*args)

    dev.swap_rows = held_on_worker  # type: ignore[method-assign]
    dev.composite = counting  # type: ignore[method-assign]
    settings = Settings(swap_mode="sync", texture="flow", mask="box", faces="all",
                        quality_meter=False, color_match=False)
    pipe = Pipeline(ClipSource(640, 480, fps=20, faces=1), dev, detector,
                    (passthrough_source(FAMILY),), [NullSink()], settings)

    def wait_for(done: Any) -> None:
        deadline = time.monotonic() + 25
        while time.monotonic() < deadline and not done():
            time.sleep(0.02)
            pipe.check()
        assert done()

    pipe.start()
    try:
        wait_for(lambda: composites[0] >= 2 and len(pipe.textures) >= 1)
        pipe.update_settings(replace(settings, swap_mode="async"))
        wait_for(lambda: pipe.swap_mode == "async")
        switched = composites[0]
        wait_for(lambda: composites[0] >= switched + 3)  # frames warping the sync texture
    finally:
        gate.set()
        pipe.stop()
        pipe.wait_stopped()
    assert pipe.stats_recorder.total("swap") >= 1
    reads = fake_cuda.thread_waits("swapcam-process")["Tensor.cpu"]
    assert reads == composites[0], (reads, composites[0])  # the frames' downloads only
