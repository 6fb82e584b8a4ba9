"""``swapcam selftest``: first contact with a machine, in a few minutes.

For each engine (``--engine``, default: every one ``engines.registry`` knows, the unusable
ones listed with their reason) it runs every model the app uses at batch 1 and 4 against
ONNX Runtime CPU in FP32 (``realtime.cli.selftest_models``: error and time), then the live
pipeline on the bench clip (``realtime.cli.bench.bench_size``, the same code as ``bench``) in
sync and async swap mode: fps in/out, drops, latency p95, host waits per frame per thread
(``realtime.cli.host_waits``; 0 on a CPU) and peak device memory (CUDA only). It prints a
table and, with ``--json OUT``, writes the report whose shape docs/selftest.md documents.
Exit status 1 when an output is flagged (NaN/Inf, or PSNR below ``MIN_PSNR_DB``) or a model
failed on a usable engine.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SWAP_MODES = ("sync", "async")
PIPELINE_THREADS = ("capture", "detect", "process", "swap", "output")
QUICK = {"seconds": 3.0, "warmup": 1.5, "repeats": 2}


def configure_parser(parser: argparse.ArgumentParser) -> None:
    from engines.registry import BACKENDS
    from realtime.cli.selftest_models import ROLES
    from realtime.config import MODEL_NAMES

    parser.add_argument("--engine", action="append", choices=BACKENDS, default=None,
                        help="an engine to check (repeatable; default: all, the unusable "
                        "ones listed with the reason)")
    parser.add_argument("--json", type=Path, default=None, metavar="OUT",
                        help="also write the report as JSON (docs/selftest.md)")
    parser.add_argument("--model", choices=MODEL_NAMES, default="simswap-224",
                        help="the swap model (generator and its encoder; default simswap-224)")
    parser.add_argument("--roles", default=",".join(ROLES),
                        help=f"models to check, comma-separated (default {','.join(ROLES)})")
    parser.add_argument("--repeats", type=int, default=10,
                        help="timed calls per model and batch (default 10)")
    parser.add_argument("--seconds", type=float, default=10.0,
                        help="live pipeline seconds per swap mode (default 10; 0 skips it)")
    parser.add_argument("--warmup", type=float, default=3.0,
                        help="pipeline seconds before measuring (default 3)")
    parser.add_argument("--size", default="640x480", help="pipeline frame size (default "
                        "640x480)")
    parser.add_argument("--quick", action="store_true",
                        help=f"CI and CPU: {QUICK['repeats']} timed calls, "
                        f"{QUICK['seconds']:g} s per mode after {QUICK['warmup']:g} s")


def _roles(text: str) -> tuple[str, ...]:
    from realtime.cli.selftest_models import ROLES

    roles = tuple(r.strip() for r in text.split(",") if r.strip())
    unknown = [r for r in roles if r not in ROLES]
    if unknown or not roles:
        raise ValueError(f"--roles: expected a comma-separated subset of {','.join(ROLES)}, "
                         f"got {text!r}")
    return roles


def run(args: argparse.Namespace) -> int:
    from realtime.cli.live import parse_size

    if args.quick:
        args.seconds, args.warmup, args.repeats = (QUICK["seconds"], QUICK["warmup"],
                                                   int(QUICK["repeats"]))
    if args.repeats < 1 or args.seconds < 0 or args.warmup < 0:
        raise ValueError(f"--repeats must be >= 1 and --seconds, --warmup >= 0, got "
                         f"{args.repeats}, {args.seconds}, {args.warmup}")
    roles = _roles(args.roles)
    size = parse_size(args.size)
    started = time.monotonic()
    report, notes = selftest(args, roles, size)
    report["machine"]["selftest_seconds"] = round(time.monotonic() - started, 1)
    print(format_report(report, notes))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    return 1 if failed(report) else 0


def selftest(args: argparse.Namespace, roles: tuple[str, ...],
             size: tuple[int, int]) -> tuple[dict[str, Any], list[str]]:
    from engines.registry import BACKENDS, backend_status
    from realtime.cli.bench import ensure_models, machine_info
    from realtime.cli.selftest_models import REFERENCE
    from realtime.config import default_cache_dir

    status = backend_status()
    if status[REFERENCE] is not None:
        raise ValueError(f"selftest compares with {REFERENCE}, which cannot run here: "
                         f"{status[REFERENCE]}")
    names = list(dict.fromkeys(args.engine or BACKENDS))
    cache_dir = default_cache_dir()
    notes: list[str] = []
    models_dir, note = ensure_models(args.model, Path(args.models_dir), cache_dir, "parsing")
    notes += [note] if note else []
    enhancer_dir = models_dir
    if "enhancer" in roles:
        from realtime.cli.selftest_models import ensure_enhancer

        enhancer_dir, note = ensure_enhancer(Path(args.models_dir), cache_dir)
        notes += [note] if note else []
    cases, references = _cases(roles, args.model, models_dir, enhancer_dir)
    engines = []
    expected: dict[tuple[str, int], Any] = {}  # the reference's outputs, kept across engines
    try:
        for name in names:
            reason = status.get(name)
            entry: dict[str, Any] = {"name": name, "usable": reason is None, "reason": reason,
                                     "models": []}
            if reason is None:
                entry["models"], errors = _check_engine(name, cases, references,
                                                        args.repeats, notes, expected)
                entry["reason"] = "; ".join(errors) or None
            engines.append(entry)
    finally:
        for engine in references.values():
            engine.close()
    pipeline = []
    if args.seconds > 0:
        for entry in engines:
            if entry["usable"]:
                pipeline += _pipeline_rows(entry, args, models_dir, cache_dir, size, notes)
    return {"engines": engines, "pipeline": pipeline,
            "machine": {**machine_info(), **_versions(),
                        "models": {"swap_model": args.model, "random_weights": bool(
                            models_dir != Path(args.models_dir)
                            or enhancer_dir != Path(args.models_dir))}}}, notes


def _cases(roles: tuple[str, ...], model: str, models_dir: Path,
           enhancer_dir: Path) -> tuple[list[Any], dict[Path, Any]]:
    """The model cases and their reference engines (ONNX Runtime CPU, FP32), by file."""
    from engines.registry import open_engine
    from realtime.cli import selftest_models as sm

    references: dict[Path, Any] = {}

    def reference(path: Path) -> Any:
        if path not in references:
            references[path] = open_engine(path, sm.REFERENCE, precision="fp32")
        return references[path]

    makers = {
        "generator": lambda: sm.generator_case(model, models_dir, reference),
        "encoder": lambda: sm.encoder_case(model, models_dir, reference),
        "detector": lambda: sm.detector_case(models_dir, reference),
        "parser": lambda: sm.parser_case(model, models_dir, reference),
        "enhancer": lambda: sm.enhancer_case(enhancer_dir, reference),
    }
    return [makers[role]() for role in roles], references


def _check_engine(name: str, cases: list[Any], references: dict[Path, Any], repeats: int,
                  notes: list[str], expected: dict[tuple[str, int], Any]
                  ) -> tuple[list[dict[str, Any]], list[str]]:
    from engines.registry import open_engine
    from realtime.cli.selftest_models import BATCHES, REFERENCE, check_model

    rows: list[dict[str, Any]] = []
    errors: list[str] = []
    for case in cases:
        reference = references[case.path]
        try:
            engine = reference if name == REFERENCE else open_engine(
                case.path, name, cache_dir=case.path.parent.parent / "engines")
        except Exception as exc:  # a usable backend that cannot open this model: reported
            errors.append(f"{case.role} {case.model}: {type(exc).__name__}: {exc}")
            continue
        try:
            for batch in BATCHES:
                if batch > case.max_batch:
                    notes.append(f"{name}: {case.model} takes a fixed batch of "
                                 f"{case.max_batch}; batch {batch} skipped")
                    continue
                try:
                    rows.append(check_model(case, engine, reference, batch, repeats, expected))
                except Exception as exc:
                    errors.append(f"{case.role} {case.model} batch {batch}: "
                                  f"{type(exc).__name__}: {exc}")
        finally:
            if engine is not reference:
                engine.close()
    return rows, errors


def _pipeline_rows(entry: dict[str, Any], args: argparse.Namespace, models_dir: Path,
                   cache_dir: Path, size: tuple[int, int], notes: list[str]
                   ) -> list[dict[str, Any]]:
    """The live pipeline on the bench clip with this engine, sync then async."""
    from realtime.cli.bench import _source_photo, bench_size
    from realtime.cli.host_waits import HostWaits
    from realtime.config import Settings
    from realtime.session import build_parts

    settings = Settings(models_dir=str(models_dir), model=args.model, engine=entry["name"],
                        mask="box", quality_meter=False, texture="auto")
    try:
        parts = build_parts(settings, models_dir, source_paths=[_source_photo(cache_dir)],
                            cache_dir=cache_dir)
    except Exception as exc:
        entry["reason"] = "; ".join(filter(None, [entry["reason"], f"pipeline: {exc}"]))
        return []
    rows = []
    try:
        for mode in SWAP_MODES:
            waits = HostWaits()
            peak = _DevicePeak()

            def measuring(waits: HostWaits = waits, peak: _DevicePeak = peak) -> None:
                waits.reset()
                peak.reset()

            with waits:
                result = bench_size(parts, settings.with_changes(swap_mode=mode), *size,
                                    seconds=args.seconds, warmup=args.warmup, fps=30.0,
                                    paced=True, clip_faces=3, meter=False,
                                    on_measure=measuring)
            frames = round(result["fps_processed"] * result["seconds"])
            rows.append({"engine": entry["name"], "swap_mode": mode,
                         "fps_in": round(result["fps_in"], 2),
                         "fps_out": round(result["fps_out"], 2),
                         "drops": result["drops"],
                         # None when no frame came out in the measured seconds
                         "latency_p95_ms": round(result["latency_ms"]["p95"], 1)
                         if result["fps_out"] > 0 else None,
                         "host_waits_per_frame": waits.per_frame(PIPELINE_THREADS, frames),
                         "device_peak_mb": peak.read()})
            if result["swap_mode"] != mode:
                notes.append(f"{entry['name']}: asked for {mode} swaps, ran "
                             f"{result['swap_mode']}")
    finally:
        close = getattr(parts.processor.swapper, "close", None)
        if close is not None:
            close()
    return rows


class _DevicePeak:
    """Peak CUDA memory allocated through torch since ``reset`` (MB), None without CUDA."""

    def __init__(self) -> None:
        try:
            import torch

            self._cuda = bool(torch.cuda.is_available())
        except ImportError:
            self._cuda = False

    def reset(self) -> None:
        if self._cuda:
            import torch

            torch.cuda.reset_peak_memory_stats()

    def read(self) -> float | None:
        if not self._cuda:
            return None
        import torch

        return round(torch.cuda.max_memory_allocated() / 2**20, 1)


def _versions() -> dict[str, Any]:
    """Runtime versions and the GPU, for bug reports."""
    import importlib.metadata as metadata

    info: dict[str, Any] = {}
    for package in ("torch", "onnxruntime", "onnxruntime-gpu", "onnxruntime-directml",
                    "openvino", "tensorrt", "tensorrt-cu12", "tensorrt-cu13", "cuda-python"):
        try:
            info[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    try:
        import torch

        if torch.cuda.is_available():
            props = torch.cuda.get_device_properties(0)
            info["gpu"] = {"name": props.name, "capability": f"{props.major}.{props.minor}",
                           "memory_mb": round(props.total_memory / 2**20),
                           "cuda": torch.version.cuda}
        else:
            info["gpu"] = None
    except ImportError:
        info["gpu"] = None
    return info


def failed(report: dict[str, Any]) -> bool:
    from realtime.cli.selftest_models import mismatch

    return any(entry["usable"] and (entry["reason"] or any(mismatch(r) for r in
                                                           entry["models"]))
               for entry in report["engines"])


def _num(value: float | None, spec: str, none: str) -> str:
    return none if value is None else format(value, spec)


def format_report(report: dict[str, Any], notes: list[str]) -> str:
    from realtime.cli.selftest_models import MIN_PSNR_DB, mismatch

    lines = [f"{'engine':<22} {'model':<18} {'batch':>5} {'max abs':>10} {'PSNR dB':>8} "
             f"{'ms p50':>9} {'p95':>9}"]
    lines.append("-" * len(lines[0]))
    for entry in report["engines"]:
        if not entry["usable"]:
            lines.append(f"{entry['name']:<22} not usable: {entry['reason']}")
            continue
        for row in entry["models"]:
            flag = f"  MISMATCH (< {MIN_PSNR_DB:g} dB or NaN/Inf)" if mismatch(row) else ""
            lines.append(f"{entry['name']:<22} {row['model']:<18} {row['batch']:>5} "
                         f"{_num(row['max_abs'], '10.3g', 'NaN/Inf'):>10} "
                         f"{_num(row['psnr_db'], '8.1f', 'exact'):>8} "
                         f"{row['ms_p50']:>9.1f} {row['ms_p95']:>9.1f}{flag}")
        if entry["reason"]:
            lines.append(f"{entry['name']:<22} FAILED: {entry['reason']}")
    if report["pipeline"]:
        lines += ["", f"{'engine':<22} {'mode':<6} {'fps in':>6} {'out':>6} {'drops':>6} "
                  f"{'lat p95':>8} {'peak MB':>8}  host waits/frame"]
        for row in report["pipeline"]:
            waits = " ".join(f"{k} {v:g}" for k, v in row["host_waits_per_frame"].items())
            lines.append(f"{row['engine']:<22} {row['swap_mode']:<6} {row['fps_in']:>6.1f} "
                         f"{row['fps_out']:>6.1f} {sum(row['drops'].values()):>6} "
                         f"{_num(row['latency_p95_ms'], '8.0f', '-'):>8} "
                         f"{_num(row['device_peak_mb'], '8.0f', '-'):>8}  {waits}")
    gpu = report["machine"].get("gpu")
    lines += ["", f"machine: {report['machine'].get('platform')}, "
              f"{report['machine'].get('cpus')} CPUs, GPU: "
              f"{gpu['name'] if gpu else 'none (CUDA not available)'}"]
    lines += [f"note: {n}" for n in notes]
    return "\n".join(lines)
