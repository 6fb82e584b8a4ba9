"""Identity encoders: SimSwap ArcFace and w600k crops, normalisation, inswapper's emap."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from realtime.faces.align import warp_face
from realtime.faces.identity import (
    IdentityEncoder,
    l2_normalize,
    read_emap,
)
from realtime.types import ValueTypeError
from tests.realtime.frame.test_swap import VectorEngine


def test_simswap_encoder_takes_every_second_pixel_with_imagenet_norm(t1_bgr: np.ndarray) -> None:
    engine = VectorEngine()
    encoder = IdentityEncoder("simswap-224", engine)
    crop = np.random.default_rng(1).integers(0, 256, (224, 224, 3), dtype=np.uint8)
    tensor = encoder.prepare_crop(crop)
    assert tensor.shape == (1, 3, 112, 112)
    expected_red = (crop[::2, ::2, 2] / 255.0 - 0.485) / 0.229
    np.testing.assert_allclose(tensor[0, 0], expected_red, atol=1e-5)
    landmarks = np.array([[500, 300], [540, 300], [520, 325], [505, 345], [535, 345]], np.float32)
    vector = encoder.embed(t1_bgr, landmarks)
    assert vector.shape == (512,) and np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)
    # the encoder saw the 224 SimSwap crop of that face, downsampled
    crop224 = warp_face(t1_bgr, landmarks, "simswap-224").crop
    np.testing.assert_allclose(engine.seen[-1], encoder.prepare_crop(crop224))


def test_simswap_512_encoder_nearest_indices() -> None:
    encoder = IdentityEncoder("simswap-512", VectorEngine())
    crop = np.zeros((512, 512, 3), np.uint8)
    crop[:, :, 2] = (np.arange(512) % 256).astype(np.uint8)[None, :]
    tensor = encoder.prepare_crop(crop)
    index = np.floor(np.arange(112) * 512 / 112).astype(int)
    np.testing.assert_allclose(tensor[0, 0, 0], ((index % 256) / 255.0 - 0.485) / 0.229, atol=1e-5)


def test_inswapper_encoder_uses_arcface_crop_and_emap(t1_bgr: np.ndarray) -> None:
    rng = np.random.default_rng(2)
    emap = rng.normal(size=(512, 512)).astype(np.float32)
    engine = VectorEngine()
    encoder = IdentityEncoder("inswapper-128", engine, emap=emap)
    crop = rng.integers(0, 256, (112, 112, 3), dtype=np.uint8)
    tensor = encoder.prepare_crop(crop)
    np.testing.assert_allclose(tensor[0, 1], (crop[:, :, 1] - 127.5) / 127.5, atol=1e-6)
    landmarks = np.array([[500, 300], [540, 300], [520, 325], [505, 345], [535, 345]], np.float32)
    raw = encoder.identify(t1_bgr, landmarks)
    source = encoder.embed(t1_bgr, landmarks)
    np.testing.assert_allclose(source, l2_normalize(raw @ emap), atol=1e-6)
    assert engine.seen[-1].shape == (1, 3, 112, 112)
    with pytest.raises(ValueTypeError, match="emap"):
        IdentityEncoder("inswapper-128", VectorEngine())


def test_read_emap_takes_the_last_initializer(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    emap = np.random.default_rng(3).normal(size=(512, 512)).astype(np.float32)
    other = numpy_helper.from_array(np.ones((2, 2), np.float32), "w")
    last = numpy_helper.from_array(emap, "emap")
    node = helper.make_node("Add", ["x", "w"], ["y"])
    graph = helper.make_graph(
        [node], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 2])],
        [other, last],
    )  # fmt: skip
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph), str(path))
    np.testing.assert_array_equal(read_emap(path), emap)
    from engines.base import ModelFileError

    graph.initializer.pop()
    onnx.save(helper.make_model(graph), str(path))
    with pytest.raises(ModelFileError, match="512×512 emap"):
        read_emap(path)
    path.write_bytes(b"not onnx")
    with pytest.raises(ModelFileError, match=r"m\.onnx"):
        read_emap(path)
