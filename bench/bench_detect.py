"""Cited by docs/performance.md, "Face detectors".

Face detectors side by side on a held-out set (the logic lives in
``realtime.faces.detect_eval``; ``python main.py bench --detectors`` runs the same).

Run from the repository root: ``python -m bench.bench_detect [--mesh face_landmark.tflite]
[--threads 2] [--repeats 10] [--variants original,rot+40] [--photos DIR]``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import cv2

from realtime.faces import detect_eval


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--mesh", type=Path, default=None,
                        help="face_landmark.tflite (default: the models folder's face-mesh)")
    parser.add_argument("--models-dir", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--detect-width", type=int, default=640)
    parser.add_argument("--variants", default=",".join(detect_eval.VARIANTS))
    parser.add_argument("--photos", type=Path, default=None)
    args = parser.parse_args(argv)

    from realtime.config import default_models_dir

    cv2.setNumThreads(1)
    photos = detect_eval.package_photos()
    if args.photos is not None:
        photos.update(detect_eval.folder_photos(args.photos))
    names = [v for v in args.variants.split(",") if v]
    with tempfile.TemporaryDirectory(prefix="bench_detect_") as work:
        contenders = detect_eval.build_contenders(
            args.models_dir or default_models_dir(), threads=args.threads,
            detect_width=args.detect_width, mesh_tflite=args.mesh, work_dir=Path(work))
        print(f"reference points: {contenders.reference}")
        samples = detect_eval.build_set(
            photos, detect_eval.reference_points(photos, contenders.references), names)
        total = sum(len(s.points) for s in samples)
        print(f"held-out set: {len(photos)} photos × {len(names)} variants = "
              f"{len(samples)} images, {total} faces; ORT threads {args.threads}")
        rows = detect_eval.compare(contenders.detectors, samples,
                                   detect_eval.timing_frames(photos["t1"]),
                                   repeats=args.repeats)
    print(detect_eval.format_rows(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
