"""The enhancer on the device (``enhance_torch``: warps, engine call and blend on torch
tensors) equals the host path on the CPU device, and its opening never blocks a frame."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from engines.base import TensorSpec
from engines.torch import TorchEngine
from realtime.config import Settings
from realtime.faces.align import warp_face
from realtime.frame.enhance import FaceEnhancer, LazyEnhancer
from realtime.frame.process import FrameProcessor
from realtime.frame.process_torch import TorchFrameProcessor
from realtime.frame.swap import FaceSwapper
from realtime.types import Detection, Face
from tests.realtime.frame.test_enhance import T1_FACE, IdentityGfpgan
from tests.realtime.frame.test_process_torch import VECTOR, Shade, _specs

SPEC_IN = (TensorSpec("input", ("batch", 3, 512, 512), "float32"),)
SPEC_OUT = (TensorSpec("output", ("batch", 3, 512, 512), "float32"),)
# Bit-exact on this machine (measured: 0 for every family and blend); one grey level is
# allowed because the two paths invert the warp matrices in different code (OpenCV's own,
# align.invert_affine), so a coordinate sitting on a 1/32 px step may round the other way.
TOLERANCE = 1


class Restyle(torch.nn.Module):
    """A stand-in for GFPGAN that is not the identity (mirrors, darkens, shifts colour)
    and leaves [-1, 1] at places, so the clamp, colour order and geometry all show."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flip(-1) * 1.2 - torch.tensor([0.1, 0.0, -0.2]).view(1, 3, 1, 1)


def _enhancers() -> tuple[FaceEnhancer, FaceEnhancer]:
    return (FaceEnhancer(IdentityGfpgan()), FaceEnhancer(TorchEngine(Restyle(), SPEC_IN,
                                                                      SPEC_OUT)))


@pytest.mark.parametrize("family", ["simswap-224", "inswapper-128", "simswap-512"])
@pytest.mark.parametrize("blend", [1.0, 0.6])
def test_the_device_path_equals_the_host_path_on_the_cpu_device(
    t1_bgr: np.ndarray, family: str, blend: float,
) -> None:  # fmt: skip
    crops = [warp_face(t1_bgr, T1_FACE, family).crop,
             warp_face(t1_bgr, T1_FACE + 6.0, family).crop]
    engine = TorchEngine(Restyle(), SPEC_IN, SPEC_OUT)
    enhancer = FaceEnhancer(engine)
    assert enhancer.on_device
    host = enhancer.enhance(crops, family, blend)
    device = enhancer.enhance_torch([torch.from_numpy(c) for c in crops], family, blend)
    for h, d in zip(host, device, strict=True):
        assert d.dtype == torch.uint8 and tuple(d.shape) == h.shape
        diff = np.abs(d.numpy().astype(int) - h.astype(int))
        assert diff.max() <= TOLERANCE, diff.max()
        assert diff.mean() < 0.01, diff.mean()


def test_the_device_processor_enhances_without_a_host_round_trip(
    t1_bgr: np.ndarray, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    settings = Settings(mask="box", enhance="gfpgan", enhance_blend=0.8)
    inputs, outputs = _specs(128)
    engine = TorchEngine(Restyle(), SPEC_IN, SPEC_OUT)
    runs: list[str] = []
    def host_run(feeds: object) -> dict[str, np.ndarray]:
        runs.append("run")
        return {}

    monkeypatch.setattr(engine, "run", host_run)
    dev = TorchFrameProcessor(
        FaceSwapper("inswapper-128", TorchEngine(Shade(), inputs, outputs, device="cpu")),
        None, settings, enhancer=LazyEnhancer.of(FaceEnhancer(engine)))
    aligned = dev.align(t1_bgr, [Face(0, Detection(np.array([470, 260, 570, 380], np.float32),
                                                   0.9, T1_FACE))])
    downloads: list[int] = []
    real_cpu = torch.Tensor.cpu

    def counting_cpu(self: torch.Tensor, *args: object, **kwargs: object) -> torch.Tensor:
        downloads.append(1)
        return real_cpu(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(torch.Tensor, "cpu", counting_cpu)
    (out,) = dev.swap_crops(aligned, VECTOR)
    monkeypatch.setattr(torch.Tensor, "cpu", real_cpu)
    assert isinstance(out, torch.Tensor) and tuple(out.shape) == (512, 512, 3)
    assert runs == [] and downloads == [], (runs, len(downloads))


def _blocking_opener(release: threading.Event, opened: list[int]) -> FaceEnhancer:
    release.wait(30)
    opened.append(1)
    return FaceEnhancer(IdentityGfpgan())


@pytest.mark.parametrize("device", [False, True])
def test_a_build_that_blocks_never_blocks_a_frame(t1_bgr: np.ndarray, device: bool) -> None:
    release = threading.Event()
    opened: list[int] = []
    statuses: list[str] = []
    lazy = LazyEnhancer(lambda: _blocking_opener(release, opened), on_status=statuses.append)
    settings = Settings(mask="box", enhance="gfpgan", enhance_blend=1.0)
    inputs, outputs = _specs(128)
    swapper = FaceSwapper("inswapper-128", TorchEngine(Shade(), inputs, outputs, device="cpu"))
    processor: FrameProcessor | TorchFrameProcessor = (
        TorchFrameProcessor(swapper, None, settings, enhancer=lazy) if device
        else FrameProcessor(swapper, None, settings, enhancer=lazy))
    faces = [Face(0, Detection(np.array([470, 260, 570, 380], np.float32), 0.9, T1_FACE))]
    results: list[np.ndarray] = []

    def frame() -> None:
        results.append(processor.process(t1_bgr, faces, VECTOR)[0])

    try:
        worker = threading.Thread(target=frame, daemon=True)
        worker.start()
        worker.join(10)
        assert not worker.is_alive(), "process() waited on the enhancer's build"
        assert lazy.status == "preparing" and lazy.status_text == "preparing the enhancer…"
        assert opened == [] and statuses == ["preparing"]
        plain = results[0]
    finally:
        release.set()
    assert lazy.wait(10) is not None and statuses == ["preparing", "ready"]
    enhanced, _ = processor.process(t1_bgr, faces, VECTOR)  # the first frame after: enhanced
    assert opened == [1]
    changed = np.abs(enhanced.astype(int) - plain.astype(int)).max()
    assert changed > 0  # an upsampled, re-pasted crop differs from the plain paste


def test_an_enhancer_closed_while_it_is_prepared_is_closed_when_it_arrives() -> None:
    release = threading.Event()
    closed: list[int] = []

    def opener() -> FaceEnhancer:
        release.wait(30)
        engine = IdentityGfpgan()
        engine.close = lambda: closed.append(1)  # type: ignore[method-assign]
        return FaceEnhancer(engine)

    lazy = LazyEnhancer(opener)
    assert lazy.get() is None and lazy.status == "preparing"
    lazy.close()
    release.set()
    deadline = time.monotonic() + 10
    while not closed and time.monotonic() < deadline:
        time.sleep(0.01)
    assert closed == [1] and lazy.get() is None


class BoundBuffer:
    """TensorRT-like: a fixed batch of one and one output buffer rewritten by every call."""

    backend = "fake-tensorrt"
    inputs = (TensorSpec("input", (1, 3, 512, 512), "float32"),)
    outputs = SPEC_OUT

    def __init__(self) -> None:
        self.buffer = torch.zeros(1, 3, 512, 512)
        self.module = Restyle()

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"output": self.module(torch.from_numpy(feeds["input"])).numpy()}

    def run_torch(self, feeds: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        assert tuple(feeds["input"].shape) == (1, 3, 512, 512)
        self.buffer.copy_(self.module(feeds["input"]))
        return {"output": self.buffer}

    def close(self) -> None:
        pass


def test_each_row_of_a_fixed_batch_engine_is_read_before_the_next_call(
    t1_bgr: np.ndarray,
) -> None:  # fmt: skip
    crops = [warp_face(t1_bgr, T1_FACE, "inswapper-128").crop,
             warp_face(t1_bgr, T1_FACE + 40.0, "inswapper-128").crop]
    enhancer = FaceEnhancer(BoundBuffer())
    host = enhancer.enhance(crops, "inswapper-128", 1.0)
    device = enhancer.enhance_torch([torch.from_numpy(c) for c in crops], "inswapper-128", 1.0)
    for h, d in zip(host, device, strict=True):
        assert np.abs(d.numpy().astype(int) - h.astype(int)).max() <= TOLERANCE


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(),
                    reason="needs a CUDA GPU (torch.cuda.is_available() is False)")
def test_the_device_path_on_cuda_equals_the_host_path(t1_bgr: np.ndarray) -> None:
    crops = [warp_face(t1_bgr, T1_FACE, "simswap-224").crop]
    enhancer = FaceEnhancer(TorchEngine(Restyle(), SPEC_IN, SPEC_OUT, device="cuda"))
    host = enhancer.enhance(crops, "simswap-224", 0.7)
    device = enhancer.enhance_torch([torch.from_numpy(c).cuda() for c in crops],
                                    "simswap-224", 0.7)
    assert device[0].is_cuda
    diff = np.abs(device[0].cpu().numpy().astype(int) - host[0].astype(int))
    assert diff.max() <= TOLERANCE, diff.max()


def test_waiting_on_a_closed_enhancer_returns_at_once() -> None:
    lazy = LazyEnhancer(lambda: FaceEnhancer(IdentityGfpgan()))
    lazy.close()
    t0 = time.monotonic()
    assert lazy.wait(5) is None and lazy.get() is None and lazy.status == "idle"
    assert time.monotonic() - t0 < 1.0
