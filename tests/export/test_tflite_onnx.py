"""The TFLite → ONNX converter against the LiteRT interpreter on MediaPipe's real FaceMesh."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from export.tflite_onnx import (
    TfliteConversionError,
    _same_pads,
    convert_tflite,
    convert_tflite_file,
    tflite_io,
)


def _litert(data: bytes, x: np.ndarray) -> dict[str, np.ndarray]:
    interpreter_mod = pytest.importorskip(
        "ai_edge_litert.interpreter", reason="ai-edge-litert (the dev extra) is not installed")
    interpreter = interpreter_mod.Interpreter(model_content=data)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    return {d["name"]: interpreter.get_tensor(d["index"]).copy()
            for d in interpreter.get_output_details()}


def _onnx(model: object, x: np.ndarray) -> dict[str, np.ndarray]:
    import onnxruntime as ort

    session = ort.InferenceSession(model.SerializeToString())  # type: ignore[attr-defined]
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, {"input_1": x}), strict=True))


@pytest.fixture(scope="module")
def mesh_bytes(face_landmark_tflite: Path) -> bytes:
    return face_landmark_tflite.read_bytes()


@pytest.fixture(scope="module")
def mesh_onnx(mesh_bytes: bytes) -> object:
    return convert_tflite(mesh_bytes, graph_name="face_landmark")


def _face_crop(astronaut_bgr: np.ndarray) -> np.ndarray:
    crop = cv2.resize(astronaut_bgr[35:205, 140:310], (192, 192), interpolation=cv2.INTER_AREA)
    return (cv2.cvtColor(crop, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0)[None]


def test_facemesh_io_kept(mesh_bytes: bytes, mesh_onnx: object) -> None:
    inputs, outputs = tflite_io(mesh_bytes)
    assert inputs == [("input_1", (1, 192, 192, 3))]
    assert dict(outputs) == {"conv2d_20": (1, 1, 1, 1404), "conv2d_30": (1, 1, 1, 1)}
    graph = mesh_onnx.graph  # type: ignore[attr-defined]
    assert [i.name for i in graph.input] == ["input_1"]
    assert {o.name for o in graph.output} == {"conv2d_20", "conv2d_30"}
    ops = {node.op_type for node in graph.node}
    assert {"Conv", "PRelu", "Add", "MaxPool", "Pad"} <= ops


@pytest.mark.parametrize("which", ["face", "noise"])
def test_facemesh_matches_litert(which: str, mesh_bytes: bytes, mesh_onnx: object,
                                 astronaut_bgr: np.ndarray) -> None:
    """≤1e-3 against the LiteRT interpreter on a real face crop and on noise."""
    x = (_face_crop(astronaut_bgr) if which == "face" else
         np.random.default_rng(3).random((1, 192, 192, 3), dtype=np.float32))
    want = _litert(mesh_bytes, x)
    got = _onnx(mesh_onnx, x)
    for name in ("conv2d_20", "conv2d_30"):
        assert got[name].shape == want[name].shape
        assert np.abs(got[name] - want[name]).max() <= 1e-3, name
    if which == "face":
        assert want["conv2d_30"].item() > 0  # the interpreter sees a face: a real check


def test_convert_file_reports_source_hash(face_landmark_tflite: Path, tmp_path: Path) -> None:
    import hashlib

    import onnx

    out = tmp_path / "mesh.onnx"
    digest = convert_tflite_file(face_landmark_tflite, out)
    assert digest == hashlib.sha256(face_landmark_tflite.read_bytes()).hexdigest()
    onnx.checker.check_model(onnx.load(str(out)))
    assert not list(tmp_path.glob(".*tmp"))  # written atomically, nothing left over


def test_rejects_what_is_not_tflite(tmp_path: Path) -> None:
    with pytest.raises(TfliteConversionError, match="TFL3"):
        convert_tflite(b"<html>not found</html>")
    with pytest.raises(TfliteConversionError, match="TFL3"):
        convert_tflite(b"")


def test_same_padding_matches_tensorflow() -> None:
    # TensorFlow: out = ceil(in / stride); the odd pixel of padding goes after.
    assert _same_pads(192, 3, 2, 1) == (0, 1)
    assert _same_pads(96, 3, 1, 1) == (1, 1)
    assert _same_pads(6, 2, 2, 1) == (0, 0)
    assert _same_pads(5, 5, 1, 2) == (4, 4)
