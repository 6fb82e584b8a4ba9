"""A strict stand-in for the ``tensorrt`` module (TensorRT 10/11 Python API), for CPU tests.

It enforces what the real library enforces and returns what it returns on failure:
- ``Builder(logger)`` / ``Runtime(logger)`` raise ``TypeError: ... factory function returned
  nullptr`` when CUDA cannot be initialised (``init_fails``);
- ``IBuilderConfig.set_timing_cache(cache, ignore_mismatch=False)`` returns False for a cache
  made on another GPU/version, and ``get_timing_cache()`` is then None;
- ``ICudaEngine.create_execution_context()`` returns None when out of memory
  (``contexts_left``);
- ``IExecutionContext.set_input_shape`` returns False outside the profile's min..max (or a
  static engine's shape); ``execute_async_v3`` refuses unset shapes or addresses and raises
  when two threads are inside one context at once (TensorRT: one context per thread).

The engine it "builds" is JSON naming an elementwise op on the first input (``copy``,
``sqrt``, ``abs``); ``execute_async_v3`` reads and writes the bound float32 memory at the
addresses it was given (``data_ptr`` of CPU tensors), as TensorRT reads device memory.
"""

from __future__ import annotations

import ctypes
import json
import threading
import time
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx

NULLPTR = ("__init__(): incompatible constructor arguments... factory function returned "
           "nullptr")  # what pybind11 says when TensorRT's create*() returned null


@dataclass
class Recorder:
    """What was asked of the fake, and the knobs that make it fail."""

    network_flags: list[int] = field(default_factory=list)
    builder_flags: list[str] = field(default_factory=list)
    parsed: list[onnx.ModelProto] = field(default_factory=list)
    pinned: dict[str, Any] = field(default_factory=dict)
    cache_blob: bytes | None = None
    builds: int = 0
    profiles: list[tuple[str, Any, Any, Any]] = field(default_factory=list)
    monitor: Any = None
    gpu: str = "Fake GPU"
    init_fails: bool = False
    contexts_left: int = 1000
    contexts_made: int = 0
    executions: int = 0
    execute_seconds: float = 0.0
    op: str = "copy"


def module(*, fp16_flag: bool, strongly_typed: bool = True) -> types.ModuleType:
    """A bare module with the flags that tell TensorRT 10 from 11."""
    trt = types.ModuleType("tensorrt")
    trt.__version__ = "10.13.0.35" if fp16_flag else "11.0.0.9"  # type: ignore[attr-defined]
    builder_flags = {"OBEY_PRECISION_CONSTRAINTS": "OBEY_PRECISION_CONSTRAINTS"}
    if fp16_flag:
        builder_flags["FP16"] = "FP16"
    trt.BuilderFlag = types.SimpleNamespace(**builder_flags)  # type: ignore[attr-defined]
    creation = {"STRONGLY_TYPED": 1} if strongly_typed else {}
    trt.NetworkDefinitionCreationFlag = types.SimpleNamespace(**creation)  # type: ignore[attr-defined]
    return trt


def engine_bytes(inputs: dict[str, Sequence[int]], outputs: dict[str, Sequence[int]], *,
                 op: str = "copy", profile: Mapping[str, Sequence[Any]] | None = None,
                 version: str = "10.13.0.35") -> bytes:
    """A serialized fake engine: ``inputs`` with -1 at a profiled batch axis."""
    return json.dumps({"magic": "fake-trt", "version": version, "op": op,
                       "inputs": {k: list(v) for k, v in inputs.items()},
                       "outputs": {k: list(v) for k, v in outputs.items()},
                       "profile": {k: [list(d) for d in v] for k, v in (profile or {}).items()}
                       }).encode()


def fake_tensorrt(*, fp16_flag: bool = True, layers: list[tuple[str, str, str]] | None = None,
                  rec: Recorder, parse_errors: list[Any] | None = None,
                  network_inputs: dict[str, tuple[int, ...]] | None = None) -> types.ModuleType:
    trt = module(fp16_flag=fp16_flag)
    trt.float32, trt.float16 = "float32", "float16"  # type: ignore[attr-defined]
    trt.MemoryPoolType = types.SimpleNamespace(WORKSPACE="WORKSPACE")  # type: ignore[attr-defined]
    trt.TensorIOMode = types.SimpleNamespace(INPUT="INPUT", OUTPUT="OUTPUT")  # type: ignore[attr-defined]
    trt.Dims = lambda dims: tuple(dims)  # type: ignore[attr-defined]
    version = trt.__version__  # type: ignore[attr-defined]
    inputs_spec = network_inputs or {"target": (-1, 3, 64, 64), "source": (-1, 512)}

    class Logger:
        WARNING = "warning"

        def __init__(self, severity: str) -> None:
            self.severity = severity

    def check_init(what: str) -> None:
        if rec.init_fails:
            raise TypeError(f"{what}: {NULLPTR}")

    class Tensor:
        def __init__(self, name: str, shape: tuple[int, ...], dtype: str = "float32") -> None:
            self.name, self.shape, self.dtype = name, shape, dtype

    class Layer:
        def __init__(self, name: str, type_name: str, output: str) -> None:
            self.name, self.type = name, types.SimpleNamespace(name=type_name)
            self.output_name = output
            self.num_outputs = 1

        @property
        def precision(self) -> str | None:
            return None

        @precision.setter
        def precision(self, value: str) -> None:
            rec.pinned.setdefault(self.name, {})["precision"] = value

        def get_output(self, index: int) -> Tensor:
            return Tensor(self.output_name, (1,))

        def set_output_type(self, index: int, dtype: str) -> None:
            rec.pinned.setdefault(self.name, {})[f"output{index}"] = dtype

    class Network:
        def __init__(self) -> None:
            self.layers = [Layer(n, t, o) for n, t, o in layers or []]
            self.inputs = [Tensor(n, s) for n, s in inputs_spec.items()]

        @property
        def num_layers(self) -> int:
            return len(self.layers)

        def get_layer(self, i: int) -> Layer:
            return self.layers[i]

        @property
        def num_inputs(self) -> int:
            return len(self.inputs)

        def get_input(self, i: int) -> Tensor:
            return self.inputs[i]

    class OnnxParser:
        def __init__(self, network: Network, logger: Logger) -> None:
            self.errors = parse_errors or []

        def parse_from_file(self, path: str) -> bool:
            rec.parsed.append(onnx.load(path))  # read now: the file may be temporary
            return not self.errors

        @property
        def num_errors(self) -> int:
            return len(self.errors)

        def get_error(self, i: int) -> Any:
            return self.errors[i]

    tag = f"timing:{version}:{rec.gpu}:".encode()

    class TimingCache:
        def __init__(self, blob: bytes) -> None:
            self.blob = bytes(blob)

        def serialize(self) -> bytes:
            return self.blob or tag

    class Config:
        progress_monitor: Any = None

        def __init__(self) -> None:
            self.cache: TimingCache | None = None
            self.profiles: list[Profile] = []

        def set_memory_pool_limit(self, pool: str, size: int) -> None:
            assert pool == "WORKSPACE" and size > 0

        def set_flag(self, flag: str) -> None:
            rec.builder_flags.append(flag)

        def create_timing_cache(self, blob: bytes) -> TimingCache:
            rec.cache_blob = bytes(blob)
            return TimingCache(blob)

        def set_timing_cache(self, cache: TimingCache, ignore_mismatch: bool) -> bool:
            if cache.blob and not cache.blob.startswith(tag) and not ignore_mismatch:
                return False  # TensorRT logs "timing cache mismatch" and keeps none
            self.cache = cache
            return True

        def get_timing_cache(self) -> TimingCache | None:
            return self.cache

        def add_optimization_profile(self, profile: Profile) -> int:
            self.profiles.append(profile)
            return len(self.profiles) - 1

    class Profile:
        def __init__(self) -> None:
            self.shapes: dict[str, tuple[Any, Any, Any]] = {}

        def set_shape(self, name: str, lo: Any, opt: Any, hi: Any) -> None:
            assert all(a <= b <= c for a, b, c in zip(lo, opt, hi, strict=True)), (lo, opt, hi)
            rec.profiles.append((name, lo, opt, hi))
            self.shapes[name] = (lo, opt, hi)

    class Builder:
        def __init__(self, logger: Logger) -> None:
            check_init("Builder")
            self.logger = logger

        def create_network(self, flags: int = 0) -> Network:
            rec.network_flags.append(flags)
            return Network()

        def create_builder_config(self) -> Config:
            return Config()

        def create_optimization_profile(self) -> Profile:
            return Profile()

        def build_serialized_network(self, network: Network, config: Config) -> bytes | None:
            rec.builds += 1
            rec.monitor = config.progress_monitor
            dynamic = [t.name for t in network.inputs if t.shape[0] < 0]
            profile = config.profiles[0].shapes if config.profiles else {}
            if dynamic and set(profile) != set(dynamic):
                return None  # TensorRT: "network has dynamic inputs but no profile"
            first = network.inputs[0]
            return engine_bytes({t.name: t.shape for t in network.inputs},
                                {"output": first.shape}, op=rec.op, profile=profile,
                                version=version)

    class IProgressMonitor:
        def __init__(self) -> None:
            pass

    class DataType:
        def __init__(self, name: str) -> None:
            self.name = name

    class Engine:
        def __init__(self, spec: dict[str, Any]) -> None:
            self.spec = spec
            self.inputs = {k: tuple(v) for k, v in spec["inputs"].items()}
            self.outputs = {k: tuple(v) for k, v in spec["outputs"].items()}
            self.profile = {k: tuple(tuple(d) for d in v) for k, v in spec["profile"].items()}
            self.names = [*self.inputs, *self.outputs]

        @property
        def num_io_tensors(self) -> int:
            return len(self.names)

        def get_tensor_name(self, index: int) -> str:
            return self.names[index]

        def get_tensor_mode(self, name: str) -> str:
            return "INPUT" if name in self.inputs else "OUTPUT"

        def get_tensor_shape(self, name: str) -> tuple[int, ...]:
            return {**self.inputs, **self.outputs}[name]

        def get_tensor_dtype(self, name: str) -> DataType:
            return DataType("FLOAT")

        def get_tensor_profile_shape(self, name: str, index: int) -> tuple[Any, ...]:
            if index != 0 or name not in self.profile:
                raise RuntimeError(f"no optimization profile {index} for {name}")
            return self.profile[name]

        def create_execution_context(self) -> Context | None:
            if rec.contexts_left <= 0:
                return None  # TensorRT: out of device memory for the activations
            rec.contexts_left -= 1
            rec.contexts_made += 1
            return Context(self)

    class Context:
        def __init__(self, engine: Engine) -> None:
            self.engine = engine
            self.shapes: dict[str, tuple[int, ...]] = {
                k: v for k, v in engine.inputs.items() if all(d >= 0 for d in v)}
            self.addresses: dict[str, int] = {}
            self.user: int | None = None
            self.guard = threading.Lock()

        def set_input_shape(self, name: str, dims: Sequence[int]) -> bool:
            dims = tuple(int(d) for d in dims)
            static = self.engine.inputs.get(name)
            if static is None or len(dims) != len(static):
                return False
            if name in self.engine.profile:
                lo, _, hi = self.engine.profile[name]
                if not all(a <= d <= b for a, d, b in zip(lo, dims, hi, strict=True)):
                    return False  # TensorRT logs "... is out of the profile's range"
            elif dims != static:
                return False
            self.shapes[name] = dims
            return True

        def get_tensor_shape(self, name: str) -> tuple[int, ...]:
            if name in self.engine.inputs:
                return self.shapes.get(name, self.engine.inputs[name])
            first = next(iter(self.engine.inputs))
            if first not in self.shapes:
                return (-1, *self.engine.outputs[name][1:])
            return (self.shapes[first][0], *self.engine.outputs[name][1:])

        def set_tensor_address(self, name: str, address: int) -> bool:
            if name not in self.engine.names:
                return False
            self.addresses[name] = int(address)
            return True

        def execute_async_v3(self, stream_handle: int) -> bool:
            with self.guard:
                if self.user is not None:
                    raise RuntimeError("fake tensorrt: one IExecutionContext entered by two "
                                       "threads at once (TensorRT requires one per thread)")
                self.user = threading.get_ident()
            try:
                if set(self.shapes) != set(self.engine.inputs):
                    return False  # "not all input shapes are specified"
                if set(self.addresses) != set(self.engine.names):
                    return False  # "address of tensor ... not set"
                first = next(iter(self.engine.inputs))
                source = _view(self.addresses[first], self.shapes[first])
                for name in self.engine.outputs:
                    target = _view(self.addresses[name], self.get_tensor_shape(name))
                    with np.errstate(invalid="ignore"):
                        target[...] = _OPS[self.engine.spec["op"]](source)
                time.sleep(rec.execute_seconds)  # a launch that takes time, like a real one
                rec.executions += 1
                return True
            finally:
                self.user = None

    class Runtime:
        def __init__(self, logger: Logger) -> None:
            check_init("Runtime")

        def deserialize_cuda_engine(self, blob: bytes) -> Engine | None:
            try:
                spec = json.loads(bytes(blob))
            except ValueError:
                return None  # TensorRT logs the error and returns None
            if spec.get("magic") != "fake-trt" or spec.get("version") != version:
                return None
            return Engine(spec)

    for cls in (Logger, Builder, OnnxParser, IProgressMonitor, Runtime):
        setattr(trt, cls.__name__, cls)
    return trt


_OPS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "copy": lambda x: x, "sqrt": np.sqrt, "abs": np.abs}


def _view(address: int, shape: Sequence[int]) -> np.ndarray:
    """float32 memory at ``address`` (a CPU tensor's ``data_ptr``) as an array of ``shape``."""
    count = int(np.prod(shape))
    buffer = (ctypes.c_float * count).from_address(address)
    return np.ctypeslib.as_array(buffer).reshape(tuple(shape))
