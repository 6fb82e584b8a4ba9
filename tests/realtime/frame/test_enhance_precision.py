"""The enhancer's FP16 engine is compared with FP32 on t1.jpg's faces at open; FP32 is kept
when they differ beyond MIN_PSNR_DB or FP16 gives NaN/Inf; the enhancer's FP32 TensorRT
fallback is built ahead like the generator's."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest

from engines.base import EngineError, TensorSpec
from realtime.faces.align import FFHQ_512_TEMPLATE
from realtime.frame.enhance_precision import (
    MIN_PSNR_DB,
    T1_LANDMARKS,
    fp16_psnr,
    open_checked,
    reference_faces,
)

SPEC = (TensorSpec("input", ("batch", 3, 512, 512), "float32"),)
OUT = (TensorSpec("output", ("batch", 3, 512, 512), "float32"),)


class Restorer:
    """A fake enhancer engine: a fixed smooth transform, plus (FP16 stand-in) an error of
    ``noise`` RMS or a non-finite pixel."""

    inputs = SPEC
    outputs = OUT

    def __init__(self, backend: str, *, noise: float = 0.0, inf: bool = False) -> None:
        self.backend = backend
        self.noise = noise
        self.inf = inf
        self.closed = False
        self.calls = 0

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.calls += 1
        x = feeds["input"]
        out = np.tanh(1.3 * x).astype(np.float32)
        if self.noise:
            out += np.random.default_rng(1).normal(0, self.noise, out.shape).astype(np.float32)
        if self.inf:
            out[0, 0, 10, 10] = np.inf
        return {"output": out}

    def close(self) -> None:
        self.closed = True


@pytest.fixture(scope="module")
def faces() -> np.ndarray:
    return reference_faces()


def test_the_reference_faces_are_t1s_faces_on_the_ffhq_template(faces: np.ndarray) -> None:
    assert faces.shape == (len(T1_LANDMARKS), 3, 512, 512) and faces.dtype == np.float32
    assert faces.min() >= -1.0 and faces.max() <= 1.0
    # a face, not a flat patch: the eyes (FFHQ template points) are darker than the cheeks
    for face in faces:
        grey = face.mean(axis=0)
        eyes = [grey[int(y) - 4:int(y) + 4, int(x) - 6:int(x) + 6].mean()
                for x, y in FFHQ_512_TEMPLATE[:2]]
        cheek = grey[300:330, 170:200].mean()
        assert max(eyes) < cheek, (eyes, cheek)


def _opener(engines: dict[str, Restorer]) -> tuple[list[str], object]:
    asked: list[str] = []

    def open_at(precision: str) -> Restorer:
        asked.append(precision)
        return engines[precision]

    return asked, open_at


@pytest.mark.parametrize(("noise", "inf", "kept"), [(0.002, False, "fp16"),
                                                    (0.05, False, "fp32"),
                                                    (0.0, True, "fp32")])
def test_fp32_is_kept_when_fp16_differs_beyond_the_threshold(
    faces: np.ndarray, noise: float, inf: bool, kept: str,
) -> None:  # fmt: skip
    engines = {"fp16": Restorer("tensorrt", noise=noise, inf=inf), "fp32": Restorer("tensorrt")}
    asked, open_at = _opener(engines)
    engine, check = open_checked(open_at, faces=faces[:2])  # type: ignore[arg-type]
    assert asked == ["fp16", "fp32"]
    assert check is not None and check.kept == kept and engine is engines[kept]
    other = engines["fp32" if kept == "fp16" else "fp16"]
    assert other.closed and not engines[kept].closed
    if kept == "fp16":
        assert check.psnr_db >= MIN_PSNR_DB
    elif inf:
        assert np.isnan(check.psnr_db)
    else:
        assert check.psnr_db < MIN_PSNR_DB


def test_fp32_backends_are_not_compared(faces: np.ndarray) -> None:
    engines = {"fp16": Restorer("onnxruntime-cpu", noise=0.5), "fp32": Restorer("x")}
    asked, open_at = _opener(engines)
    engine, check = open_checked(open_at, faces=faces[:1])  # type: ignore[arg-type]
    assert asked == ["fp16"] and check is None and engine is engines["fp16"]
    assert engines["fp16"].calls == 0


def test_an_fp32_engine_that_cannot_open_keeps_fp16_with_a_warning(
    faces: np.ndarray, caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    fp16 = Restorer("tensorrt")

    def open_at(precision: str) -> Restorer:
        if precision == "fp32":
            raise EngineError("out of memory building the FP32 engine")
        return fp16

    engine, check = open_checked(open_at, faces=faces[:1])  # type: ignore[arg-type]
    assert engine is fp16 and check is None and "not compared" in caplog.text


def test_the_psnr_is_measured_on_the_images_not_the_raw_range(faces: np.ndarray) -> None:
    # an RMS error of 0.02 in [-1, 1] is 0.01 in [0, 1]: 40 dB
    value = fp16_psnr(Restorer("tensorrt", noise=0.02), Restorer("tensorrt"), faces[:1])
    assert 39.0 < value < 41.0


def test_the_enhancers_fp32_fallback_is_built_ahead(tmp_path: Path) -> None:
    from engines.tensorrt import builds_fp32_ahead
    from export.onnx import onnx_path_for

    assert builds_fp32_ahead(onnx_path_for(tmp_path, "gfpgan-1.4"))
    assert not builds_fp32_ahead(onnx_path_for(tmp_path, "face-parsing"))
