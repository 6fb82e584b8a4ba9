"""Cited by docs/performance.md, "Flow texture cost".

The flow texture's cost per face per frame on one core, and how well its flow
recovers a known motion, for a few flow sizes (side by side in one run).

Method: a real face crop (the astronaut portrait at 224 px, or t1.jpg's portrait when
scikit-image is absent) and a copy with a smooth 6 px jaw-like displacement plus a 2 px
shift. For each flow size, ``TextureMotion.follow`` runs 200 times with OpenCV on one
thread; CPU time per call (process time, so other load on the machine counts less) p50
and p95, and the end-point error of the estimated flow against the true one (crop px).
Run: ``python -m bench.texture_cost``.
"""

from __future__ import annotations

import time

import cv2
import numpy as np

from realtime.frame import motion
from realtime.frame.motion import FLOW_SIZE, TextureMotion, estimate_motion, flow_grey
from realtime.frame.textures import Texture
from realtime.types import AlignedFace

SIZE = 224


def face_crop() -> np.ndarray:
    try:
        from skimage import data

        image = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)[30:300, 120:370]
    except ImportError:
        from realtime.io.clip import source_portrait

        image = source_portrait()[60:400, 20:340]
    return cv2.resize(image, (SIZE, SIZE), interpolation=cv2.INTER_AREA)


def moved(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    fall = np.exp(-((xs - 112) ** 2 + (ys - 170) ** 2) / (2 * 30.0**2))
    flow = np.stack([np.full_like(fall, -2.0), -6.0 * fall], axis=-1).astype(np.float32)
    out = cv2.remap(image, xs + flow[..., 0], ys + flow[..., 1], cv2.INTER_LINEAR,
                    borderMode=cv2.BORDER_REPLICATE)
    return out, flow


def main() -> None:
    cv2.setNumThreads(1)
    crop = face_crop()
    current, true_flow = moved(crop)
    aligned = AlignedFace(current, np.array([[1.0, 0, 0], [0, 1.0, 0]]), SIZE)
    print(f"{'flow px':>7} {'ms p50':>7} {'p95':>6} {'EPE px':>7}   (one core, CPU time per face)")
    for size in (64, 96, FLOW_SIZE, 160):
        tm = TextureMotion(size=size)
        motion._local.__dict__.clear()
        times = []
        for i in range(200):
            texture = Texture(crop, "s", i // 20, 1, crop)  # a new texture every 20 frames
            t0 = time.process_time()
            tm.follow(1, texture, aligned, mode="flow")
            times.append((time.process_time() - t0) * 1000.0)
        found = estimate_motion(flow_grey(crop, size), flow_grey(current, size), SIZE)
        assert found is not None
        epe = float(np.sqrt(((found.flow - true_flow) ** 2).sum(-1))[40:184, 40:184].mean())
        mark = "  (default)" if size == FLOW_SIZE else ""
        print(f"{size:>7} {np.percentile(times, 50):>7.2f} {np.percentile(times, 95):>6.2f} "
              f"{epe:>7.2f}{mark}")


if __name__ == "__main__":
    main()
