"""``swapcam export tensorrt --model NAME [--precision fp16|fp32] [--onnx PATH]``.

Builds (or finds in the cache) the TensorRT engine for a model's ONNX file. Needs an NVIDIA
GPU with TensorRT; elsewhere it fails with the reason and the install command.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from engines.tensorrt import MAX_BATCH, OPT_BATCH

MODEL_CHOICES = ("simswap-224", "simswap-512", "arcface-simswap", "inswapper-128",
                 "arcface-w600k", "scrfd-10g", "face-parsing", "gfpgan-1.4")


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, choices=MODEL_CHOICES,
                        help="which model's ONNX file to build the engine for")
    parser.add_argument("--precision", choices=("fp16", "fp32"), default="fp16",
                        help="fp16 keeps instance norm in FP32 (default fp16)")
    parser.add_argument("--onnx", type=Path, default=None,
                        help="ONNX file to use instead of the model's file in the models folder")
    parser.add_argument("--max-batch", type=int, default=MAX_BATCH,
                        help=f"faces per engine call: profile 1..N (default {MAX_BATCH}; "
                        "more faces run in chunks); the live app uses the same profile")
    parser.add_argument("--opt-batch", type=int, default=OPT_BATCH,
                        help=f"the face count TensorRT tunes for (default {OPT_BATCH})")
    parser.add_argument("--force", action="store_true", help="rebuild even if cached")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def _onnx_for(models_dir: Path, name: str) -> Path:
    """The model's ONNX: exported from its checkpoint when needed (export.onnx.ensure_onnx)."""
    try:
        from export.onnx import ensure_onnx
    except ModuleNotFoundError as exc:  # the exporter is not in this build: use a file there
        if exc.name != "export.onnx":
            raise
        from engines.models import require_model

        exported = Path(models_dir) / name / f"{name}.onnx"
        return exported if exported.exists() else require_model(models_dir, name)
    return ensure_onnx(models_dir, name)


def run(args: argparse.Namespace) -> int:
    from engines.base import EngineUnavailable
    from engines.tensorrt import BACKEND, unavailable_reason
    from export import tensorrt as trt_export

    reason = unavailable_reason()  # before any export: say at once why nothing can be built
    if reason is not None:
        raise EngineUnavailable(BACKEND, reason)
    models_dir = Path(args.models_dir)
    onnx_path = Path(args.onnx) if args.onnx is not None else _onnx_for(models_dir, args.model)
    if not onnx_path.is_file():
        raise FileNotFoundError(f"--onnx: expected an ONNX file, got {onnx_path}")
    if args.max_batch < 1:
        raise ValueError(f"--max-batch: expected ≥ 1, got {args.max_batch}")
    if not 1 <= args.opt_batch <= args.max_batch:
        raise ValueError(f"--opt-batch: expected 1..{args.max_batch}, got {args.opt_batch}")
    cache_dir = models_dir / "engines"
    # FP16 also builds its FP32 fallback now, so a NaN frame in a live session never
    # waits for a build (the runtime switches to it at once)
    precisions = ("fp16", "fp32") if args.precision == "fp16" else (args.precision,)
    if args.force:
        for precision in precisions:
            for old in cache_dir.glob(f"{onnx_path.stem}-{precision}-*.engine"):
                old.unlink()
    # the live app builds and looks up this profile from now on (engines.registry)
    trt_export.record_batch_choice(cache_dir, onnx_path, args.max_batch, args.opt_batch)
    for precision in precisions:
        engine = trt_export.ensure_engine(onnx_path, cache_dir, precision=precision,
                                          max_batch=args.max_batch, opt_batch=args.opt_batch,
                                          progress=not args.no_progress)
        role = " (fallback for NaN/Inf frames)" if precision != args.precision else ""
        print(f"{args.model} ({precision}{role}): {engine}")
    return 0
