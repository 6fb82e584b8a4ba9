"""Cited by docs/performance.md, "INT8 generator on the CPU".

Post-training INT8 SimSwap 224 generator on the CPU: speed and drift against FP32, one run.

    .venv/bin/python bench/bench_int8.py --models-dir DIR [--threads 2] [--repeats 3]

``DIR`` holds the simswap-224 ONNX export and SimSwap's ArcFace export (``models import`` +
first use, or ``export.random_models.populate_models_dir``). Steps:

1. Calibration and test faces from package data, aligned to the SimSwap 224 template with
   the RetinaFace detector from its wheel: t1.jpg's six faces calibrate; the astronaut and
   Grace Hopper (never seen in calibration) are measured. Identity vectors: the ArcFace
   export on each face (each target is swapped with another face's identity).
2. ONNX Runtime static quantisation (``quantize_static``: QDQ format, per-channel INT8
   weights, UINT8 activations, MinMax calibration on the six faces), after
   ``quant_pre_process`` (shape inference and graph optimisation).
3. FP32 and INT8 on the same thread count, alternating ``--repeats`` times, median ms per
   face; drift: PSNR of the INT8 output against the FP32 output (RGB in [0, 1]) and the
   cosine between the ArcFace vectors of the two outputs.

The decision rule of issue 21: offer ``--precision int8`` only at ≥ 1.5× the FP32 speed with
≥ 35 dB PSNR. Weights: whatever the folder holds (random weights time the same as the
released ones; their drift is only indicative).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _images() -> dict[str, np.ndarray]:
    import cv2
    from matplotlib import cbook
    from skimage import data

    spec = importlib.util.find_spec("insightface")
    assert spec is not None and spec.origin is not None, "needs insightface (package data)"
    t1 = cv2.imread(str(Path(spec.origin).parent / "data" / "images" / "t1.jpg"))
    grace = cv2.imread(str(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))
    assert t1 is not None and grace is not None
    return {"t1": t1, "astronaut": np.ascontiguousarray(data.astronaut()[:, :, ::-1]),
            "grace_hopper": grace}


def face_crops() -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(calibration crops: t1's faces, test crops: astronaut and Grace Hopper), BGR 224."""
    from realtime.faces.align import warp_face
    from realtime.faces.detect import make_detector

    images = _images()
    detector = make_detector("retinaface", Path("/nonexistent"), engine="onnxruntime-cpu",
                             detect_width=1280)
    calib = [warp_face(images["t1"], d.landmarks, "simswap-224").crop
             for d in detector.detect(images["t1"])]
    test = []
    for name in ("astronaut", "grace_hopper"):
        best = max(detector.detect(images[name]), key=lambda d: d.area)
        test.append(warp_face(images[name], best.landmarks, "simswap-224").crop)
    return calib, test


def to_target(crop: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(crop[:, :, ::-1].transpose(2, 0, 1)[None], np.float32) / 255.0


def arcface_input(rgb01: np.ndarray) -> np.ndarray:
    """[1,3,224,224] RGB in [0,1] → SimSwap's ArcFace input (every 2nd pixel, ImageNet)."""
    mean = np.array([0.485, 0.456, 0.406], np.float32).reshape(1, 3, 1, 1)
    std = np.array([0.229, 0.224, 0.225], np.float32).reshape(1, 3, 1, 1)
    return np.ascontiguousarray(((rgb01 - mean) / std)[:, :, ::2, ::2], np.float32)


def psnr(reference: np.ndarray, other: np.ndarray) -> float:
    mse = float(np.mean((reference.astype(np.float64) - other.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(1.0 / mse)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    import onnxruntime as ort
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from engines.onnxruntime import OnnxRuntimeEngine

    fp32_path = args.models_dir / "simswap-224" / "simswap-224.onnx"
    arc_path = args.models_dir / "arcface-simswap" / "arcface-simswap.onnx"
    arcface = OnnxRuntimeEngine(arc_path, threads=args.threads)
    arc_in = arcface.inputs[0].name
    arc_out = arcface.outputs[0].name

    def embed(rgb01: np.ndarray) -> np.ndarray:
        vector = np.asarray(arcface.run({arc_in: arcface_input(rgb01)})[arc_out]).reshape(-1)
        return (vector / np.linalg.norm(vector)).astype(np.float32)

    calib, test = face_crops()
    calib_targets = [to_target(c) for c in calib]
    calib_ids = [embed(t)[None] for t in calib_targets]
    test_targets = [to_target(c) for c in test]
    test_ids = [embed(t)[None] for t in test_targets]

    class Faces(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            # each face with the next face's identity: a swap, as in use
            pairs = zip(calib_targets, calib_ids[1:] + calib_ids[:1], strict=True)
            self._feeds = iter([{"target": t, "source": s} for t, s in pairs])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._feeds, None)

    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        int8_path = Path(tmp) / "simswap-224.int8.onnx"
        t0 = time.perf_counter()
        quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=True)
        quantize_static(str(pre), str(int8_path), Faces(), quant_format=QuantFormat.QDQ,
                        per_channel=True, weight_type=QuantType.QInt8,
                        activation_type=QuantType.QUInt8)
        quant_s = time.perf_counter() - t0
        engines = {"fp32": OnnxRuntimeEngine(fp32_path, threads=args.threads),
                   "int8": OnnxRuntimeEngine(int8_path, threads=args.threads)}
        outputs: dict[str, list[np.ndarray]] = {name: [] for name in engines}
        times: dict[str, list[float]] = {name: [] for name in engines}
        for target, source in zip(test_targets, test_ids[1:] + test_ids[:1], strict=True):
            feeds = {"target": target, "source": source}
            for name, engine in engines.items():
                outputs[name].append(np.asarray(engine.run(feeds)["output"]))  # warm-up too
            for _ in range(args.repeats):
                for name, engine in engines.items():
                    start = time.perf_counter()
                    engine.run(feeds)
                    times[name].append((time.perf_counter() - start) * 1000.0)
        size_mb = {"fp32": fp32_path.stat().st_size / 1e6, "int8": int8_path.stat().st_size / 1e6}
    ms = {name: statistics.median(t) for name, t in times.items()}
    psnrs = [psnr(a, b) for a, b in zip(outputs["fp32"], outputs["int8"], strict=True)]
    cosines = [float(embed(np.clip(a, 0, 1)) @ embed(np.clip(b, 0, 1)))
               for a, b in zip(outputs["fp32"], outputs["int8"], strict=True)]
    speedup = ms["fp32"] / ms["int8"]
    offer = bool(speedup >= 1.5 and min(psnrs) >= 35.0)
    report = {"threads": args.threads, "repeats": args.repeats, "ms": ms, "speedup": speedup,
              "psnr_db": psnrs, "arcface_cosine": cosines, "size_mb": size_mb,
              "quantise_s": quant_s, "providers": ort.get_available_providers(),
              "offer_int8": offer}
    print(f"threads {args.threads}; median of {args.repeats} alternating runs per test face")
    print(f"{'precision':<10} {'ms/face':>9} {'file MB':>8}")
    for name in ("fp32", "int8"):
        print(f"{name:<10} {ms[name]:>9.1f} {size_mb[name]:>8.1f}")
    print(f"INT8 speed-up {speedup:.2f}×; PSNR vs FP32 {', '.join(f'{p:.1f}' for p in psnrs)} dB; "
          f"ArcFace cosine(INT8 out, FP32 out) {', '.join(f'{c:.4f}' for c in cosines)}")
    print(f"offer --precision int8 (≥ 1.5× and ≥ 35 dB): {'yes' if offer else 'no'}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
