"""FP32 ONNX generator → FP16 graph with the numerically sensitive ops kept in FP32.

Why: the SimSwap generator's instance norm computes ``mean(x²)`` and adds eps 1e-8. In FP16
``x²`` overflows once |x| exceeds ~256 (65504 is the largest FP16 value) and 1e-8 underflows to
0, so an all-FP16 graph can emit NaN/Inf ("black/green boxes"). TensorRT 11 dropped
``BuilderFlag.FP16``: FP16 now comes from a graph that is already FP16 and a strongly typed
network, so the precision decisions are made here, in the ONNX graph, with explicit ``Cast``
nodes at every FP16↔FP32 boundary. Graph inputs and outputs stay FP32 so callers never change.

``mode="mixed"`` keeps every InstanceNormalization and the style multiply/add that consume its
output in FP32, every global reduction (the face parser's attention pools average up to
64×64 values: a sum that leaves the FP16 range when an accumulator is FP16), and every node
of a StyleGAN2 modulated convolution (``FP32_SCOPES``: GFPGAN); ``mode="all"``
converts everything that can be converted (used to show the failure the mixed graph avoids).
ONNX Runtime's CPU provider runs both graphs, but it computes FP16 nodes that lack an FP16
kernel (InstanceNormalization included) in FP32 and merges the casts between them, so it
cannot show FP16 overflow: ``bench/bench_fp16.py`` measures the arithmetic with torch's CPU
float16 ops instead, and ONNX Runtime checks the graph itself.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Literal

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

log = logging.getLogger(__name__)

Mode = Literal["mixed", "all"]

FLOAT = TensorProto.FLOAT
FLOAT16 = TensorProto.FLOAT16
FP16_MAX = float(np.finfo(np.float16).max)

# Ops that may run in FP16: arithmetic whose range the weights bound, and pure data movement.
# Anything not listed (Cast, Constant, shape arithmetic, unknown ops) stays as it was, in FP32.
FP16_OPS = frozenset({
    "Add", "AveragePool", "BatchNormalization", "Clip", "Concat", "Conv", "ConvTranspose",
    "Div", "Expand", "Flatten", "Gather", "Gemm", "GlobalAveragePool", "Identity",
    "InstanceNormalization", "LeakyRelu", "MatMul", "MaxPool", "Mul", "Neg", "PRelu", "Pad",
    "Relu", "Reshape", "Resize", "Sigmoid", "Slice", "Split", "Squeeze", "Sub", "Tanh",
    "Transpose", "Unsqueeze", "Upsample",
})
# Float inputs that are parameters, not data, and must keep their FP32 type (ONNX type rules):
# Resize's roi/scales, Upsample's scales, Clip's bounds follow the data (they are T), so not here.
FP32_INPUT_SLOTS: dict[str, frozenset[int]] = {
    "Resize": frozenset({1, 2}),
    "Upsample": frozenset({1}),
}
# Norm ops whose statistics (x², eps) break in FP16, and the elementwise ops that, applied
# directly to a norm's output, make up AdaIN's style injection ``x * (1 + s0) + s1``.
NORM_OPS = frozenset({"InstanceNormalization", "LayerNormalization", "GroupNormalization"})
STYLE_OPS = frozenset({"Mul", "Add"})
STYLE_DEPTH = 2
# Whole-map reductions, kept FP32 on their own (their consumers are ordinary ops).
REDUCTION_OPS = frozenset({"GlobalAveragePool", "ReduceMean", "ReduceSum"})
# Module scopes (the exporter names nodes and tensors ``/…/<scope>/…``) kept FP32 whole:
# StyleGAN2's modulated conv (GFPGAN's decoder, export/gfpgan.py) scales its input by the
# style and normalises only after the conv (``demod``), so the conv's output is unbounded
# (StyleGAN2 itself clamps to ±256 in FP16) and overflows FP16 before demodulation.
FP32_SCOPES: tuple[str, ...] = ("modulated_conv",)


class Fp16ConversionError(ValueError):
    """The graph cannot be converted (wrong input precision, unsupported structure)."""


def _name_nodes(graph: onnx.GraphProto) -> None:
    """Give unnamed nodes unique names: precision decisions and TensorRT layers refer to them."""
    used = {node.name for node in graph.node if node.name}
    for index, node in enumerate(graph.node):
        if not node.name:
            candidate = f"{node.op_type}_{index}"
            while candidate in used:
                candidate += "_"
            node.name = candidate
            used.add(candidate)


def _in_fp32_scope(node: onnx.NodeProto) -> bool:
    """Whether the node belongs to a ``FP32_SCOPES`` module, by its name or, for nodes the
    optimiser renamed (``node_Unsqueeze_1``), by its output tensors' names."""
    names = [node.name, *node.output]
    return any(f"/{scope}/" in name for scope in FP32_SCOPES for name in names)


def _fp32_nodes(model: onnx.ModelProto, mode: Mode) -> list[onnx.NodeProto]:
    if mode == "all":
        return []
    if mode != "mixed":
        raise Fp16ConversionError(f"mode: expected 'mixed' or 'all', got {mode!r}")
    graph = model.graph
    consumers: dict[str, list[int]] = {}
    for index, node in enumerate(graph.node):
        for name in node.input:
            consumers.setdefault(name, []).append(index)
    keep: set[int] = {i for i, node in enumerate(graph.node)
                      if node.op_type in REDUCTION_OPS or _in_fp32_scope(node)}
    for index, node in enumerate(graph.node):
        if node.op_type not in NORM_OPS:
            continue
        keep.add(index)
        frontier = list(node.output)
        for _ in range(STYLE_DEPTH):
            following: list[str] = []
            for tensor in frontier:
                for consumer in consumers.get(tensor, []):
                    if graph.node[consumer].op_type in STYLE_OPS:
                        keep.add(consumer)
                        following.extend(graph.node[consumer].output)
            frontier = following
    return [graph.node[i] for i in sorted(keep)]


def fp32_node_names(model: onnx.ModelProto, mode: Mode = "mixed") -> set[str]:
    """Names of the nodes the FP16 graph keeps in FP32: each norm node plus the Mul/Add chain
    (up to ``STYLE_DEPTH`` deep) that consumes its output, each global reduction and each
    node of a ``FP32_SCOPES`` module. Empty in ``"all"`` mode; unnamed nodes are left out
    (see ``fp32_tensor_names``)."""
    return {node.name for node in _fp32_nodes(model, mode) if node.name}


def fp32_tensor_names(model: onnx.ModelProto, mode: Mode = "mixed") -> set[str]:
    """The output tensors of those nodes: names that survive even for unnamed nodes (the
    TensorRT parser names each layer output after its ONNX tensor)."""
    return {out for node in _fp32_nodes(model, mode) for out in node.output}


def _elem_types(model: onnx.ModelProto) -> dict[str, int]:
    inferred = onnx.shape_inference.infer_shapes(model)
    graph = inferred.graph
    types: dict[str, int] = {}
    for info in [*graph.input, *graph.output, *graph.value_info]:
        if info.type.HasField("tensor_type"):
            types[info.name] = info.type.tensor_type.elem_type
    for init in graph.initializer:
        types[init.name] = init.data_type
    return types


def _to_fp16_array(array: np.ndarray, name: str) -> np.ndarray:
    peak = float(np.abs(array).max()) if array.size else 0.0
    if peak > FP16_MAX:
        log.warning("%s: values up to %.3g exceed the FP16 range; clipped", name, peak)
    return np.clip(array, -FP16_MAX, FP16_MAX).astype(np.float16)


def convert_to_fp16(model: onnx.ModelProto, mode: Mode = "mixed") -> onnx.ModelProto:
    """Return an FP16 copy of an FP32 model; see the module docstring for what stays FP32."""
    model = onnx.ModelProto.FromString(model.SerializeToString())  # never mutate the caller's
    graph = model.graph
    _name_nodes(graph)
    for info in [*graph.input, *graph.output]:
        elem = info.type.tensor_type.elem_type
        if elem == FLOAT16:
            raise Fp16ConversionError(f"{info.name}: expected an FP32 graph, got FP16 I/O")
    types = _elem_types(model)
    keep = fp32_node_names(model, mode)
    initializers = {init.name: init for init in graph.initializer}
    constant_outputs = {
        out for node in graph.node if node.op_type == "Constant" for out in node.output
    }

    dtype: dict[str, int] = {name: t for name, t in types.items() if t in (FLOAT, FLOAT16)}
    casts: dict[tuple[str, int], str] = {}
    new_nodes: list[onnx.NodeProto] = []
    new_inits: list[onnx.TensorProto] = []

    def converted(name: str, want: int) -> str:
        """``name`` as a tensor of type ``want``: an FP16 initializer copy or a Cast node."""
        if dtype.get(name, want) == want:
            return name
        key = (name, want)
        if key not in casts:
            suffix = "fp16" if want == FLOAT16 else "fp32"
            target = f"{name}__{suffix}"
            if name in initializers and name not in constant_outputs and want == FLOAT16:
                array = numpy_helper.to_array(initializers[name])
                new_inits.append(numpy_helper.from_array(_to_fp16_array(array, name), target))
            else:
                new_nodes.append(helper.make_node(
                    "Cast", [name], [target], to=want, name=f"Cast_{suffix}__{name}"))
            dtype[target] = want
            casts[key] = target
        return casts[key]

    for node in graph.node:
        compute = FLOAT16 if node.op_type in FP16_OPS and node.name not in keep else FLOAT
        fixed = FP32_INPUT_SLOTS.get(node.op_type, frozenset())
        for slot, name in enumerate(node.input):
            if not name or name not in dtype:
                continue  # optional input or not a float tensor
            want = FLOAT if slot in fixed else compute
            node.input[slot] = converted(name, want)
        if compute == FLOAT16:
            for out in node.output:
                if dtype.get(out) == FLOAT:
                    dtype[out] = FLOAT16
        new_nodes.append(node)

    # Graph outputs keep their names and FP32 type: the FP16 producer writes to a renamed
    # tensor and a final Cast restores the public name.
    for info in graph.output:
        if dtype.get(info.name) != FLOAT16:
            continue
        inner = f"{info.name}__fp16out"
        for node in new_nodes:
            for i, name in enumerate(node.output):
                if name == info.name:
                    node.output[i] = inner
            for i, name in enumerate(node.input):
                if name == info.name:
                    node.input[i] = inner
        new_nodes.append(helper.make_node(
            "Cast", [inner], [info.name], to=FLOAT, name=f"Cast_out__{info.name}"))

    used = {name for node in new_nodes for name in node.input}
    kept_inits = [init for init in graph.initializer if init.name in used]
    kept_inits += [init for init in new_inits if init.name in used]
    del graph.node[:]
    graph.node.extend(new_nodes)
    del graph.initializer[:]
    graph.initializer.extend(kept_inits)
    del graph.value_info[:]  # stale types: re-inferred below
    model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    onnx.checker.check_model(model, full_check=True)
    return model


def node_precisions(model: onnx.ModelProto) -> dict[str, int]:
    """Each node's compute type as the graph states it: the element type of its first output
    (FP16 or FP32; other types for non-float nodes). Used by tests and the TensorRT builder."""
    types = _elem_types(model)
    return {node.name: types.get(node.output[0], 0) for node in model.graph.node if node.output}


def convert_file(src: str | onnx.ModelProto, dst: str, mode: Mode = "mixed") -> str:
    """Load ``src`` (path or model), convert, save to ``dst``; returns ``dst``."""
    model = src if isinstance(src, onnx.ModelProto) else onnx.load(src)
    onnx.save(convert_to_fp16(model, mode), dst)
    return dst


def count_ops(model: onnx.ModelProto, op_types: Iterable[str]) -> int:
    wanted = set(op_types)
    return sum(1 for node in model.graph.node if node.op_type in wanted)


# --- measurement (CPU, ONNX Runtime) ---------------------------------------------------------


def run_onnx(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> np.ndarray:
    """First output of ``model`` on ONNX Runtime's CPU provider (one thread: reproducible)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    # No graph rewrites: fusions and the CPU provider's FP32 fallbacks for FP16 nodes would
    # merge the casts away and compute in FP32, hiding exactly what is measured here.
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    result = session.run(None, feeds)[0]
    return np.asarray(result)


def psnr(reference: np.ndarray, other: np.ndarray, peak: float = 1.0) -> float:
    """PSNR in dB of ``other`` against ``reference`` (values in [0, peak]); inf when equal,
    nan when ``other`` holds NaN/Inf."""
    if not np.isfinite(other).all():
        return float("nan")
    mse = float(np.mean((reference.astype(np.float64) - other.astype(np.float64)) ** 2))
    return float("inf") if mse == 0.0 else 10.0 * float(np.log10(peak * peak / mse))


def max_abs_error(reference: np.ndarray, other: np.ndarray) -> float:
    """Largest absolute difference; inf when ``other`` holds NaN/Inf (they are failures)."""
    if not np.isfinite(other).all():
        return float("inf")
    return float(np.max(np.abs(reference.astype(np.float64) - other.astype(np.float64))))

