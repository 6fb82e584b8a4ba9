"""Identity strength: the steered vector, the encoder crop, per-face vectors in the swap."""

from __future__ import annotations

import itertools
from collections.abc import Mapping

import numpy as np
import pytest

from engines.base import TensorSpec
from realtime.config import Settings
from realtime.faces.align import warp_face
from realtime.faces.identity import IdentityEncoder, l2_normalize
from realtime.frame.process import FrameProcessor
from realtime.frame.strength import (
    check_strength,
    encoder_crop,
    face_vectors,
    steer_identity,
)
from realtime.frame.swap import FaceSwapper
from realtime.types import AlignedFace, ValueTypeError
from tests.realtime.frame.test_swap import EchoEngine

T1_FACE = np.array([[500, 300], [540, 300], [520, 325], [505, 345], [535, 345]], np.float32)


def _unit(seed: int) -> np.ndarray:
    return l2_normalize(np.random.default_rng(seed).normal(size=512))


class MeanEncoderEngine:
    """A 112-input encoder whose vector depends on the crop: the per-channel means of
    four quadrants, tiled to 512 (different faces → different vectors)."""

    backend = "fake"
    inputs: tuple[TensorSpec, ...] = (TensorSpec("x", (1, 3, 112, 112), "float32"),)
    outputs: tuple[TensorSpec, ...] = (TensorSpec("y", (1, 512), "float32"),)

    def __init__(self) -> None:
        self.seen: list[np.ndarray] = []

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        x = feeds["x"]
        assert x.shape == (1, 3, 112, 112) and x.dtype == np.float32
        self.seen.append(x)
        quads = [x[:, :, :56, :56], x[:, :, :56, 56:], x[:, :, 56:, :56], x[:, :, 56:, 56:]]
        feats = np.concatenate([q.mean(axis=(2, 3)) for q in quads], axis=1)  # (1, 12)
        ramp = np.linspace(1.0, 2.0, 512, dtype=np.float32)
        return {"y": np.tile(feats, (1, 43))[:, :512] * ramp + 0.05}

    def close(self) -> None:
        pass


def test_strength_one_is_the_source_and_zero_is_the_target() -> None:
    src, tgt = _unit(1), _unit(2)
    np.testing.assert_allclose(steer_identity(src, tgt, 1.0), src, atol=1e-6)
    np.testing.assert_allclose(steer_identity(src, tgt, 0.0), tgt, atol=1e-6)


def test_strength_moves_monotonically_and_stays_unit_length() -> None:
    src, tgt = _unit(3), _unit(4)
    cos_to_target = []
    for s in (0.0, 0.5, 1.0, 1.5, 2.0):
        v = steer_identity(src, tgt, s)
        assert v.dtype == np.float32 and np.linalg.norm(v) == pytest.approx(1.0, abs=1e-5)
        cos_to_target.append(float(v @ tgt))
    # further from the target's own identity at each step, past the source beyond 1
    assert all(a > b for a, b in itertools.pairwise(cos_to_target))
    assert cos_to_target[-1] < float(src @ tgt)


def test_opposite_vectors_at_half_fall_back_to_the_source() -> None:
    src = _unit(5)
    np.testing.assert_array_equal(steer_identity(src, -src, 0.5), src)
    with pytest.raises(ValueTypeError, match="differ in size"):
        steer_identity(src, src[:256], 0.5)


@pytest.mark.parametrize("value", [-0.1, 2.01, float("nan"), float("inf")])
def test_out_of_range_strength_is_refused(value: float) -> None:
    with pytest.raises(ValueError, match=r"expected 0\.\.2"):
        check_strength(value)


def test_inswapper_encoder_crop_is_the_arcface_crop(t1_bgr: np.ndarray) -> None:
    """The 128 template is the ArcFace one shifted 8 px: the 112 crop cut from it is the
    crop a separate ArcFace warp makes."""
    swap_crop = warp_face(t1_bgr, T1_FACE, "inswapper-128").crop
    arc = warp_face(t1_bgr, T1_FACE, "arcface-112").crop
    cut = encoder_crop("inswapper-128", swap_crop)
    assert cut.shape == (112, 112, 3) and cut.flags.c_contiguous
    diff = np.abs(cut.astype(int) - arc.astype(int))
    # OpenCV's fixed-point bilinear weights round the two warps slightly differently
    assert diff.max() <= 2 and diff.mean() < 0.2
    simswap = warp_face(t1_bgr, T1_FACE, "simswap-224").crop
    assert encoder_crop("simswap-224", simswap) is simswap
    with pytest.raises(ValueTypeError, match="expected 128×128"):
        encoder_crop("inswapper-128", simswap)


def _inswapper_encoder() -> tuple[IdentityEncoder, MeanEncoderEngine]:
    engine = MeanEncoderEngine()
    emap = np.random.default_rng(7).normal(size=(512, 512)).astype(np.float32)
    return IdentityEncoder("inswapper-128", engine, emap=emap), engine


def test_face_vectors_use_each_targets_own_identity(t1_bgr: np.ndarray) -> None:
    encoder, engine = _inswapper_encoder()
    shifted = T1_FACE + np.float32(170.0)  # another face region of t1
    crops = [warp_face(t1_bgr, lm, "inswapper-128").crop for lm in (T1_FACE, shifted)]
    source = _unit(8)
    same = face_vectors(source, crops, 1.0, encoder)
    assert same.shape == (2, 512) and not engine.seen  # strength 1: no encoder call
    np.testing.assert_array_equal(same, np.stack([source, source]))
    steered = face_vectors(source, crops, 0.5, encoder)
    assert len(engine.seen) == 2 and steered.shape == (2, 512)
    for crop, vector in zip(crops, steered, strict=True):
        own = encoder.to_source(l2_normalize(encoder.forward_identity(
            encoder.prepare_crop(crop[:112, 8:120]))))
        np.testing.assert_allclose(vector, steer_identity(source, own, 0.5), atol=1e-5)
    assert not np.allclose(steered[0], steered[1])


def test_without_an_encoder_the_source_is_kept(caplog: pytest.LogCaptureFixture) -> None:
    crops = [np.zeros((128, 128, 3), np.uint8)]
    out = face_vectors(_unit(9), crops, 1.5, None)
    np.testing.assert_array_equal(out[0], _unit(9))
    assert "needs the identity encoder" in caplog.text


def test_the_processor_feeds_one_steered_vector_per_face(t1_bgr: np.ndarray) -> None:
    engine = EchoEngine(128)
    encoder, _ = _inswapper_encoder()
    settings = Settings(identity_strength=1.5)
    processor = FrameProcessor(FaceSwapper("inswapper-128", engine), encoder, settings)
    faces = [T1_FACE, T1_FACE + np.float32(170.0)]
    aligned = [warp_face(t1_bgr, lm, "inswapper-128") for lm in faces]
    source = _unit(10)
    processor.swap_crops(aligned, source)
    fed = engine.calls[-1]["s"]
    assert fed.shape == (2, 512)
    expected = face_vectors(source, [a.crop for a in aligned], 1.5, encoder)
    np.testing.assert_allclose(fed, expected, atol=1e-6)
    processor.update_settings(settings.with_changes(identity_strength=1.0))
    processor.swap_crops(aligned, source)
    np.testing.assert_array_equal(engine.calls[-1]["s"], np.stack([source, source]))


def test_swapper_takes_one_vector_per_face_or_refuses_the_wrong_count() -> None:
    engine = EchoEngine(128)
    swapper = FaceSwapper("inswapper-128", engine)
    matrix = np.array([[1.0, 0, 0], [0, 1.0, 0]])
    crops = [AlignedFace(np.zeros((128, 128, 3), np.uint8), matrix, 128)] * 2
    vectors = np.stack([_unit(11), _unit(12)])
    swapper.swap(crops, vectors)
    np.testing.assert_array_equal(engine.calls[-1]["s"], vectors)
    with pytest.raises(ValueTypeError, match=r"\(2, 512\)"):
        swapper.swap(crops, vectors[:1])
