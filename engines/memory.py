"""Estimated device memory of a model's engine: what ``doctor`` shows before any build.

An engine holds its weights once and, per calling thread (one execution context each),
its bound inputs and outputs at the batch profile's max plus its activations. The weights
and the I/O can be read from the ONNX file; the activations only TensorRT knows after a
build (``ICudaEngine.device_memory_size_v2``), so the estimate is a floor, said as such.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

_ITEMSIZE = {1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 16: 2}  # onnx types


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes: ``weights`` once per engine (at ``precision``), ``io`` per context at
    ``batch`` rows (float32 I/O)."""

    weights: int
    io: int
    batch: int
    precision: str

    def describe(self) -> str:
        mb = 1024 * 1024
        return (f"≈ {self.weights / mb:.0f} MB weights ({self.precision}) + "
                f"{self.io / mb:.0f} MB I/O per thread at batch {self.batch} "
                "(+ activations, known after a build)")


def estimate(onnx_path: Path, batch: int, precision: str = "fp16") -> MemoryEstimate:
    """The floor of ``onnx_path``'s engine memory at ``batch`` rows."""
    if batch < 1:
        raise ValueError(f"batch: expected ≥ 1, got {batch}")
    import onnx

    model = onnx.load(str(onnx_path), load_external_data=False)
    weights = 0
    for tensor in model.graph.initializer:
        size = math.prod(tensor.dims) * _ITEMSIZE.get(tensor.data_type, 4)
        # an FP16 build halves the float32 weights (the mixed graph keeps a few in FP32)
        weights += size // 2 if precision == "fp16" and tensor.data_type == 1 else size
    known = {t.name for t in model.graph.initializer}
    io = 0
    for value in (*model.graph.input, *model.graph.output):
        if value.name in known:
            continue
        dims = [d.dim_value for d in value.type.tensor_type.shape.dim]
        row = math.prod(d for d in dims[1:] if d > 0) if dims else 1
        io += row * _ITEMSIZE.get(value.type.tensor_type.elem_type, 4) * batch
    return MemoryEstimate(weights, io, batch, precision)
