"""The face enhancer around its engine: tensors, the FFHQ 512 view and back, the paste."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pytest

from engines.base import TensorSpec
from realtime.config import Settings
from realtime.faces.align import warp_face
from realtime.frame.enhance import (
    FaceEnhancer,
    LazyEnhancer,
    scale_matrix,
    to_ffhq,
    upscale_factor,
)
from realtime.frame.process import FrameProcessor
from realtime.frame.swap import FaceSwapper
from realtime.types import Detection, Face, ValueTypeError
from tests.realtime.frame.test_swap import EchoEngine

T1_FACE = np.array([[500, 300], [540, 300], [520, 325], [505, 345], [535, 345]], np.float32)


class IdentityGfpgan:
    """An 'enhancer' engine that returns its input (so geometry can be checked exactly),
    or a constant colour; input [N,3,512,512] float32 as the real export."""

    backend = "fake"
    inputs: tuple[TensorSpec, ...] = (TensorSpec("input", ("batch", 3, 512, 512), "float32"),)
    outputs: tuple[TensorSpec, ...] = (TensorSpec("output", ("batch", 3, 512, 512), "float32"),)

    def __init__(self, constant: float | None = None) -> None:
        self.constant = constant
        self.calls: list[np.ndarray] = []

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        x = feeds["input"]
        assert x.dtype == np.float32 and x.shape[1:] == (3, 512, 512)
        assert x.min() >= -1.0 and x.max() <= 1.0
        self.calls.append(x)
        if self.constant is not None:
            return {"output": np.full_like(x, self.constant)}
        return {"output": x.copy()}

    def close(self) -> None:
        pass


def test_tensor_conventions_are_gfpgans() -> None:
    enhancer = FaceEnhancer(IdentityGfpgan())
    face = np.zeros((512, 512, 3), np.uint8)
    face[..., 2] = 255  # red in BGR
    batch = enhancer.prepare([face])
    assert batch.shape == (1, 3, 512, 512)
    np.testing.assert_allclose(batch[0, 0], 1.0)  # R channel first, (x/255 - .5)/.5
    np.testing.assert_allclose(batch[0, 2], -1.0)
    out = np.zeros((1, 3, 512, 512), np.float32)
    out[0, 0] = 2.0  # clamped to 1 → 255
    out[0, 1] = np.nan
    (decoded,) = enhancer.decode(out)
    assert (decoded[..., 2] == 255).all() and (decoded[..., 1] == 128).all()
    with pytest.raises(ValueTypeError, match="one input"):
        FaceEnhancer(EchoEngine(224))

    class Small(IdentityGfpgan):
        inputs: tuple[TensorSpec, ...] = (
            TensorSpec("input", ("batch", 3, 256, 256), "float32"),)

    with pytest.raises(ValueTypeError, match=r"expected \[N, 3, 512, 512\]"):
        FaceEnhancer(Small())


@pytest.mark.parametrize(("family", "factor"), [("simswap-224", 2), ("inswapper-128", 4),
                                                ("simswap-512", 1)])
def test_the_round_trip_through_the_ffhq_view_keeps_the_face(
    t1_bgr: np.ndarray, family: str, factor: int,
) -> None:  # fmt: skip
    crop = warp_face(t1_bgr, T1_FACE, family).crop
    assert upscale_factor(crop.shape[0]) == factor
    engine = IdentityGfpgan()
    (out,) = FaceEnhancer(engine).enhance([crop], family, blend=1.0)
    big = crop.shape[0] * factor
    assert out.shape == (big, big, 3) and out.dtype == np.uint8
    # the engine saw an FFHQ-aligned view: the eyes sit on the FFHQ template's
    view = engine.calls[0][0]
    assert view.shape == (3, 512, 512)
    # an identity engine gives back the face, resampled: compare at the crop's size
    import cv2

    small = cv2.resize(out, (crop.shape[1], crop.shape[0]), interpolation=cv2.INTER_AREA)
    inner = slice(crop.shape[0] // 8, -crop.shape[0] // 8)
    diff = np.abs(small[inner, inner].astype(int) - crop[inner, inner].astype(int))
    assert diff.mean() < 6.0, diff.mean()


def test_to_ffhq_maps_the_swap_template_onto_ffhqs() -> None:
    from realtime.faces.align import (
        FFHQ_512_TEMPLATE,
        INSWAPPER_128_TEMPLATE,
        transform_points,
    )

    mapped = transform_points(to_ffhq("inswapper-128"), INSWAPPER_128_TEMPLATE)
    # a least-squares similarity of 5 points: the two templates differ in shape by ~7 px
    assert np.abs(mapped - FFHQ_512_TEMPLATE).max() < 8.0
    np.testing.assert_allclose(to_ffhq("simswap-512"), [[1, 0, 0], [0, 1, 0]], atol=1e-9)


def test_blend_mixes_the_enhanced_face_with_the_swap() -> None:
    crop = np.full((128, 128, 3), 40, np.uint8)
    white = FaceEnhancer(IdentityGfpgan(constant=1.0))
    full, half, none = (white.enhance([crop], "inswapper-128", b)[0] for b in (1.0, 0.5, 0.0))
    assert full.shape == (512, 512, 3)
    assert int(full[256, 256, 0]) == 255 and int(none[256, 256, 0]) == 40
    assert abs(int(half[256, 256, 0]) - (255 + 40) // 2) <= 1


def test_scale_matrix_keeps_pixel_centres() -> None:
    matrix = np.array([[0.5, 0.1, 3.0], [-0.1, 0.5, 7.0]])
    big = scale_matrix(matrix, 4.0)
    point = np.array([100.0, 50.0, 1.0])
    small_xy = matrix @ point
    np.testing.assert_allclose(big @ point, 4.0 * (small_xy + 0.5) - 0.5)


def test_the_processor_pastes_the_larger_crop_where_the_swap_goes(t1_bgr: np.ndarray) -> None:
    face = Face(0, Detection(np.array([470, 260, 570, 380], np.float32), 0.9, T1_FACE))
    settings = Settings(mask="box")
    plain = FrameProcessor(FaceSwapper("inswapper-128", EchoEngine(128)), None, settings)
    engine = IdentityGfpgan()
    enhanced = FrameProcessor(
        FaceSwapper("inswapper-128", EchoEngine(128)), None,
        settings.with_changes(enhance="gfpgan", enhance_blend=1.0),
        enhancer=LazyEnhancer.of(FaceEnhancer(engine)))
    out_plain, _ = plain.process(t1_bgr, [face], np.ones(512, np.float32) / np.sqrt(512))
    out_enh, _ = enhanced.process(t1_bgr, [face], np.ones(512, np.float32) / np.sqrt(512))
    assert len(engine.calls) == 1
    changed = np.any(out_enh != t1_bgr, axis=2)
    ys, xs = np.nonzero(changed)
    assert 440 < xs.mean() < 600 and 240 < ys.mean() < 400  # pasted on the face
    diff = np.abs(out_enh.astype(int) - out_plain.astype(int))
    assert diff.mean() < 0.5 and np.percentile(diff[changed], 95) < 20
    # the setting off: no enhancer call, the plain result
    enhanced.update_settings(settings)
    again, _ = enhanced.process(t1_bgr, [face], np.ones(512, np.float32) / np.sqrt(512))
    np.testing.assert_array_equal(again, out_plain)
    assert len(engine.calls) == 1


def test_a_missing_enhancer_model_is_logged_once_and_the_swap_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    calls = []

    def opener() -> FaceEnhancer:
        calls.append(1)
        raise FileNotFoundError("gfpgan-1.4 is not installed")

    lazy = LazyEnhancer(opener)
    settings = Settings(mask="box", enhance="gfpgan")
    processor = FrameProcessor(FaceSwapper("inswapper-128", EchoEngine(128)), None, settings,
                               enhancer=lazy)
    crops = [warp_face(np.zeros((200, 200, 3), np.uint8), T1_FACE / 4, "inswapper-128")]
    for _ in range(2):
        out = processor.swap_crops(crops, np.ones(512, np.float32) / np.sqrt(512))
        assert out[0].shape == (128, 128, 3)
        lazy.wait(10)
    assert calls == [1] and lazy.error is not None and "not installed" in lazy.error
    assert lazy.status == "failed" and "not installed" in lazy.status_text
    assert caplog.text.count("face enhancer unavailable") == 1
