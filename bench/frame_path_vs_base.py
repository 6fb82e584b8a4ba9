"""Cited by docs/stability.md, "Per-frame speed against 92d83ed".

The per-frame path's speed against an older commit, side by side in one run.

Method: ``swapcam bench --model passthrough --unpaced`` (the real pipeline on the bench
clip, no model cost, frames made as fast as the pipeline takes them) on this tree and on
an exported copy of the base commit, with the same interpreter and venv, in interleaved
rounds (A B, then B A, ...), so a change of the machine's load hits both alike. Each
tree runs from its own folder with ``PYTHONPATH`` set to it. The figure is fps out per
size; the ratio is this tree's median over the base's median.

On a loaded machine the fps of threads that wait on each other swing widely from run to
run, so a second figure is taken in the same rounds: the process thread's own work per
frame, with no other thread running — ``Pipeline._process`` called in a loop on 150
pre-rendered clip frames (detection in line every 5th frame, one ONNX Runtime thread),
CPU time per frame (``time.process_time``; median of the rounds).

Run: ``git archive 92d83ed | tar -x -C /tmp/base`` then
``python -m bench.frame_path_vs_base /tmp/base --rounds 2``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_tree(tree: Path, sizes: str, seconds: float, warmup: float,
             models_dir: Path) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.json"
        env = {**os.environ, "PYTHONPATH": str(tree)}
        subprocess.run([sys.executable, "main.py", "--models-dir", str(models_dir), "bench",
                        "--model", "passthrough", "--unpaced", "--sizes", sizes,
                        "--seconds", str(seconds), "--warmup", str(warmup),
                        "--json", str(out)], cwd=tree, env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        report = json.loads(out.read_text())
    return {r["size"]: float(r["fps_out"]) for r in report["results"]}


# Runs inside each tree (its own imports): CPU ms per frame of Pipeline._process.
CPU_PROBE = """
import sys, tempfile, time
from pathlib import Path
from realtime.config import Settings
from realtime.io.clip import ClipSource, SyntheticClip
from realtime.io.sinks import NullSink
from realtime.pipeline import Pipeline
from realtime.session import build_parts
from realtime.types import Frame
w, h = (int(v) for v in sys.argv[1].split("x"))
settings = Settings(model="passthrough", faces="largest", detect_every=5,
                    quality_meter=False, swap_mode="sync")
parts = build_parts(settings, Path(sys.argv[2]), source_paths=[],
                    cache_dir=Path(tempfile.mkdtemp()), threads=1)
clip = SyntheticClip(w, h, faces=3)
frames = [clip.render(i) for i in range(60)]
pipe = Pipeline(ClipSource(w, h), parts.processor, parts.detector, parts.sources,
                [NullSink()], settings, detect_in_worker=False)
def run(n, start):
    for i in range(start, start + n):
        pipe._process(Frame(i, time.monotonic_ns(), frames[i % len(frames)]))
run(30, 0)
t0 = time.process_time()
run(150, 30)
print((time.process_time() - t0) / 150 * 1000)
"""


def cpu_per_frame(tree: Path, size: str, models_dir: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run([sys.executable, "-c", CPU_PROBE, size, str(models_dir)], cwd=tree,
                          env=env, check=True, capture_output=True, text=True)
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base", type=Path, help="an exported copy of the base commit")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--sizes", default="640x480,1280x720,1920x1080")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    args = parser.parse_args()
    models_dir = Path(tempfile.mkdtemp())
    trees = {"base": args.base.resolve(), "this": ROOT}
    fps: dict[str, dict[str, list[float]]] = {name: {} for name in trees}
    cpu: dict[str, dict[str, list[float]]] = {name: {} for name in trees}
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    for r in range(args.rounds):
        order = list(trees) if r % 2 == 0 else list(reversed(trees))
        for name in order:
            got = run_tree(trees[name], args.sizes, args.seconds, args.warmup, models_dir)
            for size, value in got.items():
                fps[name].setdefault(size, []).append(value)
            print(f"round {r + 1} {name}: " + ", ".join(f"{s} {v:.1f}" for s, v in got.items()),
                  flush=True)
            for size in args.sizes.split(","):
                ms = cpu_per_frame(trees[name], size, models_dir)
                cpu[name].setdefault(size, []).append(ms)
                print(f"round {r + 1} {name}: {size} process thread {ms:.2f} CPU ms/frame",
                      flush=True)
    print(f"\n{started}; {platform.processor() or platform.machine()}, {os.cpu_count()} "
          f"cores, load average {os.getloadavg()[0]:.1f} at the end; {args.rounds} rounds, "
          f"{args.warmup:g} s warm-up + {args.seconds:g} s per size")
    print(f"{'size':>10} {'base fps':>9} {'this fps':>9} {'ratio':>6} "
          f"{'base CPU ms':>11} {'this CPU ms':>11} {'ratio':>6}")
    for size in fps["base"]:
        base = statistics.median(fps["base"][size])
        this = statistics.median(fps["this"][size])
        base_ms = statistics.median(cpu["base"][size])
        this_ms = statistics.median(cpu["this"][size])
        print(f"{size:>10} {base:>9.1f} {this:>9.1f} {this / base:>6.2f} "
              f"{base_ms:>11.2f} {this_ms:>11.2f} {base_ms / this_ms:>6.2f}")
    print("ratio: this ÷ base for fps; base ÷ this for CPU ms (above 1: this is faster)")


if __name__ == "__main__":
    main()
