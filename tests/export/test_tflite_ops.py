"""The converter's other operators on one-op .tflite files, checked against LiteRT.

FaceMesh exercises CONV_2D, DEPTHWISE_CONV_2D, PRELU, ADD, PAD and MAX_POOL_2D (see
test_tflite_onnx.py); RESIZE, RESHAPE, TRANSPOSE, CONCATENATION and RELU are built here as
real TFLite flatbuffers with LiteRT's own generated schema (object API, ``TFL3``
identifier), run by the LiteRT interpreter and by ONNX Runtime on our conversion.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

litert = pytest.importorskip("ai_edge_litert.interpreter")
schema = pytest.importorskip("ai_edge_litert.schema_py_generated")

from export.tflite_onnx import convert_tflite  # noqa: E402

_INT32, _FLOAT32 = 2, 0


def one_op_model(op: str, in_shape: tuple[int, ...], out_shape: tuple[int, ...],
                 consts: list[np.ndarray], options: tuple[int, Any] | None = None) -> bytes:
    """A .tflite with one operator: input ``x``, constant operands, output ``y``."""
    import flatbuffers

    s = schema
    model = s.ModelT()
    model.version = 3
    model.buffers = [s.BufferT()]  # buffer 0: empty, for activations
    tensors: list[Any] = []

    def tensor(name: str, shape: tuple[int, ...], data: np.ndarray | None = None) -> int:
        t = s.TensorT()
        t.name, t.shape = name.encode(), list(shape)
        t.type = _INT32 if data is not None and data.dtype == np.int32 else _FLOAT32
        t.buffer = 0
        if data is not None:
            buffer = s.BufferT()
            buffer.data = np.frombuffer(data.tobytes(), np.uint8).tolist()
            model.buffers.append(buffer)
            t.buffer = len(model.buffers) - 1
        tensors.append(t)
        return len(tensors) - 1

    x = tensor("x", in_shape)
    inputs = [x] + [tensor(f"c{i}", c.shape, c) for i, c in enumerate(consts)]
    y = tensor("y", out_shape)
    code = s.OperatorCodeT()
    code.builtinCode = getattr(s.BuiltinOperator, op)
    code.deprecatedBuiltinCode = min(code.builtinCode, 127)
    code.version = 1
    operator = s.OperatorT()
    operator.opcodeIndex, operator.inputs, operator.outputs = 0, inputs, [y]
    if options is not None:
        operator.builtinOptionsType, operator.builtinOptions = options
    graph = s.SubGraphT()
    graph.tensors, graph.inputs, graph.outputs, graph.operators = tensors, [x], [y], [operator]
    model.subgraphs, model.operatorCodes = [graph], [code]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def run_both(data: bytes, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    import onnxruntime as ort

    interpreter = litert.Interpreter(model_content=data)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    expected = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    session = ort.InferenceSession(convert_tflite(data).SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    return expected, session.run(None, {"x": x})[0]


def _resize(nearest: bool, align: bool, half: bool) -> tuple[int, Any]:
    s = schema
    opts = s.ResizeNearestNeighborOptionsT() if nearest else s.ResizeBilinearOptionsT()
    opts.alignCorners, opts.halfPixelCenters = align, half
    kind = (s.BuiltinOptions.ResizeNearestNeighborOptions if nearest
            else s.BuiltinOptions.ResizeBilinearOptions)
    return kind, opts


def _concat(axis: int) -> tuple[int, Any]:
    opts = schema.ConcatenationOptionsT()
    opts.axis = axis
    return schema.BuiltinOptions.ConcatenationOptions, opts


RNG = np.random.default_rng(3)
OTHER = RNG.normal(size=(1, 2, 3, 5)).astype(np.float32)
CASES = {
    "reshape": ("RESHAPE", (1, 6, 4), [np.array([1, 6, 4], np.int32)], None),
    "transpose": ("TRANSPOSE", (1, 4, 2, 3), [np.array([0, 3, 1, 2], np.int32)], None),
    "concat_channels": ("CONCATENATION", (1, 2, 3, 9), [OTHER], _concat(3)),
    "concat_rows": ("CONCATENATION", (1, 4, 3, 4), [RNG.normal(size=(1, 2, 3, 4)).astype(
        np.float32)], _concat(-3)),
    "relu": ("RELU", (1, 2, 3, 4), [], None),
    "resize_bilinear": ("RESIZE_BILINEAR", (1, 5, 7, 4), [np.array([5, 7], np.int32)],
                        _resize(False, False, False)),
    "resize_bilinear_half_pixel": ("RESIZE_BILINEAR", (1, 5, 7, 4),
                                   [np.array([5, 7], np.int32)], _resize(False, False, True)),
    "resize_bilinear_align": ("RESIZE_BILINEAR", (1, 5, 7, 4), [np.array([5, 7], np.int32)],
                              _resize(False, True, False)),
    "resize_nearest": ("RESIZE_NEAREST_NEIGHBOR", (1, 6, 9, 4), [np.array([6, 9], np.int32)],
                       _resize(True, False, False)),
    "resize_nearest_half_pixel": ("RESIZE_NEAREST_NEIGHBOR", (1, 5, 7, 4),
                                  [np.array([5, 7], np.int32)], _resize(True, False, True)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_operator_matches_litert(case: str) -> None:
    op, out_shape, consts, options = CASES[case]
    x = np.random.default_rng(7).normal(size=(1, 2, 3, 4)).astype(np.float32)
    data = one_op_model(op, (1, 2, 3, 4), out_shape, consts, options)
    expected, got = run_both(data, x)
    assert got.shape == expected.shape == out_shape
    assert float(np.abs(got - expected).max()) <= 1e-5, case


def test_unsupported_operator_is_refused_by_name() -> None:
    data = one_op_model("TANH", (1, 2, 3, 4), (1, 2, 3, 4), [])
    from export.tflite_onnx import TfliteConversionError

    with pytest.raises(TfliteConversionError, match="operator TANH"):
        convert_tflite(data)
