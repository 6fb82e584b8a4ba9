"""Cited by docs/performance.md, "OpenVINO vs ONNX Runtime on the CPU".

ONNX Runtime CPU vs OpenVINO CPU, side by side in one run, same thread count.

    .venv/bin/python bench/bench_runtimes.py --models-dir DIR [--threads 2] [--repeats 5]

For each model whose ONNX file is in ``DIR`` (the SimSwap 224 generator, SimSwap's
ArcFace, the face parser, inswapper_128, w600k) plus the RetinaFace detector from its
wheel: open it on both runtimes with the same ``--threads``, feed the same input (real
face crops from package data where the model takes a face; the 1280×886 t1.jpg letterboxed
to 640 wide for the detector), warm up once, then alternate the two runtimes ``--repeats``
times and report the median ms per call, the speed ratio and the largest output
difference. Weights do not change the cost of a dense network: random-weight files time
the same as the released ones.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engines.base import Engine


def face_batch(size: int, mean_std: bool) -> np.ndarray:
    """The astronaut's face aligned to ``size`` (SimSwap template), [1, 3, S, S] RGB."""
    from skimage import data

    from realtime.faces.align import warp_face
    from realtime.faces.detect import make_detector

    image = np.ascontiguousarray(data.astronaut()[:, :, ::-1])
    detector = make_detector("retinaface", Path("/nonexistent"), engine="onnxruntime-cpu")
    face = max(detector.detect(image), key=lambda d: d.area)
    family = "simswap-512" if size == 512 else "simswap-224"
    crop = warp_face(image, face.landmarks, family).crop
    if size not in (224, 512):
        import cv2

        crop = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
    rgb = crop[:, :, ::-1].astype(np.float32) / np.float32(255.0)
    if mean_std:
        mean = np.array([0.485, 0.456, 0.406], np.float32)
        std = np.array([0.229, 0.224, 0.225], np.float32)
        rgb = ((rgb - mean) / std).astype(np.float32)
    return np.ascontiguousarray(rgb.transpose(2, 0, 1)[None])


def feeds_for(engine: Engine) -> dict[str, np.ndarray]:
    """A real input for each of the engine's inputs (faces, identity vectors, a photo)."""
    feeds: dict[str, np.ndarray] = {}
    rng = np.random.default_rng(0)
    for spec in engine.inputs:
        if len(spec.shape) == 2:
            vector = rng.normal(size=(1, int(spec.shape[1]))).astype(np.float32)
            feeds[spec.name] = vector / np.linalg.norm(vector)
            continue
        dims = [d if isinstance(d, int) and d > 0 else None for d in spec.shape]
        size = dims[2]
        if size is None:  # the detector: a letterboxed real photo
            import importlib.util

            import cv2

            found = importlib.util.find_spec("insightface")
            assert found is not None and found.origin is not None, "needs insightface"
            photo = cv2.imread(str(Path(found.origin).parent / "data" / "images" / "t1.jpg"))
            assert photo is not None
            small = cv2.resize(photo, (640, 443))
            pad = np.zeros((448, 640, 3), np.uint8)
            pad[:443] = small
            feeds[spec.name] = np.ascontiguousarray(
                (pad.astype(np.float32) - (104, 117, 123)).transpose(2, 0, 1)[None])
        else:
            feeds[spec.name] = face_batch(size, mean_std=size == 512 or size == 112)
        feeds[spec.name] = feeds[spec.name].astype(spec.dtype)
    return feeds


def time_pair(make: dict[str, Callable[[], Engine]], repeats: int) -> dict[str, object]:
    engines = {name: factory() for name, factory in make.items()}
    first = next(iter(engines.values()))
    feeds = feeds_for(first)
    outs = {name: e.run(feeds) for name, e in engines.items()}  # warm-up
    times: dict[str, list[float]] = {name: [] for name in engines}
    for _ in range(repeats):
        for name, engine in engines.items():  # alternate: both see the same machine load
            t0 = time.perf_counter()
            engine.run(feeds)
            times[name].append((time.perf_counter() - t0) * 1000.0)
    names = list(engines)
    a, b = (outs[n][first.outputs[0].name].astype(np.float32) for n in names[:2])
    for e in engines.values():
        e.close()
    medians = {n: statistics.median(t) for n, t in times.items()}
    return {"ms": medians, "all_ms": times, "ratio": medians[names[0]] / medians[names[1]],
            "max_abs_diff": float(np.abs(a - b).max())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--only", default=None, help="comma-separated model labels")
    args = parser.parse_args(argv)

    from engines.onnxruntime import OnnxRuntimeEngine
    from engines.openvino import OpenVinoEngine
    from realtime.faces.retinaface import embedded_onnx_path

    cache = args.models_dir / "engines"
    files = {
        "simswap-224 generator": args.models_dir / "simswap-224" / "simswap-224.onnx",
        "arcface (SimSwap)": args.models_dir / "arcface-simswap" / "arcface-simswap.onnx",
        "face parser (BiSeNet)": args.models_dir / "face-parsing" / "face-parsing.onnx",
        "inswapper-128": args.models_dir / "inswapper-128" / "inswapper_128.onnx",
        "arcface w600k": args.models_dir / "arcface-w600k" / "w600k_r50.onnx",
        "retinaface detector": embedded_onnx_path(cache),
    }
    wanted = None if args.only is None else set(args.only.split(","))
    results: dict[str, object] = {"threads": args.threads, "repeats": args.repeats}
    print(f"threads {args.threads}, median of {args.repeats} alternating runs (ms per call)")
    print(f"{'model':<24} {'ORT CPU':>9} {'OpenVINO':>9} {'OV speed-up':>11} {'max |diff|':>10}")
    for label, path in files.items():
        if (wanted and label not in wanted) or not path.is_file():
            continue

        def ort(path: Path = path) -> Engine:
            return OnnxRuntimeEngine(path, threads=args.threads)

        def ov(path: Path = path) -> Engine:
            return OpenVinoEngine(path, cache_dir=cache, threads=args.threads)

        row = time_pair({"onnxruntime-cpu": ort, "openvino": ov}, args.repeats)
        results[label] = row
        ms = row["ms"]
        assert isinstance(ms, dict)
        print(f"{label:<24} {ms['onnxruntime-cpu']:>9.1f} {ms['openvino']:>9.1f} "
              f"{row['ratio']:>10.2f}× {row['max_abs_diff']:>10.2e}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
