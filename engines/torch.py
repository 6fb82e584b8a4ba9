"""Torch engine: runs an ``nn.Module`` behind the Engine protocol (reference and fallback)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from engines.base import EngineError, TensorSpec, check_feeds


class TorchEngine:
    """Calls ``module(*inputs)`` with the feeds in ``inputs`` order, under inference mode.

    The module returns one tensor or a tuple/list of tensors, matched to ``outputs`` in
    order. Arrays go in and come out as numpy on the host.
    """

    backend = "torch"

    def __init__(self, module: torch.nn.Module, inputs: tuple[TensorSpec, ...],
                 outputs: tuple[TensorSpec, ...], device: str = "cpu") -> None:
        if not inputs or not outputs:
            raise ValueError("TorchEngine needs at least one input and one output spec")
        self.device = torch.device(device)
        self._module: torch.nn.Module | None = module.eval().to(self.device)
        self.inputs = tuple(inputs)
        self.outputs = tuple(outputs)

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self._module is None:
            raise EngineError("torch engine is closed")
        check_feeds(self.inputs, feeds)
        tensors = []
        for spec in self.inputs:
            array = np.asarray(feeds[spec.name])
            if array.dtype.name != spec.dtype:
                raise EngineError(f"{spec.name}: expected dtype {spec.dtype}, "
                                  f"got {array.dtype.name}")
            tensors.append(torch.from_numpy(np.ascontiguousarray(array)).to(self.device))
        with torch.inference_mode():
            result: Any = self._module(*tensors)
        values = list(result) if isinstance(result, (tuple, list)) else [result]
        if len(values) != len(self.outputs):
            raise EngineError(f"outputs: expected {len(self.outputs)} "
                              f"({[s.name for s in self.outputs]}), module returned "
                              f"{len(values)}")
        return {spec.name: value.detach().cpu().numpy()
                for spec, value in zip(self.outputs, values, strict=True)}

    def close(self) -> None:
        self._module = None
