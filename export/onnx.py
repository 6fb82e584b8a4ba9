"""torch checkpoints → ONNX, checked against torch on the same inputs.

Exports use the TorchScript-based exporter (``dynamo=False``) followed by onnxscript's
optimiser (constant folding): measured on the 224 generator with 2 cores, ~8 s + ~3 s,
against ~27 s for the dynamo exporter, with the same operators in the end (one
``InstanceNormalization`` per instance norm, no ``ReduceMean``/``Pow`` arithmetic).
The dynamo exporter stays selectable (``exporter="dynamo"``) for when the TorchScript one
is removed from torch.

The batch dimension is dynamic (``batch``) so several faces can run in one call. The
file is written to a temporary name and renamed into place only after ONNX Runtime's
output matched torch's within ``tolerance``.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from engines.base import EngineError

if TYPE_CHECKING:
    import onnx
    import torch

log = logging.getLogger(__name__)

GENERATORS: dict[str, int] = {"simswap-224": 224, "simswap-512": 512}
ENCODER = "arcface-simswap"
PARSER = "face-parsing"
ENHANCER = "gfpgan-1.4"
EXPORTABLE: tuple[str, ...] = (*GENERATORS, ENCODER, PARSER, ENHANCER)
# Graph output names; "output" unless listed (the parser's interface names its logits).
OUTPUT_NAMES: dict[str, str] = {PARSER: "logits"}
OPSET = 17
Exporter = Literal["torchscript", "dynamo"]


class ExportMismatch(EngineError):
    """ONNX Runtime's output differs from torch's by more than the tolerance."""


@dataclass(frozen=True)
class ExportReport:
    model: str
    output: Path
    export_seconds: float  # torch → ONNX (incl. optimisation), not counting the check
    check_seconds: float
    max_abs_diff: float
    tolerance: float
    opset: int
    exporter: str
    ops: dict[str, int]  # operator histogram of the written graph

    def summary(self) -> str:
        return (f"{self.model} → {self.output}: exported in {self.export_seconds:.1f} s "
                f"({self.exporter}, opset {self.opset}); ONNX Runtime vs torch max abs diff "
                f"{self.max_abs_diff:.2e} (tolerance {self.tolerance:.0e}, checked in "
                f"{self.check_seconds:.1f} s)")


def _check_model_name(model: str) -> None:
    if model not in EXPORTABLE:
        raise ValueError(f"cannot export {model!r}: expected one of {', '.join(EXPORTABLE)}")


def load_torch_model(model: str, weights: Path) -> torch.nn.Module:
    """The torch module for ``model`` with ``weights`` loaded (eval, CPU)."""
    _check_model_name(model)
    if model == ENCODER:
        from export.arcface import load_arcface

        return load_arcface(weights)
    if model == PARSER:
        from export.parsing import load_parser

        return load_parser(weights)
    if model == ENHANCER:
        from export.gfpgan import load_enhancer

        return load_enhancer(weights)
    from export.simswap import load_generator

    return load_generator(weights, GENERATORS[model])


def example_inputs(model: str, batch: int = 1, seed: int = 0) -> dict[str, torch.Tensor]:
    """Seeded random inputs in each model's input range, keyed by ONNX input name."""
    import torch

    _check_model_name(model)
    gen = torch.Generator().manual_seed(seed)
    if model == ENCODER:
        # ImageNet-normalised pixels are roughly unit-variance.
        return {"input": torch.randn(batch, 3, 112, 112, generator=gen)}
    if model == PARSER:
        from export.parsing import INPUT_SIZE

        return {"input": torch.randn(batch, 3, INPUT_SIZE, INPUT_SIZE, generator=gen)}
    if model == ENHANCER:
        from export.gfpgan import OUT_SIZE

        return {"input": torch.rand(batch, 3, OUT_SIZE, OUT_SIZE, generator=gen) * 2 - 1}
    size = GENERATORS[model]
    source = torch.nn.functional.normalize(torch.randn(batch, 512, generator=gen), dim=1)
    return {"target": torch.rand(batch, 3, size, size, generator=gen), "source": source}


def output_name(model: str) -> str:
    """The name of ``model``'s (first) graph output."""
    return OUTPUT_NAMES.get(model, "output")


def _export_graph(module: torch.nn.Module, inputs: dict[str, torch.Tensor], path: Path,
                  exporter: Exporter, output: str = "output") -> None:
    import torch

    names = list(inputs)
    args = tuple(inputs.values())
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated and chatty; the result is checked below.
        warnings.simplefilter("ignore")
        if exporter == "torchscript":
            axes = {name: {0: "batch"} for name in [*names, output]}
            torch.onnx.export(module, args, str(path), input_names=names,
                              output_names=[output], opset_version=OPSET,
                              dynamo=False, dynamic_axes=axes, do_constant_folding=True)
            return
        from torch.export import Dim

        batch = Dim("batch", min=1, max=64)
        program = torch.onnx.export(module, args, None, input_names=names,
                                    output_names=[output], opset_version=max(OPSET, 18),
                                    dynamo=True, external_data=False, verbose=False,
                                    dynamic_shapes={n: {0: batch} for n in names})
        assert program is not None  # dynamo=True always returns the program
        program.save(str(path), external_data=False)


def _optimise(path: Path) -> onnx.ModelProto:
    import onnx
    import onnxscript.optimizer

    model = onnx.load(str(path))
    # The optimiser logs every node it looks at (hundreds of INFO lines): keep it quiet.
    loggers = [logging.getLogger(name) for name in ("onnxscript", "onnx_ir")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        # Folds the constant subgraphs the TorchScript exporter leaves around Pad/Reshape.
        optimised = onnxscript.optimizer.optimize(model)
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
    _declare_static_output_dims(optimised)
    onnx.save(optimised, str(path))
    return optimised


def _declare_static_output_dims(model: onnx.ModelProto) -> None:
    """Replace symbolic non-batch output dims with the sizes shape inference proves.

    A Resize whose sizes are ``Concat(Shape(x)[:2], constants)`` leaves the exporter naming
    every output dim (``Resizelogits_dim_1``...) although only the batch varies; consumers
    (and TensorRT profiles) want the real ``[batch, 19, 512, 512]``.
    """
    import onnx

    probe = onnx.ModelProto.FromString(model.SerializeToString())
    for out in probe.graph.output:
        out.type.tensor_type.ClearField("shape")
    inferred = onnx.shape_inference.infer_shapes(probe, data_prop=True)
    proven = {o.name: o.type.tensor_type.shape.dim for o in inferred.graph.output}
    for out in model.graph.output:
        dims = out.type.tensor_type.shape.dim
        known = proven.get(out.name)
        if known is None or len(known) != len(dims):
            continue
        for index in range(1, len(dims)):  # dim 0 is the dynamic batch
            if dims[index].dim_param and known[index].HasField("dim_value"):
                dims[index].dim_value = known[index].dim_value


def _max_abs_diff(path: Path, module: torch.nn.Module, inputs: dict[str, torch.Tensor],
                  output: str = "output") -> float:
    import onnxruntime as ort
    import torch

    with torch.inference_mode():
        expected = module(*inputs.values()).numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run([output], {k: v.numpy() for k, v in inputs.items()})[0]
    if got.shape != expected.shape:
        raise ExportMismatch(f"{path}: ONNX output shape {got.shape}, torch {expected.shape}")
    # NaN or inf anywhere (in either output) fails the check: a NaN-skipping maximum
    # would pass a graph that produces NaN pixels.
    for who, values in (("ONNX Runtime", got), ("torch", expected)):
        bad = int(np.count_nonzero(~np.isfinite(values)))
        if bad:
            raise ExportMismatch(f"{path}: the {who} output holds {bad} NaN/inf values")
    return float(np.max(np.abs(np.asarray(got, dtype=np.float64)
                               - expected.astype(np.float64))))


class _Stages:
    """tqdm on the terminal plus an optional ``on_stage(done, total, what)`` callback."""

    def __init__(self, bar: Any, on_stage: Callable[[int, int, str], None] | None) -> None:
        self.bar, self.on_stage, self.done, self.what = bar, on_stage, 0, ""

    def set_postfix_str(self, what: str) -> None:
        self.what = what
        self.bar.set_postfix_str(what)
        if self.on_stage is not None:
            self.on_stage(self.done, self.bar.total, what)

    def update(self) -> None:
        self.done += 1
        self.bar.update()
        if self.on_stage is not None:
            self.on_stage(self.done, self.bar.total, self.what)

    def close(self) -> None:
        self.bar.close()


def export_onnx(model: str, weights: Path, output: Path, *, progress: bool = True,
                tolerance: float = 1e-4, exporter: Exporter = "torchscript",
                on_stage: Callable[[int, int, str], None] | None = None) -> ExportReport:
    """Export ``model`` (simswap-224 / simswap-512 / arcface-simswap / face-parsing) from
    ``weights`` to
    ``output``; raise ``ExportMismatch`` when ONNX Runtime and torch disagree by more than
    ``tolerance`` (max absolute difference) on the same random inputs."""
    from tqdm import tqdm

    _check_model_name(model)
    weights, output = Path(weights), Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.{os.getpid()}.tmp")
    bar = tqdm(total=4, desc=f"export {model}", unit="stage", disable=not progress,
               file=sys.stderr)
    stages = _Stages(bar, on_stage)
    try:
        stages.set_postfix_str("loading weights")
        module = load_torch_model(model, weights).eval()
        inputs = example_inputs(model)
        stages.update()
        start = time.perf_counter()
        stages.set_postfix_str(f"torch → ONNX ({exporter})")
        _export_graph(module, inputs, tmp, exporter, output_name(model))
        stages.update()
        stages.set_postfix_str("optimising graph")
        graph = _optimise(tmp)
        export_seconds = time.perf_counter() - start
        stages.update()
        stages.set_postfix_str("ONNX Runtime vs torch")
        start = time.perf_counter()
        diff = _max_abs_diff(tmp, module, inputs, output_name(model))
        check_seconds = time.perf_counter() - start
        stages.update()
        if not diff <= tolerance:
            raise ExportMismatch(f"{model}: ONNX Runtime and torch differ by {diff:.3e} "
                                 f"(max abs), expected at most {tolerance:.0e}; "
                                 f"{output} was not written")
        os.replace(tmp, output)
    finally:
        stages.close()
        tmp.unlink(missing_ok=True)
    report = ExportReport(
        model=model, output=output, export_seconds=export_seconds,
        check_seconds=check_seconds, max_abs_diff=diff, tolerance=tolerance,
        opset=next((o.version for o in graph.opset_import if o.domain in ("", "ai.onnx")),
                   OPSET),
        exporter=exporter, ops=dict(Counter(node.op_type for node in graph.graph.node)),
    )
    log.info("%s", report.summary())
    return report


def onnx_path_for(models_dir: Path, name: str) -> Path:
    """Where the exported ONNX of a torch-checkpoint model lives."""
    return Path(models_dir) / name / f"{name}.onnx"


StageCallback = Callable[[int, int, str], None]


def ensure_onnx(models_dir: Path, name: str, *, on_stage: StageCallback | None = None) -> Path:
    """The ONNX file to run ``name`` from.

    For the torch checkpoints (simswap-224/512, arcface-simswap, face-parsing):
    ``<models_dir>/<name>/<name>.onnx``, exported from the verified checkpoint when it is
    missing or its stamp (engines.derived) does not match the checkpoint's sha256 and its
    own bytes. ``on_stage(done, total, what)`` follows an export (the window's progress
    bar). ONNX-native models: their verified file. Raises ``ModelMissing`` (with the
    commands to install) when the checkpoint is absent or corrupt.
    """
    from engines.derived import stamp_problem, write_stamp
    from engines.models import recorded_sha256, require_model

    weights = require_model(models_dir, name)
    if name not in EXPORTABLE:
        return weights
    path = onnx_path_for(models_dir, name)
    source_sha = recorded_sha256(models_dir, name)
    problem = stamp_problem(path, source_sha)
    if problem is None:
        return path
    if path.exists():
        log.warning("re-exporting %s: %s", path, problem)
    log.info("exporting %s to %s (once; takes tens of seconds)", name, path)
    interactive = sys.stderr is not None and sys.stderr.isatty()
    export_onnx(name, weights, path, progress=interactive, on_stage=on_stage)
    write_stamp(path, source_sha, source=str(weights))
    return path
