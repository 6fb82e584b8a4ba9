"""Swappers and identity encoders: tensor conventions, batching, emap, real ONNX files."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest

from engines.base import TensorSpec
from engines.onnxruntime import OnnxRuntimeEngine
from realtime.faces.align import warp_face
from realtime.faces.identity import (
    UnknownModelError,
    l2_normalize,
    load_encoder,
)
from realtime.frame.swap import FaceSwapper, load_swapper
from realtime.types import AlignedFace, ValueTypeError


class EchoEngine:
    """Returns its image input unchanged (or a function of it); records every call."""

    backend = "fake"

    def __init__(self, size: int, batch: int | str = "N", names: tuple[str, str] = ("t", "s"),
                 transform=None) -> None:  # type: ignore[no-untyped-def]
        self.inputs: tuple[TensorSpec, ...] = (
            TensorSpec(names[0], (batch, 3, size, size), "float32"),
            TensorSpec(names[1], (batch, 512), "float32"),
        )
        self.outputs: tuple[TensorSpec, ...] = (
            TensorSpec("out", (batch, 3, size, size), "float32"),
        )
        self.calls: list[dict[str, np.ndarray]] = []
        self.transform = transform

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.calls.append(dict(feeds))
        image = feeds[self.inputs[0].name]
        return {"out": image if self.transform is None else self.transform(feeds)}

    def close(self) -> None:
        pass


class VectorEngine:
    """An 'encoder' whose output is the per-channel mean of its input, tiled to 512."""

    backend = "fake"
    inputs: tuple[TensorSpec, ...] = (TensorSpec("x", (1, 3, 112, 112), "float32"),)
    outputs: tuple[TensorSpec, ...] = (TensorSpec("y", (1, 512), "float32"),)

    def __init__(self) -> None:
        self.seen: list[np.ndarray] = []

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        x = feeds["x"]
        self.seen.append(x)
        means = x.mean(axis=(2, 3))  # (1, 3)
        return {"y": np.tile(means, (1, 171))[:, :512] + 0.01}

    def close(self) -> None:
        pass


def _crops(n: int, size: int, seed: int = 0) -> list[AlignedFace]:
    rng = np.random.default_rng(seed)
    matrix = np.array([[1.0, 0, 0], [0, 1.0, 0]])
    return [
        AlignedFace(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), matrix, size)
        for _ in range(n)
    ]


def test_echo_swap_round_trips_and_batches_in_one_call() -> None:
    engine = EchoEngine(128)
    swapper = FaceSwapper("inswapper-128", engine)
    crops = _crops(3, 128)
    batch = swapper.prepare_targets(crops)
    assert batch.shape == (3, 3, 128, 128) and batch.dtype == np.float32
    assert batch.min() >= 0.0 and batch.max() <= 1.0
    # channel 0 is red: BGR crop's channel 2
    np.testing.assert_allclose(batch[1, 0], crops[1].crop[:, :, 2] / 255.0, atol=1e-6)
    out = swapper.swap(crops, l2_normalize(np.ones(512)))
    assert len(engine.calls) == 1 and engine.calls[0]["s"].shape == (3, 512)
    for got, crop in zip(out, crops, strict=True):
        np.testing.assert_array_equal(got, crop.crop)
    assert swapper.batched and swapper.crop_size == 128 and swapper.backend == "fake"


def test_fixed_batch_loops_one_face_per_call_with_named_inputs() -> None:
    engine = EchoEngine(224, batch=1, names=("target", "source"))
    swapper = FaceSwapper("simswap-224", engine)
    assert not swapper.batched
    out = swapper.swap(_crops(2, 224), l2_normalize(np.arange(512.0)))
    assert len(out) == 2 and len(engine.calls) == 2
    assert all(c["target"].shape == (1, 3, 224, 224) for c in engine.calls)
    np.testing.assert_allclose(engine.calls[1]["source"][0], l2_normalize(np.arange(512.0)))


def test_identity_vector_reaches_the_generator() -> None:
    # output = identity's first value everywhere: proves the vector is fed per face
    engine = EchoEngine(128, transform=lambda f: np.broadcast_to(
        f["s"][:, :1, None, None], f["t"].shape).copy())  # fmt: skip
    swapper = FaceSwapper("inswapper-128", engine)
    vector = np.zeros(512, np.float32)
    vector[0] = 0.5
    out = swapper.swap(_crops(2, 128), vector)
    assert all(int(o.mean()) in (127, 128) for o in out)


def test_decode_clips_and_handles_nan() -> None:
    swapper = FaceSwapper("inswapper-128", EchoEngine(128))
    raw = np.zeros((1, 3, 128, 128), np.float32)
    raw[0, 0] = 2.0  # red overflows
    raw[0, 2] = np.nan
    (crop,) = swapper.decode_outputs(raw)
    assert crop.dtype == np.uint8 and crop.shape == (128, 128, 3)
    assert (crop[:, :, 2] == 255).all() and (crop[:, :, 0] == 0).all()


def test_wrong_sizes_and_names_raise() -> None:
    swapper = FaceSwapper("inswapper-128", EchoEngine(128))
    with pytest.raises(ValueTypeError, match="expected size 128"):
        swapper.prepare_targets(_crops(1, 224))
    with pytest.raises(ValueTypeError, match=r"expected \(512,\)"):
        swapper.forward_swap(swapper.prepare_targets(_crops(1, 128)), np.ones(128))
    with pytest.raises(ValueTypeError, match="expected a 224×224"):
        FaceSwapper("simswap-224", EchoEngine(128))
    with pytest.raises(UnknownModelError, match="expected one of"):
        FaceSwapper("simswap-999", EchoEngine(128))
    assert swapper.swap([], np.ones(512)) == []










def test_real_inswapper_like_model_swaps_a_batch(random_models_dir: Path,
                                                  t1_bgr: np.ndarray) -> None:
    """The random-weight inswapper file through the engine registry."""
    swapper = load_swapper("inswapper-128", random_models_dir, engine="onnxruntime-cpu",
                           threads=1)
    encoder = load_encoder("inswapper-128", random_models_dir, engine="onnxruntime-cpu",
                           threads=1)
    # the thread cap reaches ONNX Runtime (and stops its idle spinning)
    for engine in (swapper.engine, encoder.engine):
        assert isinstance(engine, OnnxRuntimeEngine) and engine.threads == 1
        assert engine.session_config("session.intra_op.allow_spinning") == "0"
    landmarks = np.array([[500, 300], [540, 300], [520, 325], [505, 345], [535, 345]], np.float32)
    vector = encoder.embed(t1_bgr, landmarks)
    assert vector.shape == (512,) and np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)
    crops = [warp_face(t1_bgr, landmarks, "inswapper-128")] * 2
    out = swapper.swap(crops, vector)
    assert len(out) == 2 and out[0].shape == (128, 128, 3)
    assert not np.array_equal(out[0], crops[0].crop)
    np.testing.assert_array_equal(out[0], out[1])
    assert len(encoder.model_key) == 64
