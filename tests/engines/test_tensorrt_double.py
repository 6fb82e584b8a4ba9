"""Controls: tests/fake_tensorrt.py and tests/fake_cuda.py refuse what TensorRT and CUDA
refuse (issue 22), so the runtime tests on them can fail for the right reasons."""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from engines import tensorrt as trt_engine
from tests import fake_cuda
from tests import fake_tensorrt as fake


@pytest.fixture
def rec(monkeypatch: pytest.MonkeyPatch) -> fake.Recorder:
    recorder = fake.Recorder()
    monkeypatch.setitem(sys.modules, "tensorrt", fake.fake_tensorrt(rec=recorder))
    fake_cuda.install(monkeypatch)
    return recorder


def _engine(tmp_path: Path, dtypes: dict[str, str] | None = None, op: str = "abs") -> Any:
    trt = sys.modules["tensorrt"]
    blob = fake.engine_bytes({"x": (2, 4)}, {"y": (2, 4)}, op=op, dtypes=dtypes)
    return trt.Runtime(trt.Logger("warning")).deserialize_cuda_engine(blob)


def _device(shape: tuple[int, ...], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return trt_engine.aligned_empty(shape, dtype, torch.device("cpu"))


def _bound(tmp_path: Path, dtypes: dict[str, str] | None = None, op: str = "abs",
           dtype: torch.dtype = torch.float32) -> tuple[Any, torch.Tensor, torch.Tensor]:
    context = _engine(tmp_path, dtypes, op).create_execution_context()
    x, y = _device((2, 4), dtype), _device((2, 4), dtype)
    x.copy_(torch.tensor([[-1.5, 2.0, -3.0, 4.25]] * 2))
    y.zero_()
    assert context.set_tensor_address("x", x.data_ptr())
    assert context.set_tensor_address("y", y.data_ptr())
    return context, x, y


def test_execute_async_v3_only_queues_the_work(rec: fake.Recorder, tmp_path: Path) -> None:
    context, x, y = _bound(tmp_path)
    stream = torch.cuda.Stream()
    assert context.execute_async_v3(stream.cuda_stream)
    assert torch.equal(y, torch.zeros(2, 4)) and rec.executions == 0  # not run yet
    event = torch.cuda.Event()
    event.record(stream)
    assert not event.query()
    x.fill_(-7.0)  # written before the queued work ran: the work reads it (use after reuse)
    event.synchronize()
    assert event.query() and torch.equal(y, torch.full((2, 4), 7.0))


@pytest.mark.parametrize("kind,dtype", [("HALF", torch.float16), ("BF16", torch.bfloat16),
                                        ("INT32", torch.int32)])
def test_half_bf16_and_int32_tensors(rec: fake.Recorder, tmp_path: Path, kind: str,
                                     dtype: torch.dtype) -> None:
    context, x, y = _bound(tmp_path, {"x": kind, "y": kind}, dtype=dtype)
    assert context.execute_async_v3(0)
    fake_cuda.flush(0)
    assert y.dtype == dtype and torch.equal(y, x.abs())
    assert _engine(tmp_path, {"x": kind}).get_tensor_dtype("x").name == kind


def test_set_tensor_address_refuses_null_host_and_misaligned(rec: fake.Recorder,
                                                             tmp_path: Path) -> None:
    context = _engine(tmp_path).create_execution_context()
    good = _device((2, 4))
    assert not context.set_tensor_address("x", 0)
    assert not context.set_tensor_address("x", good.data_ptr() + 64)  # 64-aligned only
    assert not context.set_tensor_address("x", fake.host_buffer(rec, (2, 4)).ctypes.data)
    assert not context.set_tensor_address("nope", good.data_ptr())
    assert not context.execute_async_v3(0)  # nothing was bound
    assert context.set_tensor_address("x", good.data_ptr())


def test_shapes_are_dims_not_tuples(rec: fake.Recorder, tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    dims = engine.get_tensor_shape("x")
    assert not isinstance(dims, tuple) and dims != (2, 4)
    assert len(dims) == 2 and (dims[0], dims[1]) == (2, 4)


def test_builder_refusals(rec: fake.Recorder) -> None:
    trt = sys.modules["tensorrt"]
    builder = trt.Builder(trt.Logger("warning"))
    config = builder.create_builder_config()
    assert config.create_timing_cache(b"not a timing cache") is None  # a damaged file
    with pytest.raises(TypeError, match="incompatible function arguments"):
        config.set_timing_cache(None, ignore_mismatch=False)
    # a strongly typed network takes no precision flag and no layer precision
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    config.set_flag(trt.BuilderFlag.FP16)
    assert builder.build_serialized_network(network, config) is None
    assert any("FP16 on a strongly typed network" in e for e in rec.build_errors)
    # a profile whose min > max fails the build
    profile = builder.create_optimization_profile()
    profile.set_shape("target", (2, 3, 64, 64), (1, 3, 64, 64), (1, 3, 64, 64))
    config = builder.create_builder_config()
    config.add_optimization_profile(profile)
    assert builder.build_serialized_network(builder.create_network(2), config) is None
    assert any("min <= opt <= max" in e for e in rec.build_errors)


def test_a_strongly_typed_network_refuses_layer_precisions() -> None:
    rec = fake.Recorder()
    trt = fake.fake_tensorrt(rec=rec, layers=[("/in", "NORMALIZATION", "y")])
    builder = trt.Builder(trt.Logger("warning"))
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    network.get_layer(0).precision = trt.float32
    config = builder.create_builder_config()
    assert builder.build_serialized_network(network, config) is None
    assert rec.pinned == {} and "strongly typed" in rec.build_errors[0]


def test_weak_typing_warns_on_tensorrt_10(rec: fake.Recorder) -> None:
    trt = sys.modules["tensorrt"]
    config = trt.Builder(trt.Logger("warning")).create_builder_config()
    with pytest.warns(DeprecationWarning, match="10.12"):
        config.set_flag(trt.BuilderFlag.FP16)
    assert rec.deprecated == ["BuilderFlag.FP16"]


def test_tensorrt_11_has_no_precision_flags() -> None:
    trt = fake.fake_tensorrt(fp16_flag=False, rec=fake.Recorder())
    for flag in ("FP16", "INT8", "OBEY_PRECISION_CONSTRAINTS"):
        with pytest.raises(AttributeError):
            getattr(trt.BuilderFlag, flag)
    assert hasattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED")  # kept, ignored


@pytest.mark.parametrize("call", ["execute_async_v3", "set_input_shape"])
def test_two_threads_in_one_context_are_caught_even_when_instant(
        rec: fake.Recorder, tmp_path: Path, call: str) -> None:
    """The launch itself only queues work (instant); the double still sees two threads."""
    rec.call_seconds = 0.05
    context, _, _ = _bound(tmp_path)
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def enter() -> None:
        start.wait(5)
        try:
            if call == "execute_async_v3":
                context.execute_async_v3(0)
            else:
                context.set_input_shape("x", (2, 4))
        except RuntimeError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=enter) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(errors) == 1 and "two threads" in str(errors[0])


def test_a_global_capture_refuses_other_threads(rec: fake.Recorder) -> None:
    """torch's default capture_error_mode="global": another thread's CUDA work during the
    capture is an error; "thread_local" allows it."""
    def other(errors: list[BaseException]) -> None:
        try:
            fake_cuda.enqueue(0, lambda: None)
        except RuntimeError as exc:
            errors.append(exc)

    for mode, fails in (("global", True), ("thread_local", False)):
        errors: list[BaseException] = []
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph, stream=torch.cuda.Stream(), capture_error_mode=mode):
                thread = threading.Thread(target=other, args=(errors,))
                thread.start()
                thread.join(5)
        except RuntimeError as exc:  # the capture itself fails as it ends
            errors.append(exc)
        assert len(errors) == (2 if fails else 0), mode
    fake_cuda.flush(0)


def test_pageable_and_pinned(rec: fake.Recorder) -> None:
    pinned = torch.empty((4,), pin_memory=True)
    assert pinned.is_pinned() and not torch.empty((4,)).is_pinned()
    assert np.shares_memory(pinned.numpy(), pinned.numpy())


def test_the_creation_flags_are_the_real_enums() -> None:
    """NvInfer.h: TensorRT 10's kEXPLICIT_BATCH = 0 and kSTRONGLY_TYPED = 1; TensorRT 11
    dropped kEXPLICIT_BATCH, so kSTRONGLY_TYPED = 0 (issue 25: the fake had 1 for both)."""
    ten = fake.module(fp16_flag=True)
    eleven = fake.module(fp16_flag=False)
    assert (ten.NetworkDefinitionCreationFlag.EXPLICIT_BATCH,  # type: ignore[attr-defined]
            ten.NetworkDefinitionCreationFlag.STRONGLY_TYPED) == (0, 1)  # type: ignore[attr-defined]
    assert eleven.NetworkDefinitionCreationFlag.STRONGLY_TYPED == 0  # type: ignore[attr-defined]
    assert not hasattr(eleven.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH")
    trt = fake.fake_tensorrt(fp16_flag=True, rec=fake.Recorder())
    builder = trt.Builder(trt.Logger(trt.Logger.WARNING))
    assert builder.create_network(1 << 1).strongly_typed
    assert not builder.create_network(1 << 0).strongly_typed  # explicit batch, not typing
