"""TorchEngine runs a module behind the Engine protocol."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engines.base import Engine, EngineError, TensorSpec
from engines.torch import TorchEngine

INPUTS = (TensorSpec("a", (1, 4), "float32"), TensorSpec("b", (1, 4), "float32"))


class SumAndProduct(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(0.5))

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return (a + b) * self.scale, a * b


def test_runs_in_input_order_and_names_outputs() -> None:
    engine = TorchEngine(SumAndProduct(), INPUTS, (TensorSpec("sum", (1, 4), "float32"),
                                                   TensorSpec("prod", (1, 4), "float32")))
    assert isinstance(engine, Engine) and engine.backend == "torch"
    rng = np.random.default_rng(1)
    a = rng.standard_normal((1, 4), dtype=np.float32)
    b = rng.standard_normal((1, 4), dtype=np.float32)
    out = engine.run({"b": b, "a": a})
    np.testing.assert_allclose(out["sum"], (a + b) * 0.5, rtol=1e-6)
    np.testing.assert_allclose(out["prod"], a * b, rtol=1e-6)
    assert isinstance(out["sum"], np.ndarray)


def test_single_tensor_output_and_checks() -> None:
    engine = TorchEngine(torch.nn.Identity(), INPUTS[:1], (TensorSpec("out", (1, 4), "float32"),))
    a = np.arange(4, dtype=np.float32).reshape(1, 4)
    np.testing.assert_array_equal(engine.run({"a": a})["out"], a)
    with pytest.raises(EngineError, match="expected dtype float32, got int64"):
        engine.run({"a": a.astype(np.int64)})
    with pytest.raises(EngineError, match=r"expected \['a'\], got \['z'\]"):
        engine.run({"z": a})
    engine.close()
    with pytest.raises(EngineError, match="closed"):
        engine.run({"a": a})


def test_output_count_mismatch_is_reported() -> None:
    engine = TorchEngine(SumAndProduct(), INPUTS, (TensorSpec("only", (1, 4), "float32"),))
    x = np.zeros((1, 4), np.float32)
    with pytest.raises(EngineError, match="expected 1"):
        engine.run({"a": x, "b": x})


def test_run_torch_keeps_tensors_and_equals_run() -> None:
    engine = TorchEngine(SumAndProduct(), INPUTS, (TensorSpec("sum", (1, 4), "float32"),
                                                   TensorSpec("prod", (1, 4), "float32")))
    rng = np.random.default_rng(2)
    a = rng.standard_normal((1, 4), dtype=np.float32)
    b = rng.standard_normal((1, 4), dtype=np.float32)
    host = engine.run({"a": a, "b": b})
    out = engine.run_torch({"a": torch.from_numpy(a), "b": torch.from_numpy(b)})
    assert set(out) == {"sum", "prod"}
    for name, tensor in out.items():
        assert isinstance(tensor, torch.Tensor) and tensor.device == engine.device
        assert not tensor.requires_grad
        np.testing.assert_array_equal(tensor.numpy(), host[name])


def test_run_torch_checks_names_dtypes_and_shapes() -> None:
    engine = TorchEngine(torch.nn.Identity(), INPUTS[:1], (TensorSpec("out", (1, 4), "float32"),))
    a = torch.arange(4, dtype=torch.float32).reshape(1, 4)
    with pytest.raises(EngineError, match=r"expected \['a'\], got \['z'\]"):
        engine.run_torch({"z": a})
    with pytest.raises(EngineError, match=r"expected dtype float32, got torch\.float64"):
        engine.run_torch({"a": a.double()})
    with pytest.raises(EngineError, match=r"expected shape \(1, 4\), got \(2, 4\)"):
        engine.run_torch({"a": torch.zeros(2, 4)})
    with pytest.raises(EngineError, match=r"expected shape \(1, 4\), got \(4,\)"):
        engine.run_torch({"a": torch.zeros(4)})
    engine.close()
    with pytest.raises(EngineError, match="closed"):
        engine.run_torch({"a": a})
