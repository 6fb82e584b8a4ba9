"""Convert a float32 TensorFlow Lite model (MediaPipe's FaceMesh) to ONNX.

The flatbuffer is read with the ``tflite`` package (generated schema accessors, no
TensorFlow). Activations are kept NCHW inside the ONNX graph, which is what ONNX Runtime
and TensorRT run fastest; the graph's inputs and outputs keep TFLite's NHWC shapes and
names, so the ONNX file is a drop-in for the interpreter. Supported operators: those
MediaPipe's face models use (CONV_2D, DEPTHWISE_CONV_2D, PRELU, RELU, RELU6, ADD, PAD,
MAX_POOL_2D, RESIZE_BILINEAR, RESIZE_NEAREST_NEIGHBOR, RESHAPE, TRANSPOSE,
CONCATENATION); anything else is refused by name.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

CONVERTER_VERSION = 1  # bump when the produced graph changes: cached conversions are redone
OPSET = 17
NHWC_TO_NCHW = (0, 3, 1, 2)
NCHW_TO_NHWC = (0, 2, 3, 1)


class TfliteConversionError(ValueError):
    """The .tflite file cannot be converted (not a TFLite file, or an unsupported op/type)."""


# TFLite enums (schema.fbs); only the values this converter reads.
_FLOAT32, _INT32, _INT64 = 0, 2, 4
_PADDING = {0: "SAME", 1: "VALID"}
_ACT_NONE, _ACT_RELU, _ACT_RELU_N1_TO_1, _ACT_RELU6 = 0, 1, 2, 3


def _builtin_names() -> dict[int, str]:
    import tflite

    return {v: k for k, v in vars(tflite.BuiltinOperator).items()
            if not k.startswith("_") and isinstance(v, int)}


@dataclass
class _Graph:
    """The ONNX graph under construction plus where each TFLite tensor lives in it."""

    nodes: list[Any] = field(default_factory=list)
    initializers: list[Any] = field(default_factory=list)
    names: dict[int, str] = field(default_factory=dict)      # tflite tensor -> onnx name
    nchw: dict[int, bool] = field(default_factory=dict)      # held transposed to NCHW?
    constants: dict[int, np.ndarray] = field(default_factory=dict)
    counter: int = 0

    def fresh(self, hint: str) -> str:
        self.counter += 1
        return f"{hint}__{self.counter}"

    def const(self, hint: str, value: np.ndarray) -> str:
        from onnx import numpy_helper

        name = self.fresh(hint)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def node(self, op: str, inputs: list[str], output: str | None = None, hint: str = "",
             **attrs: Any) -> str:
        from onnx import helper

        out = output or self.fresh(hint or op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], name=self.fresh(op), **attrs))
        return out


@dataclass(frozen=True)
class _Tensor:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: int


class _Reader:
    """Typed access to the first subgraph of a TFLite flatbuffer."""

    def __init__(self, data: bytes) -> None:
        if len(data) < 8 or data[4:8] != b"TFL3":
            raise TfliteConversionError("not a TensorFlow Lite file (no TFL3 identifier)")
        import tflite

        self.tflite = tflite
        self.model = tflite.Model.GetRootAsModel(data, 0)
        if self.model.SubgraphsLength() != 1:
            raise TfliteConversionError(
                f"expected 1 subgraph, got {self.model.SubgraphsLength()}")
        self.graph = self.model.Subgraphs(0)
        self.op_names = _builtin_names()

    def tensor(self, index: int) -> _Tensor:
        t = self.graph.Tensors(index)
        shape = tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else ()
        return _Tensor(index, t.Name().decode("utf-8"), shape, int(t.Type()))

    def data(self, index: int) -> np.ndarray | None:
        """A constant tensor's value, or None for an activation."""
        t = self.graph.Tensors(index)
        buffer = self.model.Buffers(t.Buffer())
        if buffer is None or buffer.DataLength() == 0:
            return None
        if t.Quantization() is not None and t.Quantization().ScaleLength():
            raise TfliteConversionError(f"tensor {t.Name().decode()}: quantized tensors are "
                                        "not supported (float32 models only)")
        dtypes = {_FLOAT32: np.float32, _INT32: np.int32, _INT64: np.int64}
        dtype = dtypes.get(int(t.Type()))
        if dtype is None:
            raise TfliteConversionError(f"tensor {t.Name().decode()}: type {t.Type()} is not "
                                        "supported (float32/int32/int64 only)")
        raw = buffer.DataAsNumpy().tobytes()
        shape = self.tensor(index).shape
        return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()

    def op_name(self, op: Any) -> str:
        code = self.model.OperatorCodes(op.OpcodeIndex())
        builtin = max(int(code.BuiltinCode()), int(code.DeprecatedBuiltinCode()))
        return self.op_names.get(builtin, f"builtin {builtin}")

    def options(self, op: Any, cls: Any) -> Any:
        table = op.BuiltinOptions()
        if table is None:
            return None
        opts = cls()
        opts.Init(table.Bytes, table.Pos)
        return opts


def _same_pads(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TensorFlow's SAME padding along one axis (the extra pixel goes after)."""
    out = -(-size // stride)
    effective = (kernel - 1) * dilation + 1
    total = max((out - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


class _Converter:
    def __init__(self, reader: _Reader) -> None:
        self.r = reader
        self.g = _Graph()

    # ------------------------------------------------------------------ plumbing
    def shape(self, index: int) -> tuple[int, ...]:
        return self.r.tensor(index).shape

    def value(self, index: int) -> str:
        """ONNX name of a tensor; constants become initializers on first use (as stored)."""
        if index not in self.g.names:
            data = self.r.data(index)
            if data is None:
                raise TfliteConversionError(f"tensor {self.r.tensor(index).name} is used "
                                            "before it is produced")
            self.g.names[index] = self.g.const(self.r.tensor(index).name, data)
            self.g.nchw[index] = False
        return self.g.names[index]

    def as_nhwc(self, index: int) -> str:
        """The tensor in TFLite's own layout."""
        name = self.value(index)
        if self.g.nchw.get(index):
            return self.g.node("Transpose", [name], perm=list(NCHW_TO_NHWC))
        return name

    def as_nchw(self, index: int) -> str:
        name = self.value(index)
        if len(self.shape(index)) == 4 and not self.g.nchw.get(index):
            return self.g.node("Transpose", [name], perm=list(NHWC_TO_NCHW))
        return name

    def emit(self, index: int, name: str, *, nchw: bool, activation: int = _ACT_NONE) -> None:
        out_name = self.r.tensor(index).name
        clips = {_ACT_RELU6: (0.0, 6.0), _ACT_RELU_N1_TO_1: (-1.0, 1.0)}
        if activation == _ACT_RELU:
            name = self.g.node("Relu", [name])
        elif activation in clips:
            low, high = (np.array(v, dtype=np.float32) for v in clips[activation])
            name = self.g.node("Clip", [name, self.g.const("low", low),
                                        self.g.const("high", high)])
        elif activation != _ACT_NONE:
            raise TfliteConversionError(f"{out_name}: fused activation {activation} "
                                        "is not supported")
        self.g.names[index] = self.g.node("Identity", [name], output=self.g.fresh(out_name))
        self.g.nchw[index] = nchw

    # ------------------------------------------------------------------ operators
    def conv(self, op: Any, depthwise: bool) -> None:
        t = self.r.tflite
        ins = [op.Inputs(i) for i in range(op.InputsLength())]
        out = op.Outputs(0)
        opts = self.r.options(op, t.DepthwiseConv2DOptions if depthwise else t.Conv2DOptions)
        kernel = self.r.data(ins[1])
        if kernel is None:
            raise TfliteConversionError("convolution with a non-constant kernel")
        in_shape = self.shape(ins[0])
        stride_h, stride_w = opts.StrideH(), opts.StrideW()
        dil_h, dil_w = opts.DilationHFactor() or 1, opts.DilationWFactor() or 1
        if depthwise:
            # [1, KH, KW, C*M] -> [C*M, 1, KH, KW], one group per input channel
            weight = kernel.transpose(3, 0, 1, 2)
            group = in_shape[3]
        else:
            weight = kernel.transpose(0, 3, 1, 2)  # [O, KH, KW, I] -> [O, I, KH, KW]
            group = 1
        kh, kw = weight.shape[2], weight.shape[3]
        pads = self.pads(opts.Padding(), in_shape, (kh, kw), (stride_h, stride_w),
                         (dil_h, dil_w))
        inputs = [self.as_nchw(ins[0]), self.g.const(self.r.tensor(ins[1]).name, weight)]
        if len(ins) > 2 and ins[2] >= 0:
            inputs.append(self.value(ins[2]))
        y = self.g.node("Conv", inputs, kernel_shape=[kh, kw], strides=[stride_h, stride_w],
                        dilations=[dil_h, dil_w], pads=pads, group=group)
        self.emit(out, y, nchw=True, activation=opts.FusedActivationFunction())

    @staticmethod
    def pads(padding: int, in_shape: tuple[int, ...], kernel: tuple[int, int],
             stride: tuple[int, int], dilation: tuple[int, int]) -> list[int]:
        if _PADDING.get(padding) == "VALID":
            return [0, 0, 0, 0]
        top, bottom = _same_pads(in_shape[1], kernel[0], stride[0], dilation[0])
        left, right = _same_pads(in_shape[2], kernel[1], stride[1], dilation[1])
        return [top, left, bottom, right]

    def max_pool(self, op: Any) -> None:
        opts = self.r.options(op, self.r.tflite.Pool2DOptions)
        src, out = op.Inputs(0), op.Outputs(0)
        kernel = (opts.FilterHeight(), opts.FilterWidth())
        stride = (opts.StrideH(), opts.StrideW())
        pads = self.pads(opts.Padding(), self.shape(src), kernel, stride, (1, 1))
        y = self.g.node("MaxPool", [self.as_nchw(src)], kernel_shape=list(kernel),
                        strides=list(stride), pads=pads)
        self.emit(out, y, nchw=True, activation=opts.FusedActivationFunction())

    def prelu(self, op: Any) -> None:
        src, alpha_index, out = op.Inputs(0), op.Inputs(1), op.Outputs(0)
        alpha = self.r.data(alpha_index)
        if alpha is None:
            raise TfliteConversionError("PRELU with a non-constant alpha")
        if len(self.shape(src)) == 4:
            # alpha broadcasts against NHWC; hold it as [C, 1, 1] (or [1,1,1]) for NCHW
            full = np.broadcast_to(alpha, self.shape(src)[1:]).astype(np.float32)
            slope = full.transpose(2, 0, 1)
            if np.all(slope == slope[:, :1, :1]):
                slope = slope[:, :1, :1]
            y = self.g.node("PRelu", [self.as_nchw(src), self.g.const("alpha", slope)])
            self.emit(out, y, nchw=True)
        else:
            y = self.g.node("PRelu", [self.value(src), self.value(alpha_index)])
            self.emit(out, y, nchw=False)

    def elementwise(self, op: Any, onnx_op: str, options_cls: Any) -> None:
        a, b, out = op.Inputs(0), op.Inputs(1), op.Outputs(0)
        opts = self.r.options(op, options_cls)
        activation = opts.FusedActivationFunction() if opts is not None else _ACT_NONE
        if len(self.shape(out)) == 4:
            names = [self.nchw_operand(i) for i in (a, b)]
            self.emit(out, self.g.node(onnx_op, names), nchw=True, activation=activation)
        else:
            y = self.g.node(onnx_op, [self.as_nhwc(a), self.as_nhwc(b)])
            self.emit(out, y, nchw=False, activation=activation)

    def nchw_operand(self, index: int) -> str:
        """An operand of a 4-D elementwise op: constants of lower rank are re-laid out."""
        data = self.r.data(index) if index not in self.g.names else None
        if data is not None and data.ndim < 4:
            full = data.reshape((1,) * (4 - data.ndim) + data.shape)
            return self.g.const("operand", full.transpose(NHWC_TO_NCHW))
        return self.as_nchw(index)

    def pad(self, op: Any) -> None:
        src, pads_index, out = op.Inputs(0), op.Inputs(1), op.Outputs(0)
        paddings = self.r.data(pads_index)
        if paddings is None:
            raise TfliteConversionError("PAD with non-constant paddings")
        paddings = paddings.astype(np.int64)
        if len(self.shape(src)) == 4:
            paddings = paddings[list(NHWC_TO_NCHW)]
            data = self.as_nchw(src)
        else:
            data = self.as_nhwc(src)
        onnx_pads = np.concatenate([paddings[:, 0], paddings[:, 1]])
        y = self.g.node("Pad", [data, self.g.const("pads", onnx_pads)], mode="constant")
        self.emit(out, y, nchw=len(self.shape(src)) == 4)

    def resize(self, op: Any, nearest: bool) -> None:
        t = self.r.tflite
        src, size_index, out = op.Inputs(0), op.Inputs(1), op.Outputs(0)
        opts = self.r.options(op, t.ResizeNearestNeighborOptions if nearest
                              else t.ResizeBilinearOptions)
        size = self.r.data(size_index)
        if size is None:
            raise TfliteConversionError("RESIZE with a non-constant size")
        n, _h, _w, c = self.shape(src)
        sizes = np.array([n, c, int(size[0]), int(size[1])], dtype=np.int64)
        align = bool(opts.AlignCorners()) if opts is not None else False
        half = bool(opts.HalfPixelCenters()) if opts is not None else False
        attrs: dict[str, Any] = {"mode": "nearest" if nearest else "linear"}
        if align:
            attrs["coordinate_transformation_mode"] = "align_corners"
            if nearest:
                attrs["nearest_mode"] = "round_prefer_ceil"
        elif half:
            attrs["coordinate_transformation_mode"] = ("tf_half_pixel_for_nn" if nearest
                                                       else "half_pixel")
            if nearest:
                attrs["nearest_mode"] = "floor"
        else:
            attrs["coordinate_transformation_mode"] = "asymmetric"
            if nearest:
                attrs["nearest_mode"] = "floor"
        y = self.g.node("Resize", [self.as_nchw(src), "", "", self.g.const("sizes", sizes)],
                        **attrs)
        self.emit(out, y, nchw=True)

    def reshape(self, op: Any) -> None:
        src, out = op.Inputs(0), op.Outputs(0)
        target = np.array(self.shape(out), dtype=np.int64)
        y = self.g.node("Reshape", [self.as_nhwc(src), self.g.const("shape", target)])
        self.emit(out, y, nchw=False)

    def transpose(self, op: Any) -> None:
        src, perm_index, out = op.Inputs(0), op.Inputs(1), op.Outputs(0)
        perm = self.r.data(perm_index)
        if perm is None:
            raise TfliteConversionError("TRANSPOSE with a non-constant permutation")
        y = self.g.node("Transpose", [self.as_nhwc(src)], perm=[int(p) for p in perm])
        self.emit(out, y, nchw=False)

    def concat(self, op: Any) -> None:
        opts = self.r.options(op, self.r.tflite.ConcatenationOptions)
        out = op.Outputs(0)
        rank = len(self.shape(out))
        axis = opts.Axis() % rank
        sources = [op.Inputs(i) for i in range(op.InputsLength())]
        if rank == 4:
            names = [self.as_nchw(s) for s in sources]
            y = self.g.node("Concat", names, axis=NHWC_TO_NCHW.index(axis))
            self.emit(out, y, nchw=True, activation=opts.FusedActivationFunction())
        else:
            y = self.g.node("Concat", [self.as_nhwc(s) for s in sources], axis=axis)
            self.emit(out, y, nchw=False, activation=opts.FusedActivationFunction())

    def activation(self, op: Any, kind: int) -> None:
        src, out = op.Inputs(0), op.Outputs(0)
        nchw = bool(self.g.nchw.get(src))
        self.emit(out, self.value(src), nchw=nchw, activation=kind)

    # ------------------------------------------------------------------ whole graph
    def run(self, graph_name: str) -> Any:
        from onnx import TensorProto, helper

        g, r = self.g, self.r
        t = r.tflite
        inputs = []
        for i in range(r.graph.InputsLength()):
            tensor = r.tensor(r.graph.Inputs(i))
            if tensor.dtype != _FLOAT32:
                raise TfliteConversionError(f"input {tensor.name}: float32 inputs only")
            inputs.append(helper.make_tensor_value_info(tensor.name, TensorProto.FLOAT,
                                                        list(tensor.shape)))
            g.names[tensor.index] = tensor.name
            g.nchw[tensor.index] = False
        handlers = {
            "CONV_2D": lambda op: self.conv(op, depthwise=False),
            "DEPTHWISE_CONV_2D": lambda op: self.conv(op, depthwise=True),
            "PRELU": self.prelu,
            "ADD": lambda op: self.elementwise(op, "Add", t.AddOptions),
            "MUL": lambda op: self.elementwise(op, "Mul", t.MulOptions),
            "PAD": self.pad,
            "MAX_POOL_2D": self.max_pool,
            "RESIZE_BILINEAR": lambda op: self.resize(op, nearest=False),
            "RESIZE_NEAREST_NEIGHBOR": lambda op: self.resize(op, nearest=True),
            "RESHAPE": self.reshape,
            "TRANSPOSE": self.transpose,
            "CONCATENATION": self.concat,
            "RELU": lambda op: self.activation(op, _ACT_RELU),
            "RELU6": lambda op: self.activation(op, _ACT_RELU6),
        }
        for i in range(r.graph.OperatorsLength()):
            op = r.graph.Operators(i)
            name = r.op_name(op)
            handler = handlers.get(name)
            if handler is None:
                raise TfliteConversionError(
                    f"operator {name} (#{i}) is not supported; supported: "
                    f"{', '.join(sorted(handlers))}")
            handler(op)
        outputs = []
        for i in range(r.graph.OutputsLength()):
            tensor = r.tensor(r.graph.Outputs(i))
            g.node("Identity", [self.as_nhwc(tensor.index)], output=tensor.name)
            outputs.append(helper.make_tensor_value_info(tensor.name, TensorProto.FLOAT,
                                                         list(tensor.shape)))
        graph = helper.make_graph(g.nodes, graph_name, inputs, outputs, g.initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name="swapcam.tflite_onnx",
                                  producer_version=str(CONVERTER_VERSION))
        model.ir_version = 8
        return model


def convert_tflite(data: bytes, *, graph_name: str = "tflite") -> Any:
    """The ONNX ``ModelProto`` equivalent to a float32 TFLite model given as bytes."""
    import onnx

    model = _Converter(_Reader(data)).run(graph_name)
    onnx.checker.check_model(model, full_check=True)
    return model


def tflite_io(data: bytes) -> tuple[list[tuple[str, tuple[int, ...]]],
                                    list[tuple[str, tuple[int, ...]]]]:
    """(name, shape) of the TFLite model's inputs and outputs."""
    reader = _Reader(data)
    graph = reader.graph
    ins = [reader.tensor(graph.Inputs(i)) for i in range(graph.InputsLength())]
    outs = [reader.tensor(graph.Outputs(i)) for i in range(graph.OutputsLength())]
    return [(t.name, t.shape) for t in ins], [(t.name, t.shape) for t in outs]


def convert_tflite_file(src: Path, dst: Path) -> str:
    """Convert ``src`` (.tflite) to ``dst`` (.onnx, written atomically); returns the
    source's sha256 (the caller records it to know what ``dst`` was built from)."""
    from engines.fileio import write_atomic

    data = Path(src).read_bytes()
    model = convert_tflite(data, graph_name=Path(src).stem)
    write_atomic(Path(dst), model.SerializeToString())
    return hashlib.sha256(data).hexdigest()
