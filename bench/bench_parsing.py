"""Cited by docs/performance.md, "Face parser per face".

The BiSeNet face parser's cost per face: ms on ONNX Runtime CPU and FLOPs.

    .venv/bin/python bench/bench_parsing.py [--threads 1] [--runs 20]

Method: the real architecture (export/parsing.py) with seeded random weights in the official
format (speed does not depend on the values), exported as the app exports it (``input``
[1,3,512,512] → ``logits``), run on ONNX Runtime's CPU provider with ``--threads`` intra-op
threads on a real face crop (the astronaut from scikit-image); 3 warm-up runs, then the
median and p90 of ``--runs`` timed runs of one face. FLOPs: torch's FLOP counter on the
torch module for one 512×512 face (multiply and add counted as 2, convolutions and the
matmul-like ops only; pools, BN-folded adds and resizes are a rounding error).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np


def parser_flops() -> int:
    """FLOPs of one 512×512 face through the parser (main head; aux heads are not run)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from export.parsing import INPUT_SIZE
    from export.random_models import make_parser

    model = make_parser(0)
    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode():
        model(torch.zeros(1, 3, INPUT_SIZE, INPUT_SIZE))
    return int(counter.get_total_flops())


def face_input() -> np.ndarray:
    from skimage import data

    from export.parsing import INPUT_SIZE, normalise

    crop = data.astronaut()[24:216, 132:324]
    index = (np.arange(INPUT_SIZE) * crop.shape[0]) // INPUT_SIZE
    return normalise(crop[index][:, index])


def time_onnxruntime(onnx_path: Path, threads: int, runs: int) -> list[float]:
    """Milliseconds of each timed run (after 3 warm-ups)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    feeds = {"input": face_input()}
    for _ in range(3):
        session.run(["logits"], feeds)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(["logits"], feeds)
        times.append((time.perf_counter() - start) * 1000.0)
    return times


def main(argv: list[str] | None = None) -> int:
    from export.onnx import export_onnx
    from export.random_models import write_parsing_checkpoint

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="ORT intra-op threads")
    parser.add_argument("--runs", type=int, default=20, help="timed runs (default 20)")
    parser.add_argument("--onnx", type=Path, default=None,
                        help="an exported parsing.onnx (default: export random weights)")
    args = parser.parse_args(argv)
    if args.threads < 1 or args.runs < 1:
        parser.error("--threads and --runs must be ≥ 1")
    flops = parser_flops()
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = args.onnx
        if onnx_path is None:
            weights = write_parsing_checkpoint(Path(tmp) / "79999_iter.pth", seed=0)
            onnx_path = Path(tmp) / "parsing.onnx"
            export_onnx("face-parsing", weights, onnx_path, progress=True)
        times = time_onnxruntime(onnx_path, args.threads, args.runs)
    p90 = float(np.percentile(times, 90))
    print(f"face-parsing (BiSeNet, 512×512): {flops / 1e9:.1f} GFLOPs per face "
          f"({flops / 2e9:.1f} G multiply-adds)")
    print(f"ONNX Runtime CPU, {args.threads} thread(s), {args.runs} runs: "
          f"median {statistics.median(times):.1f} ms per face, p90 {p90:.1f} ms, "
          f"min {min(times):.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
