"""ONNX → serialized TensorRT engine, cached by what makes an engine valid.

Engines are tied to the GPU model, the TensorRT version and the OS, so the cache key holds the
ONNX file's sha256, the TensorRT version, GPU name, compute capability, precision and shapes;
an engine is rebuilt automatically when any of them changes. The builder's timing cache is kept
next to the engines and reused (builds go from minutes to seconds).

Build paths (TensorRT API names cited where used):
- "strongly-typed", whenever the module has ``NetworkDefinitionCreationFlag.STRONGLY_TYPED``
  (every TensorRT 10 and 11): the network is created with that flag from the FP16 graph
  ``export.fp16`` writes (precision decided in the graph by explicit Casts). Weak typing
  (``BuilderFlag.FP16``, ``OBEY_PRECISION_CONSTRAINTS``, ``ILayer.precision``) is deprecated
  since TensorRT 10.12 ("superseded by strong typing") and removed in 11; in 11 the flag is
  kept but ignored (strong typing is always on), so setting it is right for both.
- "fp16-flag", only for a module without ``STRONGLY_TYPED``: ``BuilderFlag.FP16`` plus
  ``OBEY_PRECISION_CONSTRAINTS`` with the normalisation layers pinned to FP32.
- "fp32": the FP32 graph, strongly typed when the flag exists.

Builds take a file lock (``build.lock`` in the engine folder, the ``filelock`` package): one
build at a time on this machine, shared by ``export tensorrt`` and the live app, and a second
opener of the same ONNX file finds the engine the first one built.

Everything TensorRT-free (cache key, path choice from a module object, which layers to pin,
profile shapes) is a pure function, tested without a GPU. TensorRT is imported lazily.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal

from engines.base import EngineError, EngineUnavailable
from engines.fileio import sha256_file, write_atomic
from engines.tensorrt import construct, load_tensorrt

if TYPE_CHECKING:  # the tensorrt-stubs package types these; the real module loads lazily
    import tensorrt as trt_t

log = logging.getLogger(__name__)

Precision = Literal["fp16", "fp32"]
BuildPath = Literal["fp16-flag", "strongly-typed", "fp32"]
PRECISIONS: tuple[str, ...] = ("fp16", "fp32")
Shapes = Mapping[str, Sequence[int]]

TENSORRT_HINT = "pip install --extra-index-url https://pypi.nvidia.com tensorrt-cu12"
WORKSPACE_BYTES = 4 << 30
# TensorRT layer types that compute statistics whose FP16 form overflows (x²) or underflows (eps)
FP32_LAYER_TYPES = frozenset({"NORMALIZATION"})


class EngineBuildError(EngineError):
    """The ONNX file could not be parsed or built; the message lists every parser error."""


@dataclass(frozen=True)
class GpuInfo:
    name: str
    compute_capability: tuple[int, int]


# --- pure parts ------------------------------------------------------------------------------


def cache_key(*, onnx_sha256: str, tensorrt_version: str, gpu_name: str,
              compute_capability: tuple[int, int], precision: str, shapes: Shapes,
              batch_range: tuple[int, int, int] | None = None) -> str:
    """sha256 over every component that invalidates an engine (canonical JSON: order-free);
    ``batch_range`` is the profile's (min, opt, max) batch when there is one."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision: expected one of {PRECISIONS}, got {precision!r}")
    payload = {
        "onnx_sha256": onnx_sha256,
        "tensorrt": tensorrt_version,
        "gpu": gpu_name,
        "compute_capability": list(compute_capability),
        "precision": precision,
        "shapes": {name: [int(d) for d in dims] for name, dims in sorted(shapes.items())},
    }
    if batch_range is not None:
        payload["batch_range"] = [int(b) for b in batch_range]
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def engine_file(cache_dir: Path, key: str, label: str = "") -> Path:
    """``<cache_dir>/<label->key.engine`` (the label only helps a human browsing the folder)."""
    return Path(cache_dir) / (f"{label}-{key}.engine" if label else f"{key}.engine")


def timing_cache_file(cache_dir: Path, tensorrt_version: str, gpu: GpuInfo) -> Path:
    """One timing cache per TensorRT version and GPU (TensorRT rejects a foreign one)."""
    slug = "".join(c if c.isalnum() else "-" for c in gpu.name).strip("-").lower()
    major, minor = gpu.compute_capability
    return Path(cache_dir) / f"timing-{tensorrt_version}-{slug}-sm{major}{minor}.cache"


def has_fp16_flag(trt: Any) -> bool:
    """True when the module still offers ``BuilderFlag.FP16`` (TensorRT ≤ 10)."""
    builder_flag = getattr(trt, "BuilderFlag", None)
    return builder_flag is not None and hasattr(builder_flag, "FP16")


def has_strongly_typed(trt: Any) -> bool:
    """True when the module offers ``NetworkDefinitionCreationFlag.STRONGLY_TYPED``."""
    flags = getattr(trt, "NetworkDefinitionCreationFlag", None)
    return flags is not None and hasattr(flags, "STRONGLY_TYPED")


def choose_build_path(trt: Any, precision: str) -> BuildPath:
    """How to build ``precision`` with this TensorRT module: strongly typed whenever it can
    be (weak typing is deprecated since TensorRT 10.12, removed in 11)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision: expected one of {PRECISIONS}, got {precision!r}")
    if precision == "fp32":
        return "fp32"
    if has_strongly_typed(trt):
        return "strongly-typed"
    if not has_fp16_flag(trt):
        raise EngineUnavailable(
            "tensorrt", f"TensorRT {getattr(trt, '__version__', '?')} offers neither "
            "BuilderFlag.FP16 nor NetworkDefinitionCreationFlag.STRONGLY_TYPED", TENSORRT_HINT)
    return "fp16-flag"


def layers_to_pin_fp32(layers: Iterable[tuple[str, str, Sequence[str]]],
                       fp32_nodes: AbstractSet[str],
                       fp32_tensors: AbstractSet[str] = frozenset(),
                       all_nodes: AbstractSet[str] = frozenset()) -> list[int]:
    """Indices of TensorRT layers, given as (name, LayerType name, output tensor names), to
    pin to FP32: every normalisation layer, every layer the ONNX parser made from a node in
    ``fp32_nodes`` and every layer writing a tensor in ``fp32_tensors``.

    The parser names a layer after its ONNX node, adding a suffix when one node becomes
    several layers (``/x/Mul`` → ``/x/Mul_1``), and names each layer's output after the ONNX
    tensor (which also covers nodes the exporter left unnamed). A layer belongs to the
    longest node name it starts with, out of ``all_nodes`` (every node of the graph) and
    ``fp32_nodes``: so ``/x/Mul_1`` is its own node when the graph has one, not a part of
    ``/x/Mul``."""
    known = set(all_nodes) | set(fp32_nodes)
    pinned = []
    for index, (name, type_name, outputs) in enumerate(layers):
        if (type_name in FP32_LAYER_TYPES or any(out in fp32_tensors for out in outputs)
                or _source_node(name, known) in fp32_nodes):
            pinned.append(index)
    return pinned


def _source_node(layer_name: str, nodes: AbstractSet[str]) -> str | None:
    """The ONNX node a parser layer came from: the node of that exact name, else the
    longest node name followed by a separator at the start of the layer's name."""
    if layer_name in nodes:
        return layer_name
    owners = [node for node in nodes if len(layer_name) > len(node)
              and layer_name.startswith(node) and layer_name[len(node)] in "_/:. [("]
    return max(owners, key=len, default=None)


def static_shapes(inputs: Mapping[str, Sequence[int | str]],
                  batch: int = 1) -> dict[str, tuple[int, ...]]:
    """Concrete input shapes: a symbolic or -1 leading (batch) dimension becomes ``batch``;
    any other symbolic dimension is an error (we build static engines)."""
    shapes = {}
    for name, dims in inputs.items():
        concrete = []
        for axis, dim in enumerate(dims):
            if isinstance(dim, int) and dim > 0:
                concrete.append(dim)
            elif axis == 0:
                concrete.append(batch)
            else:
                raise EngineBuildError(
                    f"{name}: expected static shape except the batch axis, got {tuple(dims)}")
        shapes[name] = tuple(concrete)
    return shapes


def batch_profile(shapes: Mapping[str, Sequence[int]], max_batch: int,
                  opt_batch: int = 1) -> dict[
        str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]]:
    """(min, opt, max) per input for an optimisation profile over batch 1..max_batch
    (``IOptimizationProfile.set_shape``); TensorRT tunes kernels for opt, so opt is the
    common face count (one), and up to max faces run in one launch."""
    if max_batch < 1:
        raise ValueError(f"max_batch: expected ≥ 1, got {max_batch}")
    if not 1 <= opt_batch <= max_batch:
        raise ValueError(f"opt_batch: expected 1..{max_batch}, got {opt_batch}")
    return {name: ((1, *dims[1:]), (opt_batch, *dims[1:]), (max_batch, *dims[1:]))
            for name, dims in shapes.items()}


def onnx_input_shapes(onnx_path: Path) -> dict[str, tuple[int | str, ...]]:
    """Graph inputs (initializers excluded) → dims (ints, or the symbolic name)."""
    import onnx

    model = onnx.load(str(onnx_path), load_external_data=False)
    initializers = {init.name for init in model.graph.initializer}
    shapes: dict[str, tuple[int | str, ...]] = {}
    for info in model.graph.input:
        if info.name in initializers:
            continue
        dims = info.type.tensor_type.shape.dim
        shapes[info.name] = tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")
                                  for d in dims)
    return shapes


def format_parser_errors(errors: Iterable[Any]) -> str:
    """One line per ``ParserError`` (``desc()``, ``node()``, ``node_name()``,
    ``node_operator()``; older parsers lack the last two)."""
    lines = []
    for i, error in enumerate(errors):
        where = []
        for attr in ("node_name", "node_operator"):
            getter = getattr(error, attr, None)
            value = getter() if callable(getter) else None
            if value:
                where.append(str(value))
        node = error.node() if callable(getattr(error, "node", None)) else -1
        label = f"node {node}" + (f" ({', '.join(where)})" if where else "")
        lines.append(f"  {i + 1}. {label}: {error.desc()}")
    return "\n".join(lines)


# --- TensorRT-facing parts (need tensorrt and a GPU) ------------------------------------------


def import_tensorrt() -> ModuleType:
    """The real tensorrt module or EngineUnavailable (type stubs alone do not count)."""
    return load_tensorrt()


def current_gpu() -> GpuInfo:
    """The CUDA device torch sees (name, compute capability) or EngineUnavailable."""
    try:
        import torch
    except ImportError as exc:  # torch is a core dependency; keep the message plain anyway
        raise EngineUnavailable("tensorrt", f"torch is not installed ({exc})") from exc
    if not torch.cuda.is_available():
        raise EngineUnavailable("tensorrt", "no CUDA GPU is visible (torch.cuda.is_available() "
                                "is False; CPU-only torch build or no NVIDIA driver)")
    index = torch.cuda.current_device()
    major, minor = torch.cuda.get_device_capability(index)
    return GpuInfo(torch.cuda.get_device_name(index), (int(major), int(minor)))


def _progress_monitor(trt: Any, enabled: bool) -> Any | None:
    """An ``IProgressMonitor`` subclass (TensorRT ≥ 10) driving one tqdm bar per phase
    (``phase_start``, ``step_complete``, ``phase_finish``), or None when unavailable."""
    base = getattr(trt, "IProgressMonitor", None)
    if not enabled or base is None:
        return None
    from tqdm import tqdm

    class TqdmProgress(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            super().__init__()  # pybind11 trampolines need the base __init__
            self.bars: dict[str, Any] = {}

        def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
            depth = 0 if parent_phase is None else 1 + (parent_phase in self.bars)
            self.bars[phase_name] = tqdm(total=num_steps, desc=phase_name, position=depth,
                                         leave=depth == 0, unit="step")

        def step_complete(self, phase_name: str, step: int) -> bool:
            bar = self.bars.get(phase_name)
            if bar is not None:
                bar.update(step + 1 - bar.n)
            return True  # False would cancel the build

        def phase_finish(self, phase_name: str) -> None:
            bar = self.bars.pop(phase_name, None)
            if bar is not None:
                bar.close()

    return TqdmProgress()


def _parse(network: trt_t.INetworkDefinition, logger: trt_t.ILogger,
           onnx_path: Path) -> trt_t.OnnxParser:
    """``OnnxParser.parse_from_file`` (resolves external weights next to the file); on failure
    every error from ``num_errors`` / ``get_error(i)`` goes into one exception."""
    import tensorrt as trt

    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = [parser.get_error(i) for i in range(parser.num_errors)]
        raise EngineBuildError(
            f"TensorRT could not parse {onnx_path} ({len(errors)} error(s)):\n"
            + format_parser_errors(errors))
    return parser


def _pin_fp32_layers(network: trt_t.INetworkDefinition, fp32_nodes: set[str],
                     fp32_tensors: set[str], all_nodes: set[str]) -> int:
    """TensorRT 10: ``ILayer.precision = trt.float32`` and ``set_output_type(i, trt.float32)``
    on the selected layers; honoured because of ``OBEY_PRECISION_CONSTRAINTS``."""
    import tensorrt as trt

    layers = [network.get_layer(i) for i in range(network.num_layers)]
    described = ((layer.name, layer.type.name,
                  [layer.get_output(i).name for i in range(layer.num_outputs)])
                 for layer in layers)
    chosen = layers_to_pin_fp32(described, fp32_nodes, fp32_tensors, all_nodes)
    for index in chosen:
        layer = layers[index]
        layer.precision = trt.float32
        for out in range(layer.num_outputs):
            if layer.get_output(out).dtype in (trt.float32, trt.float16):
                layer.set_output_type(out, trt.float32)
    return len(chosen)


def build_engine(onnx_path: Path, output: Path, *, precision: str = "fp16",
                 timing_cache: Path | None = None, max_batch: int = 1, opt_batch: int = 1,
                 progress: bool = True) -> Path:
    """Build and write a serialized engine for ``onnx_path``; returns ``output``. A dynamic
    batch axis gets the profile ``batch_profile(max_batch, opt_batch)``; a static one stays
    static (the runtime runs more faces in chunks)."""
    trt = import_tensorrt()  # a clean EngineUnavailable when absent

    path = choose_build_path(trt, precision)
    logger = trt.Logger(trt.Logger.WARNING)
    builder = construct(trt, "Builder", logger)  # EngineUnavailable when CUDA init fails
    source = Path(onnx_path)
    fp32_nodes: set[str] = set()
    fp32_tensors: set[str] = set()
    all_nodes: set[str] = set()
    with tempfile.TemporaryDirectory(prefix="swapcam-trt-") as scratch:
        if path != "fp32":
            import onnx
            from google.protobuf.message import DecodeError

            from export import fp16

            try:
                model = onnx.load(str(source))
                fp32_nodes = fp16.fp32_node_names(model, "mixed")
                fp32_tensors = fp16.fp32_tensor_names(model, "mixed")
                all_nodes = {node.name for node in model.graph.node if node.name}
                if path == "strongly-typed":
                    # precision lives in the graph; write the mixed FP16 ONNX
                    source = Path(scratch) / "fp16.onnx"
                    onnx.save(fp16.convert_to_fp16(model, "mixed"), str(source))
            except (ValueError, OSError, onnx.checker.ValidationError,
                    onnx.shape_inference.InferenceError, DecodeError) as exc:
                # an EngineError: the registry then opens the model on the next backend
                raise EngineBuildError(f"{onnx_path}: the FP16 graph for TensorRT could not "
                                       f"be written ({type(exc).__name__}: {exc})") from exc
        flags = 0
        if has_strongly_typed(trt) and path != "fp16-flag":
            flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
        network = builder.create_network(flags)  # explicit batch is implicit since TRT 10
        _parse(network, logger, source)

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
    if path == "fp16-flag":
        config.set_flag(trt.BuilderFlag.FP16)
        config.set_flag(trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)
        pinned = _pin_fp32_layers(network, fp32_nodes, fp32_tensors, all_nodes)
        log.info("TensorRT %s: FP16 with %d layer(s) pinned to FP32", trt.__version__, pinned)

    inputs = [network.get_input(i) for i in range(network.num_inputs)]
    dims = {t.name: tuple(t.shape[i] for i in range(len(t.shape))) for t in inputs}
    shapes = static_shapes(dims, batch=max_batch)
    if any(shape and shape[0] < 0 for shape in dims.values()):
        profile = builder.create_optimization_profile()
        for name, (lo, opt, hi) in batch_profile(shapes, max_batch, opt_batch).items():
            # IOptimizationProfile.set_shape(input, min, opt, max)
            profile.set_shape(name, trt.Dims(list(lo)), trt.Dims(list(opt)), trt.Dims(list(hi)))
        config.add_optimization_profile(profile)

    _use_timing_cache(config, timing_cache)
    monitor = _progress_monitor(trt, progress)
    if monitor is not None:
        config.progress_monitor = monitor

    log.info("building TensorRT engine for %s (%s, %s): this can take minutes",
             onnx_path, precision, path)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EngineBuildError(f"TensorRT failed to build {onnx_path} ({precision}, {path}); "
                               "run with --verbose for the builder's log")
    write_atomic(Path(output), memoryview(serialized))
    if timing_cache is not None:
        final = config.get_timing_cache()  # None when no cache could be attached
        if final is None:
            log.warning("TensorRT kept no timing cache; %s is not updated", timing_cache)
        else:
            write_atomic(timing_cache, memoryview(final.serialize()))
    return Path(output)


def _use_timing_cache(config: Any, timing_cache: Path | None) -> None:
    """Attach the saved timing cache, or a fresh one when TensorRT refuses it:
    ``IBuilderConfig.set_timing_cache(cache, ignore_mismatch=False)`` returns False for a
    cache from another TensorRT version or GPU (a copied models folder, a driver update)."""
    blob = timing_cache.read_bytes() if timing_cache and timing_cache.exists() else b""
    # create_timing_cache(b"") → a fresh cache; None for a blob it cannot read (a damaged
    # file: TensorRT's samples check for it), which set_timing_cache would refuse (TypeError)
    cache = config.create_timing_cache(blob)
    if cache is not None and config.set_timing_cache(cache, ignore_mismatch=False):
        return
    if blob:
        why = "is damaged" if cache is None else "does not match this TensorRT version or GPU"
        log.warning("%s %s; building with a fresh timing cache (it replaces the old one)",
                    timing_cache, why)
        fresh = config.create_timing_cache(b"")
        if fresh is not None and config.set_timing_cache(fresh, ignore_mismatch=False):
            return
    log.warning("TensorRT refused a timing cache; building without one (slower)")


BATCH_CHOICE = "batch-choice.json"


def batch_choice(cache_dir: Path, onnx_path: Path) -> tuple[int, int] | None:
    """The (max, opt) batch ``export tensorrt`` was last asked for this ONNX file (by file
    name), or None: the live app builds and looks up the same profile."""
    path = Path(cache_dir) / BATCH_CHOICE
    try:
        choices = json.loads(path.read_text())
        max_batch, opt_batch = choices[Path(onnx_path).name]
        batch_profile({}, int(max_batch), int(opt_batch))  # a hand-edited bad entry: ignored
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return int(max_batch), int(opt_batch)


def record_batch_choice(cache_dir: Path, onnx_path: Path, max_batch: int, opt_batch: int) -> None:
    """Remember ``export tensorrt --max-batch/--opt-batch`` for ``batch_choice``."""
    path = Path(cache_dir) / BATCH_CHOICE
    try:
        choices = json.loads(path.read_text())
    except (OSError, ValueError):
        choices = {}
    if not isinstance(choices, dict):
        choices = {}
    choices[Path(onnx_path).name] = [int(max_batch), int(opt_batch)]
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(choices, indent=1, sort_keys=True).encode())


def build_lock(cache_dir: Path) -> Any:
    """The machine-wide build lock for ``cache_dir`` (a ``filelock.FileLock``)."""
    from filelock import FileLock

    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    return FileLock(str(Path(cache_dir) / "build.lock"))


def ensure_engine(onnx_path: Path, cache_dir: Path, *, precision: str = "fp16",
                  max_batch: int = 1, opt_batch: int = 1, progress: bool = True) -> Path:
    """The cached engine for this ONNX file, GPU, TensorRT version, precision, shapes and
    batch profile; built (minutes) when absent or when any of them changed. Builds hold
    ``build_lock``: one at a time, and whoever waited finds the engine already built.
    An unreadable or corrupt ONNX file and a failed write are ``EngineBuildError``s (an
    ``EngineError``: the registry then tries the next backend)."""
    from google.protobuf.message import DecodeError

    try:
        return _ensure_engine(onnx_path, cache_dir, precision=precision, max_batch=max_batch,
                              opt_batch=opt_batch, progress=progress)
    except (OSError, DecodeError) as exc:
        raise EngineBuildError(f"{onnx_path}: the TensorRT engine could not be made "
                               f"({type(exc).__name__}: {exc})") from exc


def _ensure_engine(onnx_path: Path, cache_dir: Path, *, precision: str, max_batch: int,
                   opt_batch: int, progress: bool) -> Path:
    trt = import_tensorrt()
    gpu = current_gpu()
    batch_profile({}, max_batch, opt_batch)  # a clear ValueError before minutes of work
    shapes = static_shapes(onnx_input_shapes(Path(onnx_path)), batch=max_batch)
    onnx_sha = sha256_file(Path(onnx_path))
    key = cache_key(onnx_sha256=onnx_sha, tensorrt_version=trt.__version__,
                    gpu_name=gpu.name, compute_capability=gpu.compute_capability,
                    precision=precision, shapes=shapes, batch_range=(1, opt_batch, max_batch))
    target = engine_file(cache_dir, key, f"{Path(onnx_path).stem}-{precision}")
    cached = _cached(target, onnx_sha)
    if cached is not None:
        return cached
    with build_lock(cache_dir):
        cached = _cached(target, onnx_sha)  # built while this one waited for the lock
        if cached is not None:
            return cached
        from engines.derived import write_stamp

        built = build_engine(onnx_path, target, precision=precision, max_batch=max_batch,
                             opt_batch=opt_batch,
                             timing_cache=timing_cache_file(cache_dir, trt.__version__, gpu),
                             progress=progress)
        write_stamp(built, onnx_sha)
    return built


def _cached(target: Path, onnx_sha: str) -> Path | None:
    """``target`` when it exists and its stamp matches; a changed one is removed."""
    from engines.derived import remove_derived, stamp_problem

    if not target.exists():
        return None
    problem = stamp_problem(target, onnx_sha)
    if problem is None:
        log.debug("TensorRT engine cache hit: %s", target)
        return target
    log.warning("rebuilding the TensorRT engine %s: %s", target, problem)
    remove_derived(target)
    return None
