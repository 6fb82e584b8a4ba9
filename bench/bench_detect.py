"""Embedded (dlib HOG + 68-point) detector: milliseconds per frame at 640×480 and 1280×720.

Frames are insightface's t1.jpg (six people) cut to the frame's aspect ratio and
scaled, so faces are ~50 px (640×480) and ~105 px (1280×720) wide: a hard case
for HOG (webcam faces are usually larger). One thread.

Run from the repository root: ``python -m bench.bench_detect [--repeats N]``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np


def frames() -> dict[str, np.ndarray]:
    import cv2

    from bench.bench_composite import test_frames

    wide = test_frames()["720p"]
    return {
        "640x480": cv2.resize(wide[:, 160:1120], (640, 480), interpolation=cv2.INTER_AREA),
        "1280x720": wide,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args(argv)

    import cv2

    from realtime.faces.detect import DlibDetector

    cv2.setNumThreads(1)
    configs = [
        ("default (480 px, upsample 1)", DlibDetector()),
        ("fast (480 px, upsample 0)", DlibDetector(upsample=0)),
        ("640 px, upsample 1", DlibDetector(detect_width=640)),
    ]
    print(f"{'frame':9} {'detector':30} {'median ms':>10} {'min ms':>8} {'faces':>6}")
    for label, frame in frames().items():
        for name, detector in configs:
            found = len(detector.detect(frame))
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                detector.detect(frame)
                times.append((time.perf_counter() - start) * 1000.0)
            print(f"{label:9} {name:30} {statistics.median(times):10.1f} {min(times):8.1f} "
                  f"{found:6d}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
