"""The Engine protocol every runtime implements, its tensor specs and typed errors."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class TensorSpec:
    """A named model input or output. ``shape`` entries are ints or symbolic names."""

    name: str
    shape: tuple[int | str, ...]
    dtype: str  # numpy dtype name: "float32", "float16", ...


@runtime_checkable
class Engine(Protocol):
    """Runs one model. ``run`` takes and returns numpy arrays keyed by tensor name.

    ``backend`` names the runtime (``"onnxruntime-cpu"``, ``"onnxruntime-cuda"``,
    ``"tensorrt"``, ``"torch"``) so the UI can show what is in use.
    """

    backend: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]: ...

    def close(self) -> None: ...


class EngineError(RuntimeError):
    """A model could not be loaded or run."""


class EngineUnavailable(EngineError):
    """A backend cannot be used on this machine; ``reason`` says why, ``hint`` how to fix."""

    def __init__(self, backend: str, reason: str, hint: str = "") -> None:
        self.backend = backend
        self.reason = reason
        self.hint = hint
        super().__init__(f"{backend}: {reason}" + (f" ({hint})" if hint else ""))


class NoEngineAvailable(EngineError):
    """Every backend in the preference list failed; lists each backend's reason."""

    def __init__(self, model: str, reasons: Mapping[str, str]) -> None:
        self.model = model
        self.reasons = dict(reasons)
        lines = "\n".join(f"  - {name}: {why}" for name, why in self.reasons.items())
        super().__init__(f"no engine could run {model}:\n{lines}")


class ModelFileError(EngineError):
    """A model file is missing, truncated, corrupt or of the wrong kind."""


def check_feeds(inputs: tuple[TensorSpec, ...], feeds: Mapping[str, np.ndarray]) -> None:
    """Raise ``EngineError`` naming got-vs-expected when feeds do not match the inputs."""
    expected = {spec.name for spec in inputs}
    got = set(feeds)
    if got != expected:
        raise EngineError(f"inputs: expected {sorted(expected)}, got {sorted(got)}")
    for spec in inputs:
        array = feeds[spec.name]
        if array.ndim != len(spec.shape):
            raise EngineError(f"{spec.name}: expected shape {spec.shape}, got {array.shape}")
        for dim, want in zip(array.shape, spec.shape, strict=True):
            if isinstance(want, int) and want > 0 and dim != want:
                raise EngineError(f"{spec.name}: expected shape {spec.shape}, got {array.shape}")
