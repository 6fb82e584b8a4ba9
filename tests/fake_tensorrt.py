"""A strict stand-in for the ``tensorrt`` module (TensorRT 10/11 Python API), for CPU tests.

It enforces what the real library enforces and returns what it returns on failure (facts
from NVIDIA/TensorRT's headers and Python docs, cited per refusal):
- ``Builder(logger)`` / ``Runtime(logger)`` raise ``TypeError: ... factory function returned
  nullptr`` when CUDA cannot be initialised (``init_fails``);
- ``IBuilderConfig.create_timing_cache(blob)`` returns None for a blob that is not a timing
  cache (TensorRT's samples check for it); ``set_timing_cache(None, ...)`` is a pybind11
  ``TypeError``; ``set_timing_cache(cache, ignore_mismatch=False)`` returns False for a cache
  made on another GPU/version, and ``get_timing_cache()`` is then None;
- a strongly typed network (``NetworkDefinitionCreationFlag.STRONGLY_TYPED``; always on in
  TensorRT 11) refuses the precision flags (``FP16``, ``BF16``, ``INT8``,
  ``OBEY_PRECISION_CONSTRAINTS``) and per-layer ``precision`` / ``set_output_type``: the build
  logs an API usage error and ``build_serialized_network`` returns None;
- TensorRT 10.12+ warns (``DeprecationWarning``, recorded in ``Recorder.deprecated``) on
  weak typing: ``BuilderFlag.FP16`` and layer precisions; TensorRT 11's module has no
  ``BuilderFlag.FP16``/``INT8``/``OBEY_PRECISION_CONSTRAINTS`` at all (``AttributeError``);
- ``ICudaEngine.create_execution_context()`` returns None when out of memory
  (``contexts_left``, or ``device_bytes_left`` below ``device_memory_size_v2``, the bytes a
  context's activations cost); shapes are ``trt.Dims`` (indexable, ``len``; not tuples);
- ``IExecutionContext.set_input_shape`` returns False outside the profile's min..max (or a
  static engine's shape); ``set_tensor_address`` returns False for an unknown name, a null
  address, an address not aligned to 256 bytes ("The pointer must have at least 256-byte
  alignment", NvInferRuntime.h) and host memory (``Recorder.host_ranges``);
- ``execute_async_v3(stream)`` refuses unset shapes or addresses (returns False) and is
  asynchronous: it only queues the work on the stream (``tests.fake_cuda``), which reads the
  inputs and writes the outputs later, with the shapes and addresses bound at enqueue time;
- two threads inside one context at once raise ``RuntimeError`` (TensorRT: one context per
  thread), in ``set_input_shape`` and ``execute_async_v3``, even when the call is instant:
  a call started by one thread stays "inside" for ``Recorder.call_seconds``.

The engine it "builds" is JSON naming an elementwise op on the first input (``copy``,
``sqrt``, ``abs``) and each tensor's ``DataType`` (FLOAT, HALF, BF16, INT32); the work reads
and writes the bound memory at the addresses it was given (``data_ptr`` of CPU tensors), as
TensorRT reads device memory.
"""

from __future__ import annotations

import ctypes
import json
import threading
import time
import types
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx

from tests import fake_cuda

NULLPTR = ("__init__(): incompatible constructor arguments... factory function returned "
           "nullptr")  # what pybind11 says when TensorRT's create*() returned null
ALIGNMENT = 256
TIMING_MAGIC = b"timing:"
PRECISION_FLAGS = frozenset({"FP16", "BF16", "INT8", "OBEY_PRECISION_CONSTRAINTS"})


@dataclass
class Recorder:
    """What was asked of the fake, and the knobs that make it fail."""

    network_flags: list[int] = field(default_factory=list)
    builder_flags: list[str] = field(default_factory=list)
    parsed: list[onnx.ModelProto] = field(default_factory=list)
    pinned: dict[str, Any] = field(default_factory=dict)
    cache_blob: bytes | None = None
    builds: int = 0
    building: int = 0
    most_builds_at_once: int = 0
    build_seconds: float = 0.0
    build_errors: list[str] = field(default_factory=list)
    deprecated: list[str] = field(default_factory=list)
    profiles: list[tuple[str, Any, Any, Any]] = field(default_factory=list)
    monitor: Any = None
    gpu: str = "Fake GPU"
    init_fails: bool = False
    contexts_left: int = 1000
    contexts_made: int = 0
    # device memory: each context's activations cost ``context_bytes`` (what
    # ``ICudaEngine.device_memory_size_v2`` reports); None: unlimited
    device_bytes_left: int | None = None
    context_bytes: int = 64 << 20
    deserialized_on: list[str] = field(default_factory=list)  # thread names
    executions: int = 0
    enqueued: int = 0
    execute_seconds: float = 0.0
    call_seconds: float = 0.0
    host_ranges: list[tuple[int, int]] = field(default_factory=list)
    op: str = "copy"
    lock: threading.Lock = field(default_factory=threading.Lock)


class Dims:
    """``trt.Dims``: indexable and sized, not a tuple (``==`` a tuple is False)."""

    def __init__(self, dims: Sequence[int] = ()) -> None:
        self._dims = [int(d) for d in dims]

    def __len__(self) -> int:
        return len(self._dims)

    def __getitem__(self, index: int) -> int:
        return self._dims[index]

    def __repr__(self) -> str:
        return f"Dims({self._dims})"


class DataType:
    def __init__(self, name: str, dtype: str, itemsize: int) -> None:
        self.name, self.numpy, self.itemsize = name, dtype, itemsize

    def __repr__(self) -> str:
        return f"DataType.{self.name}"


DATA_TYPES = {d.name: d for d in (DataType("FLOAT", "float32", 4), DataType("HALF", "float16", 2),
                                  DataType("BF16", "bfloat16", 2), DataType("INT32", "int32", 4))}


def module(*, fp16_flag: bool, strongly_typed: bool = True) -> types.ModuleType:
    """A bare module with the flags that tell TensorRT 10 (10.13) from 11 (11.1)."""
    trt = types.ModuleType("tensorrt")
    trt.__version__ = "10.13.0.35" if fp16_flag else "11.1.0.7"  # type: ignore[attr-defined]
    builder_flags = {"TF32": "TF32"}
    if fp16_flag:  # TensorRT 11 removed the weak-typing precision flags
        builder_flags.update({k: k for k in sorted(PRECISION_FLAGS)})
    trt.BuilderFlag = types.SimpleNamespace(**builder_flags)  # type: ignore[attr-defined]
    # NvInfer.h: TensorRT 10 has kEXPLICIT_BATCH = 0 (deprecated), kSTRONGLY_TYPED = 1;
    # TensorRT 11 removed kEXPLICIT_BATCH: kSTRONGLY_TYPED = 0 (deprecated, always on)
    creation: dict[str, int] = {}
    if fp16_flag:
        creation["EXPLICIT_BATCH"] = 0
    if strongly_typed:
        creation["STRONGLY_TYPED"] = 1 if fp16_flag else 0
    trt.NetworkDefinitionCreationFlag = types.SimpleNamespace(**creation)  # type: ignore[attr-defined]
    return trt


def engine_bytes(inputs: dict[str, Sequence[int]], outputs: dict[str, Sequence[int]], *,
                 op: str = "copy", profile: Mapping[str, Sequence[Any]] | None = None,
                 version: str = "10.13.0.35", dtypes: Mapping[str, str] | None = None) -> bytes:
    """A serialized fake engine: ``inputs`` with -1 at a profiled batch axis; ``dtypes``
    maps a tensor to a DataType name (default FLOAT)."""
    return json.dumps({"magic": "fake-trt", "version": version, "op": op,
                       "inputs": {k: list(v) for k, v in inputs.items()},
                       "outputs": {k: list(v) for k, v in outputs.items()},
                       "profile": {k: [list(d) for d in v] for k, v in (profile or {}).items()},
                       "dtypes": dict(dtypes or {})}).encode()


def host_buffer(rec: Recorder, shape: Sequence[int], dtype: str = "float32") -> np.ndarray:
    """Host (not device) memory: ``set_tensor_address`` refuses it, as TensorRT needs a
    device pointer. 256-aligned so that only its kind is wrong."""
    count = int(np.prod(shape)) * np.dtype(dtype).itemsize
    raw = np.zeros(count + ALIGNMENT, np.uint8)
    start = -raw.ctypes.data % ALIGNMENT
    array = raw[start:start + count].view(dtype).reshape(tuple(shape))
    rec.host_ranges.append((array.ctypes.data, array.ctypes.data + count))
    return array


def fake_tensorrt(*, fp16_flag: bool = True, layers: list[tuple[str, str, str]] | None = None,
                  rec: Recorder, parse_errors: list[Any] | None = None,
                  network_inputs: dict[str, tuple[int, ...]] | None = None,
                  strongly_typed: bool = True) -> types.ModuleType:
    trt = module(fp16_flag=fp16_flag, strongly_typed=strongly_typed)
    for data_type in DATA_TYPES.values():
        setattr(trt, {"FLOAT": "float32", "HALF": "float16", "BF16": "bfloat16",
                      "INT32": "int32"}[data_type.name], data_type)
    trt.DataType = types.SimpleNamespace(**DATA_TYPES)  # type: ignore[attr-defined]
    trt.MemoryPoolType = types.SimpleNamespace(WORKSPACE="WORKSPACE")  # type: ignore[attr-defined]
    trt.TensorIOMode = types.SimpleNamespace(INPUT="INPUT", OUTPUT="OUTPUT")  # type: ignore[attr-defined]
    trt.Dims = Dims  # type: ignore[attr-defined]
    version = trt.__version__  # type: ignore[attr-defined]
    # 10.13 ≥ 10.12: weak typing warns (a module without strong typing predates that)
    weak_typing_deprecated = fp16_flag and strongly_typed
    inputs_spec = network_inputs or {"target": (-1, 3, 64, 64), "source": (-1, 512)}

    def deprecated(what: str) -> None:
        rec.deprecated.append(what)
        warnings.warn(f"{what} is deprecated since TensorRT 10.12 (superseded by strong "
                      "typing)", DeprecationWarning, stacklevel=3)

    class Logger:
        WARNING = "warning"

        def __init__(self, severity: str) -> None:
            self.severity = severity

    def check_init(what: str) -> None:
        if rec.init_fails:
            raise TypeError(f"{what}: {NULLPTR}")

    class Tensor:
        def __init__(self, name: str, shape: tuple[int, ...],
                     dtype: DataType = DATA_TYPES["FLOAT"]) -> None:
            self.name, self.shape, self.dtype = name, Dims(shape), dtype

    class Network:
        def __init__(self, flags: int) -> None:
            bit = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
            self.strongly_typed = (bit is not None and bool(flags & (1 << bit))
                                   ) or not fp16_flag  # always in TRT 11
            self.layers = [Layer(self, n, t, o) for n, t, o in layers or []]
            self.inputs = [Tensor(n, s) for n, s in inputs_spec.items()]
            self.errors: list[str] = []

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

    class Layer:
        def __init__(self, network: Network, name: str, type_name: str, output: str) -> None:
            self.network = network
            self.name, self.type = name, types.SimpleNamespace(name=type_name)
            self.output_name = output
            self.num_outputs = 1

        def _precision_api(self, what: str) -> bool:
            if self.network.strongly_typed:
                self.network.errors.append(f"{self.name}: {what} on a strongly typed network")
                return False
            if weak_typing_deprecated:
                deprecated(f"ILayer.{what}")
            return True

        @property
        def precision(self) -> DataType:
            return DATA_TYPES["FLOAT"]

        @precision.setter
        def precision(self, value: DataType) -> None:
            if self._precision_api("precision"):
                rec.pinned.setdefault(self.name, {})["precision"] = value.numpy

        def get_output(self, index: int) -> Tensor:
            return Tensor(self.output_name, (1,))

        def set_output_type(self, index: int, dtype: DataType) -> None:
            if self._precision_api("set_output_type"):
                rec.pinned.setdefault(self.name, {})[f"output{index}"] = dtype.numpy

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

    tag = TIMING_MAGIC + f"{version}:{rec.gpu}:".encode()

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
            self.flags: list[str] = []

        def set_memory_pool_limit(self, pool: str, size: int) -> None:
            if pool != "WORKSPACE" or not isinstance(size, int):
                raise TypeError("set_memory_pool_limit(): incompatible function arguments")

        def set_flag(self, flag: str) -> None:
            if flag == "FP16" and weak_typing_deprecated:
                deprecated("BuilderFlag.FP16")
            rec.builder_flags.append(flag)
            self.flags.append(flag)

        def create_timing_cache(self, blob: bytes) -> TimingCache | None:
            rec.cache_blob = bytes(blob)
            if blob and not bytes(blob).startswith(TIMING_MAGIC):
                return None  # TensorRT logs "Failed to deserialize the timing cache"
            return TimingCache(blob)

        def set_timing_cache(self, cache: TimingCache, ignore_mismatch: bool) -> bool:
            if not isinstance(cache, TimingCache):
                raise TypeError("set_timing_cache(): incompatible function arguments. The "
                                "following argument types are supported: (self, cache: "
                                "tensorrt.ITimingCache, ignore_mismatch: bool)")
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
            self.errors: list[str] = []

        def set_shape(self, name: str, lo: Any, opt: Any, hi: Any) -> None:
            # Dims, or a tuple/list (pybind11 converts them implicitly)
            lo_t, opt_t, hi_t = (tuple(d[i] for i in range(len(d))) for d in (lo, opt, hi))
            if not all(a <= b <= c for a, b, c in zip(lo_t, opt_t, hi_t, strict=True)):
                self.errors.append(f"{name}: min <= opt <= max violated")
            rec.profiles.append((name, lo_t, opt_t, hi_t))
            self.shapes[name] = (lo_t, opt_t, hi_t)

    class Builder:
        def __init__(self, logger: Logger) -> None:
            check_init("Builder")
            self.logger = logger

        def create_network(self, flags: int = 0) -> Network:
            rec.network_flags.append(flags)
            return Network(flags)

        def create_builder_config(self) -> Config:
            return Config()

        def create_optimization_profile(self) -> Profile:
            return Profile()

        def build_serialized_network(self, network: Network, config: Config) -> bytes | None:
            with rec.lock:
                rec.building += 1
                rec.most_builds_at_once = max(rec.most_builds_at_once, rec.building)
            try:
                time.sleep(rec.build_seconds)
                return self._build(network, config)
            finally:
                with rec.lock:
                    rec.building -= 1

        def _build(self, network: Network, config: Config) -> bytes | None:
            rec.builds += 1
            rec.monitor = config.progress_monitor
            errors = list(network.errors)
            if network.strongly_typed:
                errors += [f"BuilderFlag.{f} on a strongly typed network" for f in config.flags
                           if f in PRECISION_FLAGS]
            for profile in config.profiles:
                errors += profile.errors
            dynamic = [t.name for t in network.inputs if t.shape[0] < 0]
            profile_shapes = config.profiles[0].shapes if config.profiles else {}
            if dynamic and set(profile_shapes) != set(dynamic):
                errors.append("network has dynamic inputs but no profile")
            if errors:
                rec.build_errors += errors  # TensorRT logs them; the build returns None
                return None
            first = network.inputs[0]
            shape = tuple(first.shape[i] for i in range(len(first.shape)))
            return engine_bytes({t.name: tuple(t.shape[i] for i in range(len(t.shape)))
                                 for t in network.inputs},
                                {"output": shape}, op=rec.op, profile=profile_shapes,
                                version=version)

    class IProgressMonitor:
        def __init__(self) -> None:
            pass

    class Engine:
        def __init__(self, spec: dict[str, Any]) -> None:
            self.spec = spec
            self.inputs = {k: tuple(v) for k, v in spec["inputs"].items()}
            self.outputs = {k: tuple(v) for k, v in spec["outputs"].items()}
            self.profile = {k: tuple(tuple(d) for d in v) for k, v in spec["profile"].items()}
            self.names = [*self.inputs, *self.outputs]
            self.dtypes = {n: DATA_TYPES[spec.get("dtypes", {}).get(n, "FLOAT")]
                           for n in self.names}

        @property
        def num_io_tensors(self) -> int:
            return len(self.names)

        def get_tensor_name(self, index: int) -> str:
            return self.names[index]

        def get_tensor_mode(self, name: str) -> str:
            return "INPUT" if name in self.inputs else "OUTPUT"

        def get_tensor_shape(self, name: str) -> Dims:
            return Dims({**self.inputs, **self.outputs}[name])

        def get_tensor_dtype(self, name: str) -> DataType:
            return self.dtypes[name]

        def get_tensor_profile_shape(self, name: str, index: int) -> list[Dims]:
            if index != 0 or name not in self.profile:
                raise RuntimeError(f"no optimization profile {index} for {name}")
            return [Dims(d) for d in self.profile[name]]

        @property
        def device_memory_size_v2(self) -> int:
            return rec.context_bytes

        def create_execution_context(self) -> Context | None:
            if rec.contexts_left <= 0:
                return None  # TensorRT: out of device memory for the activations
            if rec.device_bytes_left is not None:
                if rec.device_bytes_left < rec.context_bytes:
                    return None
                rec.device_bytes_left -= rec.context_bytes
            rec.contexts_left -= 1
            rec.contexts_made += 1
            return Context(self)

    class Context:
        def __init__(self, engine: Engine) -> None:
            self.engine = engine
            self.shapes: dict[str, tuple[int, ...]] = {
                k: v for k, v in engine.inputs.items() if all(d >= 0 for d in v)}
            self.addresses: dict[str, int] = {}
            self.owner: int | None = None  # the thread inside a call or a launch sequence
            self.busy_until = 0.0
            self.guard = threading.Lock()

        def _enter(self) -> None:
            """Each call keeps the context for ``call_seconds`` (instant calls included):
            another thread calling meanwhile is two threads in one context."""
            me = threading.get_ident()
            with self.guard:
                now = time.monotonic()
                if self.owner not in (None, me) and now < self.busy_until:
                    raise RuntimeError("fake tensorrt: one IExecutionContext entered by two "
                                       "threads at once (TensorRT requires one per thread)")
                self.owner = me
                self.busy_until = now + rec.call_seconds
            time.sleep(rec.call_seconds)

        def set_input_shape(self, name: str, dims: Any) -> bool:
            self._enter()
            dims = tuple(int(dims[i]) for i in range(len(dims)))
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

        def get_tensor_shape(self, name: str) -> Dims:
            if name in self.engine.inputs:
                return Dims(self.shapes.get(name, self.engine.inputs[name]))
            first = next(iter(self.engine.inputs))
            if first not in self.shapes:
                return Dims((-1, *self.engine.outputs[name][1:]))
            return Dims((self.shapes[first][0], *self.engine.outputs[name][1:]))

        def set_tensor_address(self, name: str, address: int) -> bool:
            address = int(address)
            if name not in self.engine.names or address == 0 or address % ALIGNMENT:
                return False  # TensorRT logs an API usage error
            if any(lo <= address < hi for lo, hi in rec.host_ranges):
                return False  # not device memory
            self.addresses[name] = address
            return True

        def execute_async_v3(self, stream_handle: int) -> bool:
            self._enter()
            if set(self.shapes) != set(self.engine.inputs):
                return False  # "not all input shapes are specified"
            if set(self.addresses) != set(self.engine.names):
                return False  # "address of tensor ... not set"
            first = next(iter(self.engine.inputs))
            bound: dict[str, tuple[int, tuple[int, ...], DataType]] = {}
            for n in self.engine.names:
                dims = self.get_tensor_shape(n)
                bound[n] = (self.addresses[n], tuple(dims[i] for i in range(len(dims))),
                            self.engine.dtypes[n])
            fake_cuda.enqueue(int(stream_handle), _kernel(rec, self.engine.spec["op"], bound,
                                                          first, list(self.engine.outputs)))
            rec.enqueued += 1
            return True

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
            rec.deserialized_on.append(threading.current_thread().name)
            return Engine(spec)

    for cls in (Logger, Builder, OnnxParser, IProgressMonitor, Runtime):
        setattr(trt, cls.__name__, cls)
    return trt


def _kernel(rec: Recorder, op: str, bound: dict[str, tuple[int, tuple[int, ...], DataType]],
            first: str, outputs: list[str]) -> Callable[[], None]:
    """The launch's work, run later on its stream: reads ``first``, writes the outputs."""

    def run() -> None:
        source = _read(*bound[first])
        for name in outputs:
            with np.errstate(invalid="ignore"):
                _write(*bound[name], _OPS[op](source))
        time.sleep(rec.execute_seconds)  # a launch that takes time, like a real one
        rec.executions += 1

    return run


_OPS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "copy": lambda x: x, "sqrt": np.sqrt, "abs": np.abs}


def _raw(address: int, shape: Sequence[int], itemsize: int) -> np.ndarray:
    count = int(np.prod(shape)) * itemsize
    buffer = (ctypes.c_uint8 * count).from_address(address)
    return np.ctypeslib.as_array(buffer)


def _read(address: int, shape: Sequence[int], dtype: DataType) -> np.ndarray:
    raw = _raw(address, shape, dtype.itemsize)
    if dtype.name == "BF16":
        bits = raw.view(np.uint16).astype(np.uint32) << 16
        return bits.view(np.float32).reshape(tuple(shape))
    return raw.view(dtype.numpy).astype(np.float32).reshape(tuple(shape))


def _write(address: int, shape: Sequence[int], dtype: DataType, values: np.ndarray) -> None:
    raw = _raw(address, shape, dtype.itemsize)
    values = np.ascontiguousarray(values, np.float32).reshape(-1)
    if dtype.name == "BF16":  # round to nearest even, as a float32 → bfloat16 cast does
        bits = values.view(np.uint32).astype(np.uint64)
        rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
        raw.view(np.uint16)[...] = rounded.astype(np.uint16)
    elif dtype.name == "INT32":
        raw.view(np.int32)[...] = values.astype(np.int32)
    else:
        raw.view(dtype.numpy)[...] = values.astype(dtype.numpy)
