"""GFPGAN in FP16: the modulated-conv chain stays FP32 in the mixed graph, and an FP16
overflow before the final clamp reaches the output as Inf/NaN, so the engine's finite check
(and its switch to FP32) can fire.

ONNX Runtime's CPU provider computes FP16 nodes in FP32 and cannot show an overflow
(export/fp16.py), so FP16 graphs are run with ``onnx.reference`` (numpy: every FP16 tensor is
stored as float16, as TensorRT stores an FP16 layer's output), and torch modules in half.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto
from onnx.reference import ReferenceEvaluator
from torch import nn

from export import fp16
from export.gfpgan import STYLE_DIM, GfpganEnhancer, StyleConv
from export.onnx import _export_graph, _optimise


class OneStyleConv(nn.Module):
    """A GFPGAN-shaped net of one StyleConv whose style is huge (as a bright face's style
    can be): ``x · style`` then the 3×3 conv leave the FP16 range before demodulation
    brings the values back to O(1)."""

    def __init__(self, style: float = 3e4) -> None:
        super().__init__()
        self.conv = StyleConv(3, 3)
        with torch.no_grad():
            self.conv.modulated_conv.weight.abs_()
            self.conv.modulated_conv.modulation.weight.zero_()
            self.conv.modulated_conv.modulation.bias.fill_(style)
            self.conv.bias.fill_(-0.4)

    def forward(self, x: torch.Tensor, randomize_noise: bool = False) -> torch.Tensor:
        style = torch.zeros(x.shape[0], STYLE_DIM, dtype=x.dtype)
        noise = torch.zeros(1, 1, x.shape[2], x.shape[3], dtype=x.dtype)
        return self.conv(x, style, noise) * 0.02


class Overflow(nn.Module):
    """A net whose last layer overflows FP16 to ±Inf (no NaN on the way)."""

    def forward(self, x: torch.Tensor, randomize_noise: bool = False) -> torch.Tensor:
        return x * 300.0 * 300.0  # each constant in range, the product not


def _export(module: nn.Module, tmp_path: Path) -> onnx.ModelProto:
    path = tmp_path / "net.onnx"
    _export_graph(GfpganEnhancer(module).eval(), {"input": torch.zeros(1, 3, 16, 16)}, path,
                  "torchscript")
    return _optimise(path)


def _reference_run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy's overflow warnings
        return np.asarray(ReferenceEvaluator(model).run(None, {"input": x})[0])


@pytest.fixture()
def face_like() -> np.ndarray:
    return np.random.default_rng(0).uniform(0.5, 1.0, (1, 3, 16, 16)).astype(np.float32)


def test_the_mixed_graph_keeps_the_modulated_conv_chain_in_fp32(
    tmp_path: Path, face_like: np.ndarray,
) -> None:  # fmt: skip
    module = OneStyleConv().eval()
    model = _export(module, tmp_path)
    mixed = fp16.convert_to_fp16(model, "mixed")
    precisions = fp16.node_precisions(mixed)
    chain = [n for n in mixed.graph.node if "/modulated_conv/" in n.name
             and n.op_type in ("Mul", "Conv", "MatMul", "Div", "Sqrt")]
    assert {n.op_type for n in chain} >= {"Mul", "Conv"}
    assert all(precisions[n.name] == TensorProto.FLOAT for n in chain), \
        {n.name: precisions[n.name] for n in chain}
    # the StyleConv's ×√2, noise, bias and leaky ReLU (after demodulation) are still FP16
    after = [p for n, p in precisions.items() if n.startswith("/net/conv/")]
    assert TensorProto.FLOAT16 in after
    with torch.no_grad():
        expected = GfpganEnhancer(module)(torch.from_numpy(face_like)).numpy()
    assert 0.05 < np.abs(expected).max() < 1.0  # demodulated: O(1), inside the clamp
    got = _reference_run(mixed, face_like)
    assert np.isfinite(got).all()
    assert fp16.max_abs_error(expected, got) < 2e-3
    # all-FP16 (what the mixed graph kept the chain out of) does overflow here
    assert not np.isfinite(_reference_run(fp16.convert_to_fp16(model, "all"), face_like)).all()


def test_an_fp16_overflow_before_the_clamp_reaches_the_output(
    tmp_path: Path, face_like: np.ndarray,
) -> None:  # fmt: skip
    """The final clamp must not turn Inf into ±1: the finite check after the graph is the
    only thing that can switch a bad FP16 engine to FP32."""
    with torch.no_grad():
        half = GfpganEnhancer(Overflow()).half()(torch.from_numpy(face_like).half())
        full = GfpganEnhancer(Overflow())(torch.from_numpy(face_like))
    assert torch.isinf(half).any() and not torch.isnan(half).any()
    assert (full.abs() <= 1.0).all()  # in FP32 the same graph is an ordinary clamp
    mixed = fp16.convert_to_fp16(_export(Overflow(), tmp_path), "mixed")
    out = _reference_run(mixed, face_like)
    assert np.isinf(out).any()
    finite = np.isfinite(out)
    assert (np.abs(out[finite]) <= 1.0).all()
