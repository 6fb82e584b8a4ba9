"""TorchFrameProcessor (device-resident) equals FrameProcessor (numpy/OpenCV) on real faces."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from engines.base import TensorSpec
from engines.torch import TorchEngine
from realtime.config import Settings
from realtime.faces.detect import DlibDetector
from realtime.faces.identity import l2_normalize
from realtime.frame.composite import face_region
from realtime.frame.process import FrameProcessor, MissingEmbeddingError
from realtime.frame.process_torch import DeviceAlignedFace, TorchFrameProcessor
from realtime.frame.swap import FaceSwapper
from realtime.session import choose_processor
from realtime.types import Detection, Face, SourceFace
from tests.dlib_extra import require_dlib
from tests.realtime.frame.test_swap import EchoEngine

VECTOR = l2_normalize(np.random.default_rng(0).standard_normal(512))
CUDA = torch.cuda.is_available()


def _specs(size: int) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    inputs = (TensorSpec("target", ("N", 3, size, size), "float32"),
              TensorSpec("source", ("N", 512), "float32"))
    return inputs, (TensorSpec("output", ("N", 3, size, size), "float32"),)


class Shade(torch.nn.Module):
    """A cheap 'generator' that is not the identity: darkens the crop by an amount taken
    from the identity vector, so a wrong colour order, scale or vector shows up."""

    def forward(self, target: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        gain = 0.6 + 0.3 * source[:, :3].abs().clamp(max=1.0)  # per-channel, per-face
        return target.flip(1) * gain[:, :, None, None]


def _processors(module: torch.nn.Module, family: str, settings: Settings,
                device: str = "cpu") -> tuple[FrameProcessor, TorchFrameProcessor]:
    size = 224 if family == "simswap-224" else 128
    inputs, outputs = _specs(size)
    host = FaceSwapper(family, TorchEngine(module, inputs, outputs))
    dev = FaceSwapper(family, TorchEngine(module, inputs, outputs, device=device))
    return FrameProcessor(host, None, settings), TorchFrameProcessor(dev, None, settings)


def _faces(image: np.ndarray, width: int) -> list[Face]:
    require_dlib()
    return [Face(i, d) for i, d in enumerate(DlibDetector(detect_width=width).detect(image))]


@pytest.fixture(scope="module")
def t1_faces(t1_bgr: np.ndarray) -> list[Face]:
    faces = _faces(t1_bgr, 800)
    assert len(faces) == 6
    return faces


@pytest.fixture(scope="module")
def astronaut_faces(astronaut_bgr: np.ndarray) -> list[Face]:
    faces = _faces(astronaut_bgr, 512)
    assert faces
    return faces[:1]  # the astronaut's own face; one is enough for the slow generator


@pytest.fixture(scope="module")
def generator() -> torch.nn.Module:
    from export.random_models import make_generator

    return make_generator(224, seed=3)


def _outside(image: np.ndarray, processor: FrameProcessor, faces: list[Face]) -> np.ndarray:
    mask = np.ones(image.shape[:2], bool)
    for a in processor.align(image, faces):
        x0, y0, x1, y1 = face_region(a.matrix, a.size, image.shape)
        mask[y0:y1, x0:x1] = False
    return mask


def _assert_same(image: np.ndarray, ref: np.ndarray, got: np.ndarray,
                 host: FrameProcessor, faces: list[Face]) -> None:
    assert got.shape == ref.shape and got.dtype == np.uint8
    assert np.abs(got.astype(int) - ref).max() <= 1
    outside = _outside(image, host, faces)
    assert outside.any() and not outside.all()
    np.testing.assert_array_equal(got[outside], ref[outside])
    np.testing.assert_array_equal(got[outside], image[outside])
    # The swap really changed the faces (otherwise "equal" proves nothing).
    assert np.abs(ref[~outside].astype(int) - image[~outside]).mean() > 2


@pytest.mark.parametrize("family", ["simswap-224", "inswapper-128"])
@pytest.mark.parametrize("color_match", [True, False])
def test_process_equals_numpy_with_shade_module(t1_bgr: np.ndarray, t1_faces: list[Face],
                                                family: str, color_match: bool) -> None:
    settings = Settings(color_match=color_match, feather=0.1)
    host, dev = _processors(Shade(), family, settings)
    original = t1_bgr.copy()
    ref, _ = host.process(t1_bgr, t1_faces, VECTOR)
    got, timings = dev.process(t1_bgr, t1_faces, VECTOR)
    np.testing.assert_array_equal(t1_bgr, original)  # the input frame is never written
    assert set(timings) == {"align", "swap", "composite"}
    _assert_same(t1_bgr, ref, got, host, t1_faces)


@pytest.mark.slow
def test_process_equals_numpy_with_simswap_generator(
    astronaut_bgr: np.ndarray, astronaut_faces: list[Face], t1_bgr: np.ndarray,
    t1_faces: list[Face], generator: torch.nn.Module,
) -> None:
    host, dev = _processors(generator, "simswap-224", Settings())
    for image, faces in ((astronaut_bgr, astronaut_faces), (t1_bgr, t1_faces[:1])):
        ref, _ = host.process(image, faces, VECTOR)
        got, _ = dev.process(image, faces, VECTOR)
        _assert_same(image, ref, got, host, faces)


def test_async_paste_of_an_older_crop_equals_numpy(t1_bgr: np.ndarray,
                                                   t1_faces: list[Face]) -> None:
    """The pipeline's async path: crops swapped on one frame, pasted on a later frame
    with that frame's own matrices."""
    host, dev = _processors(Shade(), "simswap-224", Settings())
    old_host = host.swap_crops(host.align(t1_bgr, t1_faces), VECTOR)
    old_dev = dev.swap_crops(dev.align(t1_bgr, t1_faces), VECTOR)
    assert all(isinstance(c, torch.Tensor) and c.device == dev.device for c in old_dev)
    # The next frame: the scene moved 7 px right and 3 px down, so did the faces.
    shift = np.array([7.0, 3.0], np.float32)
    later = np.ascontiguousarray(np.roll(t1_bgr, (3, 7), axis=(0, 1)))
    moved = [Face(f.track_id, Detection(f.box + np.tile(shift, 2), f.detection.score,
                                        f.landmarks + shift)) for f in t1_faces]
    ref = host.composite(later, host.align(later, moved), old_host)
    got = dev.composite(later, dev.align(later, moved), old_dev)
    _assert_same(later, ref, got, host, moved)


def test_one_upload_and_one_download_per_frame(t1_bgr: np.ndarray, t1_faces: list[Face],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    _, dev = _processors(Shade(), "simswap-224", Settings())
    calls: list[str] = []
    upload, download = dev.upload, dev.download

    def counted_upload(image: np.ndarray) -> torch.Tensor:
        calls.append("up")
        return upload(image)

    def counted_download(frame_t: torch.Tensor) -> np.ndarray:
        calls.append("down")
        return download(frame_t)

    monkeypatch.setattr(dev, "upload", counted_upload)
    monkeypatch.setattr(dev, "download", counted_download)
    dev.process(t1_bgr, t1_faces, VECTOR)
    assert calls == ["up", "down"]
    # The pipeline's split calls too: align uploads, composite reuses that tensor.
    calls.clear()
    aligned = dev.align(t1_bgr, t1_faces)
    assert all(isinstance(a, DeviceAlignedFace) for a in aligned)
    dev.composite(t1_bgr, aligned, dev.swap_crops(aligned, VECTOR))
    assert calls == ["up", "down"]
    # A different array (a refilled buffer is a new frame) is uploaded afresh.
    calls.clear()
    dev.composite(t1_bgr.copy(), aligned, dev.swap_crops(aligned, VECTOR))
    assert calls == ["up", "down"]


def test_upload_takes_strided_views(t1_bgr: np.ndarray) -> None:
    _, dev = _processors(Shade(), "simswap-224", Settings())
    view = t1_bgr[::2, :, ::-1]  # a negative stride: torch.from_numpy alone refuses it
    np.testing.assert_array_equal(dev.upload(view).cpu().numpy(), view)


def test_numpy_crops_and_aligned_faces_are_accepted(t1_bgr: np.ndarray,
                                                    t1_faces: list[Face]) -> None:
    host, dev = _processors(Shade(), "simswap-224", Settings())
    aligned = host.align(t1_bgr, t1_faces[:2])
    crops = host.swap_crops(aligned, VECTOR)
    dev_crops = dev.swap_crops(aligned, VECTOR)
    for a, b in zip(crops, dev_crops, strict=True):
        np.testing.assert_array_equal(a, b.numpy())  # same crop in: same decode out
    ref = host.composite(t1_bgr, aligned, crops)
    got = dev.composite(t1_bgr, aligned, crops)
    assert np.abs(got.astype(int) - ref).max() <= 1


def test_source_vector_is_uploaded_once_per_identity(t1_bgr: np.ndarray,
                                                     t1_faces: list[Face]) -> None:
    _, dev = _processors(Shade(), "simswap-224", Settings())
    aligned = dev.align(t1_bgr, t1_faces[:1])
    face = SourceFace("a", (), {"simswap-224": VECTOR})
    dev.swap_crops(aligned, face)
    dev.swap_crops(aligned, VECTOR.copy())
    assert len(dev._vectors) == 1
    dev.swap_crops(aligned, -VECTOR)
    assert len(dev._vectors) == 2


def test_decode_rounds_like_the_numpy_decode() -> None:
    values = np.array([-1.0, np.nan, 0.0, 0.5 / 255, 1.5 / 255, 0.4999, 0.5, 1.0, 2.0,
                       np.inf, -np.inf, 254.5 / 255], np.float32)
    out = np.zeros((1, 3, 2, len(values)), np.float32)
    out[:] = values
    out[0, 1] *= 0.7  # channels differ, so a wrong RGB→BGR order shows
    swapper = FaceSwapper("simswap-224", EchoEngine(224))
    with np.errstate(over="ignore"):  # inf * 255 is the case under test
        ref = swapper.decode_outputs(out)[0]
    got = TorchFrameProcessor.decode_outputs(torch.from_numpy(out))[0]
    np.testing.assert_array_equal(got.numpy(), ref)


def test_engine_without_run_torch_is_refused() -> None:
    swapper = FaceSwapper("simswap-224", EchoEngine(224))
    with pytest.raises(TypeError, match=r"run_torch.*EchoEngine"):
        TorchFrameProcessor(swapper, None, Settings())


def test_missing_identity_fails_before_device_work(t1_bgr: np.ndarray,
                                                   t1_faces: list[Face]) -> None:
    _, dev = _processors(Shade(), "simswap-224", Settings())
    with pytest.raises(MissingEmbeddingError, match="inswapper-128"):
        dev.process(t1_bgr, t1_faces, SourceFace("x", (), {"inswapper-128": VECTOR}))
    assert dev._frame is None


def test_no_faces_gives_a_copy(t1_bgr: np.ndarray) -> None:
    _, dev = _processors(Shade(), "simswap-224", Settings())
    out, timings = dev.process(t1_bgr, [], VECTOR)
    assert timings == {} and out is not t1_bgr
    np.testing.assert_array_equal(out, t1_bgr)


@pytest.fixture
def onnx_echo(tmp_path: Path) -> Iterator[Path]:
    import onnx
    from onnx import TensorProto, helper

    target = helper.make_tensor_value_info("target", TensorProto.FLOAT, ["N", 3, 224, 224])
    source = helper.make_tensor_value_info("source", TensorProto.FLOAT, ["N", 512])
    output = helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 3, 224, 224])
    graph = helper.make_graph([helper.make_node("Identity", ["target"], ["output"])],
                              "echo", [target, source], [output])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "echo.onnx"
    onnx.save(model, str(path))
    yield path


def test_choose_processor(onnx_echo: Path, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from engines.onnxruntime import OnnxRuntimeEngine

    caplog.set_level(logging.INFO, logger="realtime.session")
    ort = FaceSwapper("simswap-224", OnnxRuntimeEngine(onnx_echo))
    assert type(choose_processor(ort, None, Settings())) is FrameProcessor
    assert "host with numpy/OpenCV (onnxruntime-cpu: its engine has no run_torch)" in caplog.text
    # A torch engine on the CPU: the OpenCV path is the faster one there.
    cpu = FaceSwapper("simswap-224", TorchEngine(Shade(), *_specs(224)))
    assert type(choose_processor(cpu, None, Settings())) is FrameProcessor

    class FakeTensorRT(EchoEngine):
        backend = "tensorrt"

        def run_torch(self, feeds: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
            raise AssertionError("not called")

    chosen = choose_processor(FaceSwapper("simswap-224", FakeTensorRT(224)), None, Settings())
    assert isinstance(chosen, TorchFrameProcessor) and chosen.device.type == "cuda"
    assert "on the GPU (tensorrt)" in caplog.text


class Paint(torch.nn.Module):
    """Paints each crop in the colour of its identity (one-hot index), like the pipeline
    tests' FakeSwapper, but as a torch module behind a real TorchEngine."""

    def forward(self, target: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        from tests.realtime.test_pipeline import COLOURS

        rgb = torch.tensor([c[::-1] for c in COLOURS], dtype=torch.float32) / 255.0
        colour = rgb[source.argmax(dim=1)]  # (N, 3)
        return colour[:, :, None, None].expand_as(target).contiguous()


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_pipeline_runs_the_device_processor(astronaut_bgr: np.ndarray, mode: str) -> None:
    """The pipeline only passes aligned faces and crops back to the processor that made
    them, so device tensors flow through it (the async path keeps them as textures)."""
    require_dlib()
    import time

    import cv2

    from realtime.pipeline import Pipeline
    from tests.realtime.test_pipeline import (
        COLOURS,
        FACE_BOX,
        FAMILY,
        SOURCES,
        FakeDetector,
        FakeSource,
        RecordingSink,
    )

    frame = np.full((480, 640, 3), 90, np.uint8)
    x0, y0, x1, y1 = FACE_BOX
    frame[y0:y1, x0:x1] = cv2.resize(astronaut_bgr[40:290, 140:340], (x1 - x0, y1 - y0))
    found = DlibDetector(upsample=1).detect(frame)
    assert len(found) == 1
    settings = Settings(detect_every=1, color_match=False, feather=0.02, swap_mode=mode)
    inputs, outputs = _specs(128)
    processor = TorchFrameProcessor(FaceSwapper(FAMILY, TorchEngine(Paint(), inputs, outputs)),
                                    None, settings)
    source = FakeSource(frame, 30.0)
    sink = RecordingSink()
    pipe = Pipeline(source, processor, FakeDetector(found[0], source), SOURCES, [sink],
                    settings)
    pipe.start()
    try:
        time.sleep(1.5)
    finally:
        pipe.stop()
    painted = [c for _, c in sink.frames if max(abs(a - b) for a, b in
                                                 zip(c, COLOURS[0], strict=True)) < 40]
    # A few frames suffice: the torch composite on the CPU is slow (it is the GPU's code).
    assert len(sink.frames) >= 4 and len(painted) >= len(sink.frames) // 2
    assert pipe.stats().swap_mode == mode


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU (torch.cuda.is_available() is False)")
def test_process_on_cuda_equals_numpy(t1_bgr: np.ndarray, t1_faces: list[Face]) -> None:
    host, dev = _processors(Shade(), "simswap-224", Settings(), device="cuda")
    ref, _ = host.process(t1_bgr, t1_faces, VECTOR)
    got, _ = dev.process(t1_bgr, t1_faces, VECTOR)
    _assert_same(t1_bgr, ref, got, host, t1_faces)


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU (torch.cuda.is_available() is False)")
def test_generator_on_cuda_matches_numpy(t1_bgr: np.ndarray, t1_faces: list[Face],
                                         generator: torch.nn.Module,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    # TF32 convolutions (cuDNN's default on Ampere and later) round inputs to 10-bit
    # mantissas; with full FP32 the GPU and CPU generators differ only by summation order.
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    faces = t1_faces[:2]
    host, dev = _processors(generator, "simswap-224", Settings(), device="cuda")
    host_crops = host.swap_crops(host.align(t1_bgr, faces), VECTOR)
    aligned = dev.align(t1_bgr, faces)
    crops = dev.swap_crops(aligned, VECTOR)
    assert all(c.is_cuda for c in crops)
    for a, b in zip(host_crops, crops, strict=True):
        # Summation order moves a value across a rounding boundary now and then: the
        # alignment warp (≤1 level) and that make ≤2 levels, on few pixels.
        diff = np.abs(a.astype(int) - b.cpu().numpy())
        assert diff.max() <= 2 and (diff > 0).mean() < 0.05
    # The GPU composite of those very crops equals the host composite of them.
    got = dev.composite(t1_bgr, aligned, crops)
    ref = host.composite(t1_bgr, host.align(t1_bgr, faces), [c.cpu().numpy() for c in crops])
    _assert_same(t1_bgr, ref, got, host, faces)


def test_host_waits_per_frame_do_not_grow_with_faces(t1_bgr: np.ndarray,
                                                     t1_faces: list[Face]) -> None:
    """Defect 3 (issue 12): per frame the device path may wait for the device only at its
    one upload and its one download, however many faces it swaps (main added three
    pageable matrix uploads per face)."""
    from tests.cuda_copies import HostSyncCounter

    _, dev = _processors(Shade(), "simswap-224", Settings())
    dev.process(t1_bgr, t1_faces, VECTOR)  # warm: identity vector and mask uploads, once
    counts = []
    for faces in (t1_faces[:1], t1_faces):
        with HostSyncCounter() as syncs:
            dev.process(t1_bgr, faces, VECTOR)
        counts.append(dict(syncs.calls))
    # on the CPU device the frame upload is pageable; on CUDA it goes through pinned memory
    assert counts[0] == counts[1] == {"Tensor.to from pageable host memory": 1,
                                      "Tensor.cpu of a device tensor": 1}


# --- issue 22: the per-frame host-wait budget on the TensorRT path --------------------------


class AllSkin(torch.nn.Module):
    """A parser stand-in: every pixel "skin" (class 1), so every face gets a parsed mask."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = x.new_zeros((x.shape[0], 19, x.shape[2], x.shape[3]))
        logits[:, 1] = 1.0 + x[:, 0] * 0.0
        return logits


def _trt_processor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                   mask: str) -> TorchFrameProcessor:
    """The GPU frame path as the app builds it, on the CPU device: the generator on the
    strict TensorRT double (asynchronous launches, FP32 fallback attached so the NaN check
    runs), the parser on a TorchEngine, torch.cuda's streams/events from tests.fake_cuda,
    and the upload's CUDA branch (pinned staging buffer + event)."""
    import sys

    from engines import tensorrt as trt_engine
    from engines.torch import TorchEngine
    from realtime.frame.parsing import FaceParser
    from tests import fake_cuda
    from tests import fake_tensorrt as fake

    monkeypatch.setitem(sys.modules, "tensorrt", fake.fake_tensorrt(rec=fake.Recorder()))
    fake_cuda.install(monkeypatch)
    # inswapper's 128 px crops: the same code as SimSwap's 224, a third of the CPU time
    tail = {"target": (3, 128, 128), "source": (512,)}
    path = tmp_path / "inswapper-128-fp16.engine"
    path.write_bytes(fake.engine_bytes(
        {k: (-1, *v) for k, v in tail.items()}, {"output": (-1, 3, 128, 128)}, op="copy",
        profile={k: ((1, *v), (1, *v), (8, *v)) for k, v in tail.items()}))
    engine = trt_engine.TensorRTEngine(path, device="cpu", name="inswapper-128")
    engine.fallback = lambda: None  # an FP32 engine "still building": the check runs
    parser = FaceParser(TorchEngine(
        AllSkin(), (TensorSpec("input", ("N", 3, 512, 512), "float32"),),
        (TensorSpec("logits", ("N", 19, 512, 512), "float32"),), device="cpu"))
    dev = TorchFrameProcessor(FaceSwapper("inswapper-128", engine), None, Settings(mask=mask),
                              device="cpu", parser=parser)
    dev._cuda = True  # the upload's CUDA branch: what runs on a GPU
    return dev


def _frame(dev: TorchFrameProcessor, image: np.ndarray, faces: list[Face],
           face_map: bool) -> np.ndarray:
    """One frame as the pipeline runs it: with a face map, each identity is its own
    swap call (faces alternate between two people)."""
    if not face_map:
        return dev.process(image, faces, VECTOR)[0]
    other = l2_normalize(np.random.default_rng(1).standard_normal(512))
    aligned = dev.align(image, faces)
    swapped: list[Any] = [None] * len(faces)
    for person, vector in enumerate((VECTOR, other)):
        chosen = [i for i in range(len(faces)) if i % 2 == person]
        if chosen:
            for i, crop in zip(chosen, dev.swap_crops([aligned[i] for i in chosen], vector),
                               strict=True):
                swapped[i] = crop
    return dev.composite(image, aligned, swapped)


@pytest.mark.parametrize("mask", ["box", "parsing"])
def test_one_blocking_host_wait_per_frame_on_the_tensorrt_path(
        t1_bgr: np.ndarray, t1_faces: list[Face], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, mask: str) -> None:
    """Issue 22 (rows 1 and 3): per frame the host waits once, for the download, with the
    box or the parsing mask, for 1 and 4 faces, with and without a face map. Before: the
    parser uploaded 5 constants per call (each a blocking copy) and every extra identity
    waited for the previous call's event."""
    import cv2

    from tests.cuda_copies import HostSyncCounter

    # half size (the faces still make full-size crops): a quarter of the per-pixel CPU time
    image = cv2.resize(t1_bgr, (t1_bgr.shape[1] // 2, t1_bgr.shape[0] // 2),
                       interpolation=cv2.INTER_AREA)
    faces = [Face(f.track_id, Detection(f.box / 2, f.detection.score, f.landmarks / 2))
             for f in t1_faces[:4]]
    dev = _trt_processor(tmp_path, monkeypatch, mask)
    assert dev.uses_parser == (mask == "parsing")
    _frame(dev, image, faces[:2], True)  # warm: both identities, the parser's constants
    for count in (1, 4):
        for face_map in (False, True):
            with HostSyncCounter() as syncs:
                out = _frame(dev, image, faces[:count], face_map)
            assert dict(syncs.calls) == {"Tensor.cpu of a device tensor": 1}, (count, face_map)
            assert out.shape == image.shape and not np.array_equal(out, image)


def test_the_sync_counter_sees_every_kind_of_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    """A control for tests.cuda_copies (issue 22): explicit waits on work the host has not
    seen finish, pageable copies into device tensors, device → host copies; and not a
    pinned asynchronous copy, nor a wait for what an earlier download already covered."""
    from tests import fake_cuda
    from tests.cuda_copies import HostSyncCounter

    fake_cuda.install(monkeypatch)
    device = torch.zeros(4)
    stream = torch.cuda.Stream()
    with HostSyncCounter() as syncs:
        event = torch.cuda.Event()
        event.record(stream)
        event.synchronize()  # recorded after the host last waited: blocks
        event.synchronize()  # already seen: free
        stream.synchronize()
        torch.cuda.synchronize()
        device.copy_(torch.from_numpy(np.ones(4, np.float32)))  # pageable → device
        pinned = torch.empty((4,), pin_memory=True)
        device.copy_(pinned, non_blocking=True)  # pinned, asynchronous: no wait
        pinned.copy_(device, non_blocking=True)  # device → pinned, asynchronous
        torch.from_numpy(np.zeros(4, np.float32)).copy_(device)  # device → pageable: waits
        (torch.from_numpy(np.ones(4, np.float32)) * 2).to("cpu")  # computed on the host
        staged = torch.cuda.Event()
        staged.record()
        device.cpu()  # the download: the host has seen everything so far
        staged.synchronize()  # the upload's staging event behind it: free
    assert syncs.calls == {"Event.synchronize": 1, "Stream.synchronize": 1,
                           "torch.cuda.synchronize": 1,
                           "Tensor.copy_ from pageable host memory": 1,
                           "Tensor.copy_ of a device tensor": 1,
                           "Tensor.to from pageable host memory": 1,
                           "Tensor.cpu of a device tensor": 1}


# --- issue 19: the flow texture on the device path ---------------------------------------


def _talking(image: np.ndarray, face: Face, push: float) -> np.ndarray:
    """``image`` with the region around ``face``'s mouth pushed down by ``push`` px (a jaw
    opening), landmarks unchanged: motion the alignment cannot follow, only the flow."""
    import cv2

    h, w = image.shape[:2]
    cx, cy = face.landmarks[3:5].mean(axis=0)
    radius = 0.35 * float(np.hypot(*(face.landmarks[4] - face.landmarks[3]))) + 6.0
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    fall = np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * radius**2)).astype(np.float32)
    return cv2.remap(image, xs, ys - push * fall, cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)


@pytest.mark.parametrize("device", [
    "cpu", pytest.param("cuda", marks=[pytest.mark.gpu, pytest.mark.skipif(
        not CUDA, reason="needs a CUDA GPU (torch.cuda.is_available() is False)")])])
def test_the_flow_texture_on_the_device_equals_the_host_one(t1_bgr: np.ndarray,
                                                            t1_faces: list[Face],
                                                            device: str) -> None:
    """The pipeline's async step with ``--texture flow`` and the live mouth: textures
    swapped on one frame, followed to a later frame whose mouths moved, pasted. The device
    processor's frame equals the host processor's within two grey levels (one for the warp,
    one for the composite), the warp really moved the faces, and the device path reads
    reads nothing back for the flow (issue 25 item 7: the flow's greys are made on the host
    from the frame and each face's matrix, the texture's reference by the worker from its
    job's frame): one download a frame, the frame's. Before: one more download a frame for
    the faces' greys and one per new texture for its reference."""
    from realtime.faces.plan import FacePlan
    from realtime.frame.motion import TextureMotion, frame_greys, textures_for_frame
    from realtime.frame.textures import TextureStore
    from tests.cuda_copies import HostSyncCounter

    faces = t1_faces[:2]
    source = SourceFace("s", (), {"simswap-224": VECTOR})
    plan = FacePlan(tuple(faces), (source, source))
    later = t1_bgr
    for face in faces:
        later = _talking(later, face, 6.0)
    frames = {}
    for name, processor in zip(("host", "dev"), _processors(Shade(), "simswap-224",
                                                            Settings(), device=device),
                               strict=True):
        store, motion = TextureStore(), TextureMotion()
        aligned = processor.align(t1_bgr, faces)
        store.put_swapped(1, plan.track_ids, aligned, processor.swap_crops(aligned, VECTOR),
                          plan.sources, greys=frame_greys(t1_bgr, aligned))
        for mode in ("static", "flow", "flow again"):
            with HostSyncCounter() as syncs:
                pairs, names = textures_for_frame(
                    store, motion, plan, processor.align(later, faces), mapped=False,
                    mode=mode.split()[0], live_mouth=mode != "static", image=later)
                frames[name, mode] = processor.composite(later, [p[0] for p in pairs],
                                                         [p[1] for p in pairs])
            assert names == {"s"}
            if name == "dev":
                reads = syncs.calls["Tensor.cpu of a device tensor"]
                assert reads == 1, (mode, dict(syncs.calls))  # the frame's download only
    assert motion.fallbacks == 0
    # faces new to the tracker show another track's texture, never warped: no download
    strangers = FacePlan(tuple(Face(f.track_id + 90, f.detection) for f in faces),
                         plan.sources)
    with HostSyncCounter() as syncs:
        pairs, _ = textures_for_frame(store, motion, strangers, processor.align(later, faces),
                                      mapped=False, mode="flow", live_mouth=False)
    assert len(pairs) == len(faces)
    assert syncs.calls["Tensor.cpu of a device tensor"] == 0, dict(syncs.calls)
    assert np.abs(frames["dev", "flow"].astype(int) - frames["host", "flow"]).max() <= 2
    assert np.abs(frames["dev", "static"].astype(int) - frames["host", "static"]).max() <= 1
    moved = np.abs(frames["dev", "flow"].astype(int) - frames["dev", "static"])
    assert moved.max() > 20  # the flow and the live mouth changed the pasted faces


def test_the_static_misfit_on_the_device_reads_nothing_back(t1_bgr: np.ndarray,
                                                           t1_faces: list[Face]) -> None:
    """The error refresh order with the static texture: each face's plain misfit is made
    from the host greys of the frame on both processors (the same figures), and the device
    path reads nothing back for it."""
    from realtime.faces.plan import FacePlan
    from realtime.frame.motion import TextureMotion, frame_greys, textures_for_frame
    from realtime.frame.textures import TextureStore
    from tests.cuda_copies import HostSyncCounter

    faces = t1_faces[:2]
    source = SourceFace("s", (), {"simswap-224": VECTOR})
    plan = FacePlan(tuple(faces), (source, source))
    later = _talking(t1_bgr, faces[0], 6.0)  # the first face talks, the second keeps still
    misfits = {}
    for name, processor in zip(("host", "dev"), _processors(Shade(), "simswap-224",
                                                            Settings(), device="cpu"),
                               strict=True):
        store, motion = TextureStore(), TextureMotion(measure_static=True)
        aligned = processor.align(t1_bgr, faces)
        store.put_swapped(1, plan.track_ids, aligned, processor.swap_crops(aligned, VECTOR),
                          plan.sources, greys=frame_greys(t1_bgr, aligned))
        with HostSyncCounter() as syncs:
            textures_for_frame(store, motion, plan, processor.align(later, faces),
                               mapped=False, mode="static", live_mouth=False, image=later)
        if name == "dev":
            assert syncs.calls["Tensor.cpu of a device tensor"] == 0, dict(syncs.calls)
        misfits[name] = [motion.unexplained[f.track_id][1] for f in faces]
    assert misfits["dev"] == pytest.approx(misfits["host"], abs=0.5)
    assert misfits["host"][0] > misfits["host"][1] + 1.0  # the talker fits worst


# --- issue 25: one generator and one parser launch a frame; the strength's budget ----------


def _launches() -> int:
    from tests import fake_cuda

    return sum(len(v) for v in fake_cuda._launches.values())


def test_four_identities_cost_one_generator_and_one_parser_launch(
        t1_bgr: np.ndarray, t1_faces: list[Face], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Four faces wearing four people: one generator launch (one identity vector per row)
    and one parser call, and still one host wait (the download). Before: one generator and
    one parser call per identity (eight launches). Each face gets its own person's vector."""
    import cv2

    from realtime.frame.process import swap_by_source
    from tests.cuda_copies import HostSyncCounter

    image = cv2.resize(t1_bgr, (t1_bgr.shape[1] // 2, t1_bgr.shape[0] // 2),
                       interpolation=cv2.INTER_AREA)
    faces = [Face(f.track_id, Detection(f.box / 2, f.detection.score, f.landmarks / 2))
             for f in t1_faces[:4]]
    dev = _trt_processor(tmp_path, monkeypatch, "parsing")
    assert dev.parser is not None
    people = [SourceFace(f"p{i}", (), {"inswapper-128": l2_normalize(
        np.random.default_rng(10 + i).standard_normal(512))}) for i in range(4)]
    seen: list[torch.Tensor] = []
    plain_run = dev._engine.run_torch

    def run(feeds: Any) -> Any:
        seen.append(feeds["source"].clone())
        return plain_run(feeds)

    dev._engine.run_torch = run  # type: ignore[method-assign]
    parses = [0]
    plain_parse = dev.parser.engine.run_torch  # type: ignore[attr-defined]

    def parse(feeds: Any) -> Any:
        parses[0] += 1
        return plain_parse(feeds)

    dev.parser.engine.run_torch = parse  # type: ignore[attr-defined]
    aligned = dev.align(image, faces)
    dev.composite(image, aligned, swap_by_source(dev, aligned, people,
                                                  [f.track_id for f in faces]))  # warm
    seen.clear()
    parses[0] = 0
    before = _launches()
    with HostSyncCounter() as syncs:
        aligned = dev.align(image, faces)
        crops = swap_by_source(dev, aligned, people, [f.track_id for f in faces])
        out = dev.composite(image, aligned, crops)
    assert _launches() - before == 1 and parses[0] == 1 and len(seen) == 1
    expected = np.stack([p.embeddings["inswapper-128"] for p in people]).astype(np.float32)
    np.testing.assert_allclose(seen[0].numpy(), expected, atol=1e-6)
    assert dict(syncs.calls) == {"Tensor.cpu of a device tensor": 1}
    assert not np.array_equal(out, image)


class _HostEncoder:
    """An identity encoder on the host (as the app's ArcFace on ONNX Runtime)."""

    family = "inswapper-128"

    def prepare_crop(self, crop: np.ndarray) -> np.ndarray:
        return crop.astype(np.float32)[None]

    def forward_identity(self, batch: np.ndarray) -> np.ndarray:
        rng = np.random.default_rng(int(np.asarray(batch).sum()) % 1000)
        return rng.standard_normal(512).astype(np.float32)

    def to_source(self, vector: np.ndarray) -> np.ndarray:
        return vector


def test_a_strength_other_than_one_downloads_all_crops_at_once(
        t1_bgr: np.ndarray, t1_faces: list[Face], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Identity strength 0.6 steers each face's vector with the host encoder: the crops
    come down in one download for all faces (before: one per face), then the frame's."""
    import cv2

    from tests.cuda_copies import HostSyncCounter

    image = cv2.resize(t1_bgr, (t1_bgr.shape[1] // 2, t1_bgr.shape[0] // 2),
                       interpolation=cv2.INTER_AREA)
    faces = [Face(f.track_id, Detection(f.box / 2, f.detection.score, f.landmarks / 2))
             for f in t1_faces[:4]]
    dev = _trt_processor(tmp_path, monkeypatch, "box")
    dev.encoder = _HostEncoder()  # type: ignore[assignment]
    dev.update_settings(Settings(mask="box", identity_strength=0.6))
    dev.process(image, faces, VECTOR)  # warm
    with HostSyncCounter() as syncs:
        out, _ = dev.process(image, faces, VECTOR)
    assert dict(syncs.calls) == {"Tensor.cpu of a device tensor": 2}, dict(syncs.calls)
    assert not np.array_equal(out, image)


def test_out_of_gpu_memory_halves_the_faces_per_call_instead_of_ending(
        t1_bgr: np.ndarray, t1_faces: list[Face]) -> None:
    """Issue 25 item 5: a generator call that runs out of memory above two faces: the
    frame still comes out (two calls of two), a notice says so, and later frames keep the
    smaller batch. Before: the OutOfMemoryError ended the session."""
    host, dev = _processors(Shade(), "simswap-224", Settings())
    engine = dev._engine
    plain = engine.run_torch
    calls: list[int] = []

    def tight(feeds: Any) -> Any:
        rows = int(feeds["target"].shape[0])
        calls.append(rows)
        if rows > 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 1.50 GiB")
        return plain(feeds)

    engine.run_torch = tight  # type: ignore[method-assign]
    faces = t1_faces[:4]
    out, _ = dev.process(t1_bgr, faces, VECTOR)
    ref, _ = host.process(t1_bgr, faces, VECTOR)
    _assert_same(t1_bgr, ref, out, host, faces)
    assert calls == [4, 2, 2] and dev.batch_cap.rows == 2
    assert dev.batch_cap.notice is not None and "2 face(s)" in dev.batch_cap.notice
    calls.clear()
    dev.process(t1_bgr, faces, VECTOR)
    assert calls == [2, 2]

    def none_fit(feeds: Any) -> Any:
        raise torch.OutOfMemoryError("CUDA out of memory")

    engine.run_torch = none_fit  # type: ignore[method-assign]
    from engines.base import EngineError

    with pytest.raises(EngineError, match="even at one face"):
        dev.process(t1_bgr, faces, VECTOR)


def test_on_a_gpu_a_batched_generator_swaps_every_face_per_job() -> None:
    """One launch takes all faces on the GPU: the async worker's job then holds them all
    (``batch_swaps``); on the CPU device one face a job, stalest first."""
    _, dev = _processors(Shade(), "simswap-224", Settings())
    assert dev.swapper.batched and not dev.batch_swaps and not dev.queues_on_device
    dev._cuda = True
    assert dev.batch_swaps and dev.queues_on_device
