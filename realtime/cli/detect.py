"""``detect``: the faces swapcam finds in photos (what would be swapped).

Prints each face's box, score and five points; ``--json`` writes them all as
``{file name: [{"box": [x1, y1, x2, y2], "landmarks": [[x, y] × 5], "score": s}, …]}`` in
image pixels, landmarks in SCRFD order (image-left eye, other eye, nose tip, image-left
mouth corner, other mouth corner); ``--draw`` saves copies with boxes and points.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from realtime.types import Detection

DETECTOR_CHOICES = ("auto", "scrfd", "retinaface", "dlib")
ENGINE_CHOICES = ("auto", "tensorrt", "onnxruntime-cuda", "onnxruntime-directml",
                  "onnxruntime-coreml", "onnxruntime-cpu", "openvino")
# A photo is not real-time: search a larger copy than the live default.
PHOTO_DETECT_WIDTH = 1280
# Point colours (BGR) in SCRFD order: eyes, nose, mouth corners.
POINT_COLOURS = ((255, 128, 0), (255, 128, 0), (0, 220, 255), (60, 60, 255), (60, 60, 255))


class DetectInputError(ValueError):
    """An argument that cannot work: missing input, no images, output over the input."""


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", "-i", type=Path, required=True, metavar="PHOTO_OR_FOLDER",
                        help="a photo, or a folder of photos (not searched recursively)")
    parser.add_argument("--json", type=Path, default=None, metavar="OUT",
                        help="write every face (box, five landmarks, score; image pixels) "
                        "as JSON keyed by file name")  # fmt: skip
    parser.add_argument("--draw", type=Path, default=None, metavar="OUT_DIR",
                        help="save copies of the photos with boxes and points in OUT_DIR")
    parser.add_argument("--detector", choices=DETECTOR_CHOICES, default="auto",
                        help="auto: SCRFD when installed, else RetinaFace (+FaceMesh "
                        "landmarks when face-mesh is installed), else dlib (legacy extra)")
    parser.add_argument("--engine", choices=ENGINE_CHOICES, default="auto",
                        help="runtime for the detector's models (default: %(default)s)")
    parser.add_argument("--det-threshold", type=float, default=0.5, metavar="P",
                        help="detection confidence (default: %(default)s)")  # fmt: skip
    parser.add_argument("--detect-width", type=int, default=PHOTO_DETECT_WIDTH, metavar="N",
                        help="width of the copy searched; larger finds smaller faces "
                        "(default: %(default)s)")  # fmt: skip


def list_photos(path: Path) -> list[Path]:
    """The photos to read: ``path`` itself, or a folder's image files sorted by name."""
    from realtime.faces.sources import IMAGE_SUFFIXES

    if not path.exists():
        raise DetectInputError(f"input {path}: no such file or folder")
    if path.is_file():
        return [path]
    photos = sorted(p for p in path.iterdir()
                    if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not photos:
        raise DetectInputError(f"input {path}: no photos in this folder (looked for "
                               f"{', '.join(IMAGE_SUFFIXES)})")
    return photos


def face_record(det: Detection) -> dict[str, Any]:
    """One face as JSON: plain floats, rounded to 0.01 px."""
    return {"box": [round(float(v), 2) for v in det.box],
            "landmarks": [[round(float(x), 2), round(float(y), 2)] for x, y in det.landmarks],
            "score": round(float(det.score), 4)}


def draw_faces(image: np.ndarray, detections: list[Detection]) -> np.ndarray:
    """A copy of ``image`` with each face's box, score and five points."""
    import cv2

    out = image.copy()
    thick = max(1, round(max(image.shape[:2]) / 500))
    for det in detections:
        x1, y1, x2, y2 = (round(float(v)) for v in det.box)
        cv2.rectangle(out, (x1, y1), (x2, y2), (0, 255, 0), thick, cv2.LINE_AA)
        cv2.putText(out, f"{det.score:.2f}", (x1, max(12, y1 - 4)), cv2.FONT_HERSHEY_SIMPLEX,
                    0.4 * thick, (0, 255, 0), thick, cv2.LINE_AA)
        radius = max(2, round(det.width / 40))
        for (x, y), colour in zip(det.landmarks, POINT_COLOURS, strict=True):
            cv2.circle(out, (round(float(x)), round(float(y))), radius, colour, -1, cv2.LINE_AA)
    return out


def _check_outputs(args: argparse.Namespace, photos: list[Path]) -> None:
    if args.draw is not None:
        if args.draw.exists() and not args.draw.is_dir():
            raise DetectInputError(f"--draw {args.draw}: exists and is not a folder")
        inputs = {p.resolve().parent for p in photos}
        if args.draw.resolve() in inputs:
            raise DetectInputError(f"--draw {args.draw}: would overwrite the input photos; "
                                   "choose another folder")
    if args.json is not None:
        if args.json.is_dir():
            raise DetectInputError(f"--json {args.json}: is a folder, expected a file name")
        if args.json.resolve() in {p.resolve() for p in photos}:
            raise DetectInputError(f"--json {args.json}: would overwrite an input photo")
        if not args.json.resolve().parent.is_dir():
            raise DetectInputError(f"--json {args.json}: folder {args.json.parent} does not "
                                   "exist")


def _write_image(path: Path, image: np.ndarray) -> None:
    import cv2

    from engines.fileio import write_atomic

    ok, data = cv2.imencode(path.suffix if path.suffix else ".png", image)
    if not ok:
        raise DetectInputError(f"{path}: OpenCV cannot encode {path.suffix}")
    write_atomic(path, data.tobytes())


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from engines.fileio import write_atomic
    from realtime.faces.detect import make_detector
    from realtime.faces.sources import SourceImageError, read_image

    photos = list_photos(args.input)
    _check_outputs(args, photos)
    if not 0.0 < args.det_threshold < 1.0:
        raise DetectInputError(f"--det-threshold: expected 0 < P < 1, got {args.det_threshold}")
    detector = make_detector(args.detector, Path(args.models_dir), engine=args.engine,
                             threshold=args.det_threshold, detect_width=args.detect_width)
    results: dict[str, list[dict[str, Any]]] = {}
    failed = 0
    if args.draw is not None:
        args.draw.mkdir(parents=True, exist_ok=True)
    progress = tqdm(photos, unit="photo", disable=len(photos) < 2, leave=False)
    for photo in progress:
        try:
            image = read_image(photo, "photo")
        except SourceImageError as exc:
            failed += 1
            tqdm.write(f"swapcam: warning: {exc}; skipped")
            continue
        detections = detector.detect(image)
        results[photo.name] = [face_record(d) for d in detections]
        tqdm.write(f"{photo.name}: {len(detections)} face{'s' if len(detections) != 1 else ''}")
        for number, det in enumerate(detections, 1):
            record = face_record(det)
            points = " ".join(f"({x:.0f},{y:.0f})" for x, y in record["landmarks"])
            box = ", ".join(f"{v:.0f}" for v in record["box"])
            tqdm.write(f"  {number}: box [{box}] score {record['score']:.3f} points {points}")
        if args.draw is not None:
            _write_image(args.draw / photo.name, draw_faces(image, detections))
    total = sum(len(faces) for faces in results.values())
    print(f"detector {detector.name}: {total} face{'s' if total != 1 else ''} in "
          f"{len(results)} photo{'s' if len(results) != 1 else ''}"
          + (f" ({failed} unreadable, skipped)" if failed else ""))
    if args.json is not None:
        text = json.dumps(results, indent=2)
        write_atomic(args.json, text.encode("utf-8"))
        os.chmod(args.json, 0o644)
        print(f"wrote {args.json}")
    if not results:
        return 1
    return 0
