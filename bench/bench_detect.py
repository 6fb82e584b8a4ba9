"""Face detectors side by side on a held-out set: recall, false positives, landmark error
(NME) overall and at ±40° tilt, and milliseconds per 640×360 and 1280×720 frame.

Held-out set: the real photos available offline (insightface's t1.jpg with six people and
its aligned Tom_Hanks crop on a grey canvas, scikit-image's astronaut, matplotlib's Grace
Hopper: 9 faces) × 10 variants: original, rotated ±20° and ±40° (canvas grown so no face
is cut), shrunk so faces are 40–60 px wide, lit from below (a vertical gain ramp),
Gaussian noise σ = 12, letterboxed into 640×360 and 1280×720.

Ground truth: faces and five points are taken once on each *original* photo and carried
through each variant's known transform. The points are the mean of two independent
detectors' points, dlib's 68-point model reduced to five and FaceMesh's (each detector is
therefore half of the reference; on originals each scores about half their disagreement).
Without dlib, FaceMesh's alone (and NME then favours the mesh: the table says so).
A detection matches a face when its box holds the face's two eyes and nose; unmatched
detections are false positives. NME = mean point error / inter-ocular distance.

Run from the repository root: ``python -m bench.bench_detect [--mesh face_landmark.tflite]
[--threads 2] [--repeats 10]``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

Detect = Callable[[np.ndarray], list]


@dataclass
class Sample:
    name: str
    variant: str
    image: np.ndarray
    points: list[np.ndarray]  # ground-truth five points per face


def _photos() -> dict[str, np.ndarray]:
    import insightface
    from matplotlib import cbook
    from skimage import data

    folder = Path(insightface.__file__).parent / "data" / "images"
    photos = {"t1": cv2.imread(str(folder / "t1.jpg"))}
    hanks = cv2.imread(str(folder / "Tom_Hanks_54745.png"))
    canvas = np.full((420, 420, 3), 120, np.uint8)
    canvas[100:324, 100:324] = cv2.resize(hanks, (224, 224), interpolation=cv2.INTER_CUBIC)
    photos["tom_hanks"] = canvas
    photos["astronaut"] = np.ascontiguousarray(data.astronaut()[:, :, ::-1])
    with cbook.get_sample_data("grace_hopper.jpg") as handle:
        buffer = np.frombuffer(handle.read(), np.uint8)
    photos["grace_hopper"] = cv2.imdecode(buffer, cv2.IMREAD_COLOR)
    return photos


def _rotate(image: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    h, w = image.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    cos, sin = abs(m[0, 0]), abs(m[0, 1])
    nw, nh = int(h * sin + w * cos), int(h * cos + w * sin)
    m[0, 2] += nw / 2 - w / 2
    m[1, 2] += nh / 2 - h / 2
    return cv2.warpAffine(image, m, (nw, nh), borderValue=(110, 110, 110)), m


def _scale(image: np.ndarray, factor: float, size: tuple[int, int] | None = None
           ) -> tuple[np.ndarray, np.ndarray]:
    h, w = image.shape[:2]
    small = cv2.resize(image, (max(1, round(w * factor)), max(1, round(h * factor))),
                       interpolation=cv2.INTER_AREA)
    m = np.array([[factor, 0, 0], [0, factor, 0]], np.float64)
    if size is None:
        return small, m
    cw, ch = size
    canvas = np.zeros((ch, cw, 3), np.uint8)
    x0, y0 = (cw - small.shape[1]) // 2, (ch - small.shape[0]) // 2
    canvas[y0:y0 + small.shape[0], x0:x0 + small.shape[1]] = small
    m[:, 2] = (x0, y0)
    return canvas, m


def variants(image: np.ndarray, iod: float) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Variant name → (image, 2×3 transform from the original's pixels)."""
    identity = np.array([[1, 0, 0], [0, 1, 0]], np.float64)
    rng = np.random.default_rng(12)
    h, w = image.shape[:2]
    out = {"original": (image, identity)}
    for angle in (20, -20, 40, -40):
        out[f"rot{angle:+d}"] = _rotate(image, angle)
    # a face's width is about 2.2 inter-ocular distances: aim at 50 px faces
    out["small"] = _scale(image, min(1.0, 50 / (2.2 * iod)))
    ramp = np.linspace(0.35, 1.25, h, dtype=np.float32)[:, None, None]
    out["light_below"] = (np.clip(image.astype(np.float32) * ramp, 0, 255).astype(np.uint8),
                          identity)
    noisy = image.astype(np.float32) + rng.normal(0, 12, image.shape)
    out["noise"] = (np.clip(noisy, 0, 255).astype(np.uint8), identity)
    for cw, ch in ((640, 360), (1280, 720)):
        out[f"letterbox{cw}"] = _scale(image, min(cw / w, ch / h), (cw, ch))
    return out


def reference_points(photos: dict[str, np.ndarray], mesh_detect: Detect,
                     dlib_detect: Detect | None) -> dict[str, list[np.ndarray]]:
    refs: dict[str, list[np.ndarray]] = {}
    for name, image in photos.items():
        found = [d.landmarks.astype(np.float64) for d in mesh_detect(image)]
        if dlib_detect is not None:
            others = [d.landmarks.astype(np.float64) for d in dlib_detect(image)]
            merged = []
            for pts in found:
                iod = np.linalg.norm(pts[0] - pts[1])
                near = [o for o in others if np.linalg.norm(o - pts, axis=1).mean() < 0.3 * iod]
                merged.append((pts + near[0]) / 2 if near else pts)
            found = merged
        refs[name] = found
    return refs


def build_set(photos: dict[str, np.ndarray], refs: dict[str, list[np.ndarray]]
              ) -> list[Sample]:
    samples = []
    for name, image in photos.items():
        iod = min(float(np.linalg.norm(p[0] - p[1])) for p in refs[name])
        for variant, (frame, m) in variants(image, iod).items():
            moved = [p @ m[:, :2].T + m[:, 2] for p in refs[name]]
            samples.append(Sample(name, variant, frame, moved))
    return samples


def _holds(box: np.ndarray, points: np.ndarray) -> bool:
    key = points[[0, 1, 2]]
    return bool(((key[:, 0] >= box[0]) & (key[:, 0] <= box[2])
                 & (key[:, 1] >= box[1]) & (key[:, 1] <= box[3])).all())


@dataclass
class Score:
    faces: int = 0
    found: int = 0
    false_pos: int = 0
    errors: list[float] | None = None
    tilt40: list[float] | None = None


def evaluate(detect: Detect, samples: list[Sample]) -> Score:
    score = Score(errors=[], tilt40=[])
    assert score.errors is not None and score.tilt40 is not None
    for sample in samples:
        dets = list(detect(sample.image))
        used: set[int] = set()
        for truth in sample.points:
            score.faces += 1
            match = next((i for i, d in enumerate(dets) if i not in used
                          and _holds(d.box, truth)), None)
            if match is None:
                continue
            used.add(match)
            score.found += 1
            iod = float(np.linalg.norm(truth[0] - truth[1]))
            nme = float(np.linalg.norm(dets[match].landmarks - truth, axis=1).mean()) / iod
            score.errors.append(nme)
            if sample.variant in ("rot+40", "rot-40"):
                score.tilt40.append(nme)
        score.false_pos += len(dets) - len(used)
    return score


def timing(detect: Detect, frame: np.ndarray, repeats: int) -> float:
    detect(frame)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        detect(frame)
        times.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mesh", type=Path, default=None,
                        help="face_landmark.tflite (default: the models folder's face-mesh)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args(argv)

    from engines.models import model_path
    from engines.onnxruntime import OnnxRuntimeEngine
    from realtime.config import default_models_dir
    from realtime.faces.detect import DlibDetector, dlib_available
    from realtime.faces.mesh import FaceMesh, MeshRefinedDetector, mesh_onnx_path
    from realtime.faces.retinaface import RetinaFaceDetector, embedded_onnx_path

    cv2.setNumThreads(1)
    work = Path(tempfile.mkdtemp(prefix="bench_detect_"))
    retina = RetinaFaceDetector(OnnxRuntimeEngine(embedded_onnx_path(work),
                                                  threads=args.threads))
    tflite = args.mesh or model_path(default_models_dir(), "face-mesh")
    detectors: dict[str, Detect] = {}
    if dlib_available():
        # the live tuning: 640 px search copy, one upsampling
        detectors["dlib HOG + 68 pt (640 px)"] = DlibDetector(detect_width=640).detect
    detectors["RetinaFace (640 px)"] = retina.detect
    mesh_detector = None
    if tflite.is_file():
        local = work / "face_landmark.tflite"
        local.write_bytes(tflite.read_bytes())
        mesh = FaceMesh(OnnxRuntimeEngine(mesh_onnx_path(local), threads=args.threads))
        mesh_detector = MeshRefinedDetector(retina, mesh)
        detectors["RetinaFace + FaceMesh (640 px)"] = mesh_detector.detect
    else:
        print(f"(no FaceMesh: {tflite} missing; `models download face-mesh` or --mesh)")
    photos = _photos()
    reference = RetinaFaceDetector(retina.engine, detect_width=1600)
    if mesh_detector is None:
        raise SystemExit("the reference points need FaceMesh: pass --mesh")
    ref_detect = MeshRefinedDetector(reference, mesh_detector.mesh).detect
    dlib_ref = DlibDetector(detect_width=1600).detect if dlib_available() else None
    refs = reference_points(photos, ref_detect, dlib_ref)
    print("reference points: " + ("mean of dlib 68→5 and FaceMesh" if dlib_ref else
                                  "FaceMesh only (dlib not installed: NME favours the mesh)"))
    samples = build_set(photos, refs)
    frames = {size: _scale(photos["t1"], min(size[0] / 1280, size[1] / 886), size)[0]
              for size in ((640, 360), (1280, 720))}
    total = sum(len(s.points) for s in samples)
    print(f"held-out set: {len(photos)} photos × {len(samples) // len(photos)} variants = "
          f"{len(samples)} images, {total} faces; ORT threads {args.threads}")
    print(f"| detector | found /{total} | false pos. | NME all / ±40° | ms 640×360 | "
          "ms 1280×720 |")
    print("|---|---|---|---|---|---|")
    for label, detect in detectors.items():
        score = evaluate(detect, samples)
        ms = [timing(detect, frame, args.repeats) for frame in frames.values()]
        errs = score.errors or [float("nan")]
        tilt = score.tilt40 or [float("nan")]
        print(f"| {label} | {score.found} | {score.false_pos} | "
              f"{np.mean(errs):.3f} / {np.mean(tilt):.3f} | {ms[0]:.1f} | {ms[1]:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
