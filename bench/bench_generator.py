"""Cited by docs/performance.md, "SimSwap 224 generator per face".

SimSwap 224 generator on the CPU: ONNX Runtime vs torch eager, per face, and export time.

Method: the real architecture (export/simswap.py) with seeded random weights, or
``--weights`` (speed does not depend on the values). The checkpoint is exported with
``export.onnx.export_onnx`` (the app's path: TorchScript exporter + onnxscript optimiser +
the ORT-vs-torch check), timed. Then each runtime gets the same [B,3,224,224] / [B,512]
inputs, ``--warmup`` untimed calls and ``--runs`` timed calls; the table gives the median
(and min/max) per face (call time / B). Threads: ``torch.set_num_threads(T)`` and ORT
``intra_op_num_threads=T``, ``inter_op_num_threads=1``, all graph optimisations.

    .venv/bin/python bench/bench_generator.py --threads 1 --runs 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import onnxruntime as ort
import torch

from export.onnx import Exporter, export_onnx
from export.random_models import write_simswap_checkpoint
from export.simswap import load_generator


@dataclass(frozen=True)
class Row:
    method: str
    median_ms: float
    min_ms: float
    max_ms: float


def time_calls(call: Callable[[], object], *, warmup: int, runs: int, batch: int) -> list[float]:
    """Milliseconds per face for each timed call."""
    for _ in range(warmup):
        call()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000.0 / batch)
    return times


def row(method: str, times: list[float]) -> Row:
    return Row(method, statistics.median(times), min(times), max(times))


def format_table(rows: list[Row], header: str) -> str:
    lines = [header, f"{'method':<38} {'ms/face median':>15} {'min':>9} {'max':>9}"]
    lines += [f"{r.method:<38} {r.median_ms:>15.1f} {r.min_ms:>9.1f} {r.max_ms:>9.1f}"
              for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--batch", type=int, default=1, help="faces per call")
    parser.add_argument("--weights", type=Path, default=None,
                        help="a real latest_net_G.pth (default: random weights)")
    parser.add_argument("--exporter", choices=("torchscript", "dynamo", "both"),
                        default="torchscript")
    parser.add_argument("--json", type=Path, default=None, help="also write results here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory(prefix="bench-generator-") as tmp:
        weights = args.weights or write_simswap_checkpoint(Path(tmp) / "latest_net_G.pth")
        exporters: list[Exporter] = (["torchscript", "dynamo"] if args.exporter == "both"
                                     else [args.exporter])
        exports = {}
        for exporter in exporters:
            path = Path(tmp) / f"g224-{exporter}.onnx"
            exports[exporter] = export_onnx("simswap-224", weights, path, progress=False,
                                            exporter=exporter)
        onnx_path = exports[exporters[0]].output

        rng = np.random.default_rng(0)
        target = rng.random((args.batch, 3, 224, 224), dtype=np.float32)
        source = rng.normal(size=(args.batch, 512)).astype(np.float32)
        source /= np.linalg.norm(source, axis=1, keepdims=True)

        model = load_generator(weights, 224)
        t_target, t_source = torch.from_numpy(target), torch.from_numpy(source)

        def run_torch() -> object:
            with torch.inference_mode():
                return model(t_target, t_source)

        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(str(onnx_path), options,
                                       providers=["CPUExecutionProvider"])

        def run_ort() -> object:
            return session.run(["output"], {"target": target, "source": source})

        timing = dict(warmup=args.warmup, runs=args.runs, batch=args.batch)
        rows = [row("torch eager (fp32)", time_calls(run_torch, **timing)),
                row("ONNX Runtime CPU (fp32)", time_calls(run_ort, **timing))]

    header = (f"SimSwap 224 generator, CPU, {args.threads} thread(s), batch {args.batch}, "
              f"median of {args.runs} runs after {args.warmup} warm-up; torch "
              f"{torch.__version__}, onnxruntime {ort.__version__}; "
              f"{'weights ' + str(args.weights) if args.weights else 'random weights'}")
    print(format_table(rows, header))
    print(f"speed-up ONNX Runtime vs torch: {rows[0].median_ms / rows[1].median_ms:.2f}×")
    for exporter, report in exports.items():
        print(f"export ({exporter} + optimiser): {report.export_seconds:.1f} s; "
              f"ORT-vs-torch check {report.check_seconds:.1f} s, max abs diff "
              f"{report.max_abs_diff:.2e}")
    if args.json:
        args.json.write_text(json.dumps({
            "threads": args.threads, "batch": args.batch, "runs": args.runs,
            "rows": [asdict(r) for r in rows],
            "exports": {k: {"seconds": v.export_seconds, "max_abs_diff": v.max_abs_diff}
                        for k, v in exports.items()},
        }, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
