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
    order. ``run`` takes and returns numpy arrays on the host; ``run_torch`` takes and
    returns tensors on ``device`` (the device-resident frame processor's path).
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
            host = torch.from_numpy(np.ascontiguousarray(array))
            if self.device.type == "cuda":  # page-locked: the copy queues, no host wait
                tensors.append(host.pin_memory().to(self.device, non_blocking=True))
            else:
                tensors.append(host.to(self.device))
        # the download waits for the calling thread's stream only
        return {name: value.cpu().numpy() for name, value in self._forward(tensors).items()}

    def run_torch(self, feeds: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Tensors in, tensors out, on ``self.device``: no numpy and no host copy, so a
        CUDA caller's frame never leaves the GPU (feeds on another device are moved)."""
        if self._module is None:
            raise EngineError("torch engine is closed")
        expected = {spec.name for spec in self.inputs}
        if set(feeds) != expected:
            raise EngineError(f"inputs: expected {sorted(expected)}, got {sorted(feeds)}")
        tensors = []
        for spec in self.inputs:
            tensor = feeds[spec.name]
            want = getattr(torch, spec.dtype)
            if tensor.dtype != want:
                raise EngineError(f"{spec.name}: expected dtype {spec.dtype}, got {tensor.dtype}")
            if tensor.ndim != len(spec.shape) or any(
                isinstance(d, int) and d > 0 and got != d
                for got, d in zip(tensor.shape, spec.shape, strict=True)
            ):
                raise EngineError(f"{spec.name}: expected shape {spec.shape}, "
                                  f"got {tuple(tensor.shape)}")
            tensors.append(tensor.to(self.device, non_blocking=True))
        return self._forward(tensors)

    def _forward(self, tensors: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        """The module call shared by ``run`` and ``run_torch``: outputs named, on device."""
        assert self._module is not None  # both callers check for a closed engine first
        with torch.inference_mode():
            result: Any = self._module(*tensors)
        values = list(result) if isinstance(result, (tuple, list)) else [result]
        if len(values) != len(self.outputs):
            raise EngineError(f"outputs: expected {len(self.outputs)} "
                              f"({[s.name for s in self.outputs]}), module returned "
                              f"{len(values)}")
        return {spec.name: value.detach() for spec, value in zip(self.outputs, values, strict=True)}

    def close(self) -> None:
        self._module = None
