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
CPU time per frame (``time.process_time``). Each probe makes ``--passes`` such passes and
keeps its fastest (the pass least disturbed by the other work on the machine); the
figure is the median of the rounds.

With ``--latency SIZE`` this tree alone is also run paced at 30 fps on the 3-face clip,
the largest face, then all three, swapped asynchronously by the passthrough generator
slowed to 2 s a call (a CPU-like refresh), with the static and the flow texture in
interleaved rounds: the flow texture's added end-to-end latency (p50, p95; median of the rounds).

Run: ``git archive 92d83ed | tar -x -C /tmp/base`` then
``python -m bench.frame_path_vs_base /tmp/base --rounds 3 --latency 1280x720``.
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
best = float("inf")
for p in range(int(sys.argv[3])):
    t0 = time.process_time()
    run(150, 30 + 150 * p)
    best = min(best, (time.process_time() - t0) / 150 * 1000)
print(best)
"""


def cpu_per_frame(tree: Path, size: str, models_dir: Path, passes: int) -> float:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run([sys.executable, "-c", CPU_PROBE, size, str(models_dir), str(passes)],
                          cwd=tree,
                          env=env, check=True, capture_output=True, text=True)
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base", type=Path, help="an exported copy of the base commit")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--sizes", default="640x480,1280x720,1920x1080")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--passes", type=int, default=3,
                        help="passes of 150 frames per CPU probe; the fastest is kept")
    parser.add_argument("--fps-only", action="store_true",
                        help="skip the CPU probes: only the unpaced fps, for many rounds")
    parser.add_argument("--latency", default="",
                        help="a size (e.g. 1280x720): also measure the flow texture's "
                             "added latency on this tree at that size")
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
            for size in ([] if args.fps_only else args.sizes.split(",")):
                ms = cpu_per_frame(trees[name], size, models_dir, args.passes)
                cpu[name].setdefault(size, []).append(ms)
                print(f"round {r + 1} {name}: {size} process thread {ms:.2f} CPU ms/frame",
                      flush=True)
    print(f"\n{started}; {platform.processor() or platform.machine()}, {os.cpu_count()} "
          f"cores, load average {os.getloadavg()[0]:.1f} at the end; {args.rounds} rounds, "
          f"{args.warmup:g} s warm-up + {args.seconds:g} s per size")
    print(f"{'size':>10} {'base fps':>9} {'this fps':>9} {'ratio':>6} "
          + ("" if args.fps_only else f"{'base CPU ms':>11} {'this CPU ms':>11} {'ratio':>6}"))
    for size in fps["base"]:
        base = statistics.median(fps["base"][size])
        this = statistics.median(fps["this"][size])
        if args.fps_only:
            wins = sum(t > b for t, b in zip(fps["this"][size], fps["base"][size], strict=True))
            print(f"{size:>10} {base:>9.1f} {this:>9.1f} {this / base:>6.2f}   this tree "
                  f"faster in {wins} of {args.rounds} rounds")
            continue
        base_ms = statistics.median(cpu["base"][size])
        this_ms = statistics.median(cpu["this"][size])
        print(f"{size:>10} {base:>9.1f} {this:>9.1f} {this / base:>6.2f} "
              f"{base_ms:>11.2f} {this_ms:>11.2f} {base_ms / this_ms:>6.2f}")
    print("ratio: this ÷ base for fps; base ÷ this for CPU ms (above 1: this is faster)")
    if args.latency:
        flow_latency(args.latency, args.rounds, args.seconds, args.warmup, models_dir)


# Runs inside this tree: the real pipeline, paced at 30 fps on the 3-face clip, the faces
# asked for (largest | all) swapped asynchronously by the passthrough generator slowed
# to 2 s a call (a CPU-like refresh of 0.5 a second), with the texture mode given;
# prints the latency figures.
LATENCY_PROBE = """
import json, sys, tempfile
from dataclasses import replace
from pathlib import Path
from realtime.cli.bench import bench_size
from realtime.cli.motion_bench import PacedSwapper
from realtime.config import Settings
from realtime.frame.process import FrameProcessor
from realtime.session import build_parts
w, h = (int(v) for v in sys.argv[1].split("x"))
settings = Settings(model="passthrough", faces=sys.argv[6], swap_mode="async", texture=sys.argv[3],
                    quality_meter=False)
parts = build_parts(settings, Path(sys.argv[2]), source_paths=[],
                    cache_dir=Path(tempfile.mkdtemp()))
slow = FrameProcessor(PacedSwapper(parts.processor.swapper, 2.0), None, settings)
parts = replace(parts, processor=slow)
got = bench_size(parts, settings, w, h, seconds=float(sys.argv[4]), warmup=float(sys.argv[5]),
                 fps=30.0, paced=True, clip_faces=3, meter=False)
print(json.dumps({**got["latency_ms"], "texture_ms": got["stages_ms"]["texture"]["p50"],
                  "fps_out": got["fps_out"]}))
"""


def flow_latency(size: str, rounds: int, seconds: float, warmup: float,
                 models_dir: Path) -> None:
    for faces in ("largest", "all"):
        faces_latency(size, faces, rounds, seconds, warmup, models_dir)


def faces_latency(size: str, faces: str, rounds: int, seconds: float, warmup: float,
                  models_dir: Path) -> None:
    """This tree's end-to-end latency with the static and the flow texture."""
    got: dict[str, dict[str, list[float]]] = {"static": {}, "flow": {}}
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for r in range(rounds):
        for texture in (("static", "flow") if r % 2 == 0 else ("flow", "static")):
            # the warm-up covers the first texture of all three faces (2 s a swap)
            done = subprocess.run([sys.executable, "-c", LATENCY_PROBE, size, str(models_dir),
                                   texture, str(seconds), str(max(warmup, 7.0)), faces],
                                  cwd=ROOT,
                                  env=env, check=True, capture_output=True, text=True)
            figures = json.loads(done.stdout.strip().splitlines()[-1])
            for key in ("p50", "p95", "texture_ms", "fps_out"):
                got[texture].setdefault(key, []).append(float(figures[key]))
            print(f"round {r + 1} faces {faces}, texture {texture}: "
                  f"latency p50 {figures['p50']:.1f} p95 {figures['p95']:.1f} ms, "
                  f"texture stage p50 {figures['texture_ms']:.2f} ms, "
                  f"{figures['fps_out']:.1f} fps", flush=True)
    for key in ("p50", "p95", "texture_ms", "fps_out"):
        static = statistics.median(got["static"][key])
        flow = statistics.median(got["flow"][key])
        print(f"{size}, faces {faces}, {key}: static {static:.2f}, flow {flow:.2f}, "
              f"added {flow - static:+.2f}")


if __name__ == "__main__":
    main()
