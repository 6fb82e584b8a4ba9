"""Cited by docs/performance.md, "Live landmark jitter".

Live landmark jitter on a still noisy frame: detector + tracker combinations.

Method: one still photo, letterboxed into a 1280×720 frame, with fresh Gaussian noise
(σ = 8 grey levels) drawn for every frame, fed to ``FaceTracker`` at 30 fps timestamps
the way the live loop does it (detection on the frame whenever ``needs_detection()`` says
so: every ``--detect-every`` frames; between detections either optical flow, today's
tracker, or FaceMesh run on each frame inside the tracked box). After ``--warmup`` frames,
jitter = per point the RMS distance to its mean position over the measured frames,
averaged over the five points and the faces, divided by the face's inter-ocular distance;
reported for the raw landmarks and for the One Euro-smoothed ones the swap uses. Cost: ms
per frame of the between-detections step (flow, or flow + mesh) and of a detection,
medians.

Run from the repository root: ``python -m bench.bench_track_jitter [--mesh
face_landmark.tflite] [--frames 150] [--photo t1|tom_hanks|astronaut|grace_hopper]``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from realtime.faces import detect_eval
from realtime.faces.track import FaceTracker
from realtime.types import Detection

Detect = Callable[[np.ndarray], list[Detection]]
Refine = Callable[[np.ndarray, list[Detection]], list[Detection]]


def run(detect: Detect, frames: list[np.ndarray], *, detect_every: int, warmup: int,
        mesh: Refine | None = None) -> dict[str, float]:
    """Feed ``frames`` through a tracker; returns jitter (raw, smoothed) and costs."""
    tracker = FaceTracker(detect_every=detect_every, landmarker=mesh)
    raw: dict[int, list[np.ndarray]] = {}
    smooth: dict[int, list[np.ndarray]] = {}
    step_ms: list[float] = []
    detect_ms: list[float] = []
    for i, frame in enumerate(frames):
        dets = None
        if tracker.needs_detection():
            t0 = time.perf_counter()
            dets = detect(frame)
            detect_ms.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        faces = tracker.update(frame, i / 30.0, dets)
        if dets is None:
            step_ms.append((time.perf_counter() - t0) * 1000)
        if i < warmup:
            continue
        for track in tracker.tracks:
            if track.lost:
                continue
            raw.setdefault(track.track_id, []).append(track.landmarks.copy())
        for face in faces:
            smooth.setdefault(face.track_id, []).append(
                face.detection.landmarks.astype(np.float64))
    return {"jitter_raw": _jitter(raw), "jitter_smoothed": _jitter(smooth),
            "tracks": float(len(smooth)),
            "step_ms": statistics.median(step_ms) if step_ms else float("nan"),
            "detect_ms": statistics.median(detect_ms) if detect_ms else float("nan")}


def _jitter(history: dict[int, list[np.ndarray]]) -> float:
    values = []
    for points in history.values():
        if len(points) < 10:
            continue
        stack = np.stack(points)                       # (T, 5, 2)
        mean = stack.mean(axis=0)
        iod = float(np.linalg.norm(mean[0] - mean[1]))
        rms = np.sqrt(((stack - mean) ** 2).sum(axis=2).mean(axis=0))  # per point
        values.append(float(rms.mean()) / iod)
    return float(np.mean(values)) if values else float("nan")


def noisy_frames(photo: np.ndarray, count: int, sigma: float, seed: int = 0
                 ) -> list[np.ndarray]:
    frame = detect_eval.timing_frames(photo)[(1280, 720)].astype(np.float32)
    rng = np.random.default_rng(seed)
    return [np.clip(frame + rng.normal(0, sigma, frame.shape), 0, 255).astype(np.uint8)
            for _ in range(count)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--mesh", type=Path, default=None,
                        help="face_landmark.tflite (default: the models folder's face-mesh)")
    parser.add_argument("--models-dir", type=Path, default=None)
    parser.add_argument("--photo", default="t1")
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--warmup", type=int, default=15)
    parser.add_argument("--sigma", type=float, default=8.0)
    parser.add_argument("--detect-every", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    from realtime.config import default_models_dir
    from realtime.faces.mesh import MeshRefinedDetector

    cv2.setNumThreads(1)
    photos = detect_eval.package_photos()
    frames = noisy_frames(photos[args.photo], args.frames, args.sigma)
    with tempfile.TemporaryDirectory(prefix="bench_jitter_") as work:
        contenders = detect_eval.build_contenders(
            args.models_dir or default_models_dir(), threads=args.threads,
            mesh_tflite=args.mesh, work_dir=Path(work))
        combos: list[tuple[str, Detect, Refine | None]] = []
        for label, detect in contenders.detectors.items():
            if isinstance(detect, str):
                print(f"{label}: {detect}")
                continue
            combos.append((f"{label} + flow", detect, None))
            owner = getattr(detect, "__self__", None)
            if isinstance(owner, MeshRefinedDetector):
                combos.append((f"{label} + mesh between detections", detect,
                               owner.mesh.refine))
        print(f"still {args.photo} in 1280×720, fresh noise σ={args.sigma:g} per frame, "
              f"{args.frames} frames ({args.warmup} warm-up), detect every "
              f"{args.detect_every}; jitter = RMS point motion / inter-ocular distance")
        print("| tracking | faces | jitter raw | jitter smoothed | ms between detections "
              "| ms detection |")
        print("|---|---|---|---|---|---|")
        for label, detect, mesh in combos:
            r = run(detect, frames, detect_every=args.detect_every, warmup=args.warmup,
                    mesh=mesh)
            print(f"| {label} | {r['tracks']:.0f} | {r['jitter_raw']:.4f} | "
                  f"{r['jitter_smoothed']:.4f} | {r['step_ms']:.1f} | {r['detect_ms']:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
