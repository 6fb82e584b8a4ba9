"""``swapcam swap``: swap faces in a photo or a video file.

Every frame: detect → choose faces (``--faces``) → align → swap (one engine call per
frame) → paste back inside each face region. Videos keep size, frame rate, frame
count and audio; Ctrl-C leaves a valid shorter video (or nothing), never a broken one.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, get_args

from realtime.cli.live import DETECT_WIDTH_RANGE
from realtime.config import MODEL_NAMES, EngineChoice

if TYPE_CHECKING:
    import numpy as np

    from realtime.faces.detect import FaceDetector


ENGINE_CHOICES: tuple[str, ...] = get_args(EngineChoice)
DETECTOR_CHOICES = ("auto", "scrfd", "retinaface", "dlib")
# Files are not real-time: the detector searches the image at its own resolution (a
# fixed 800 px found 1 of 27 faces in a 1080p group photo); wider inputs are scaled to
# the largest width the detectors take.


class SwapInputError(ValueError):
    """A command-line file argument that cannot work (missing, wrong kind)."""


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", "-s", nargs="+", type=Path, default=[], metavar="PHOTO",
                        help="photo(s) of the identity to put in; several photos of one person "
                        "are averaged (needed unless --map gives every identity)")  # fmt: skip
    parser.add_argument("--input", "-i", type=Path, required=True, metavar="IN",
                        help="photo or video to change")  # fmt: skip
    parser.add_argument("--output", "-o", type=Path, required=True, metavar="OUT",
                        help="where to write the result (same kind as IN)")  # fmt: skip
    parser.add_argument("--model", choices=MODEL_NAMES, default="simswap-224",
                        help="swap model (default: %(default)s)")  # fmt: skip
    parser.add_argument("--faces", default="all", metavar="all|largest|match:REF.jpg",
                        help="which faces to swap (default: %(default)s)")  # fmt: skip
    parser.add_argument("--match-threshold", type=float, default=0.45, metavar="COS",
                        help="cosine similarity needed by --faces match: (default: %(default)s)")
    parser.add_argument("--engine", choices=ENGINE_CHOICES, default="auto",
                        help="runtime for the models (default: %(default)s)")  # fmt: skip
    parser.add_argument("--detector", choices=DETECTOR_CHOICES, default="auto",
                        help="face detector; auto = SCRFD when installed, else RetinaFace "
                        "(+FaceMesh)")
    parser.add_argument("--det-threshold", type=float, default=0.5, metavar="P",
                        help="detection confidence (default: %(default)s)")  # fmt: skip
    parser.add_argument("--feather", type=float, default=0.08, metavar="F",
                        help="mask feather as a fraction of the face size (default: %(default)s)")
    parser.add_argument("--color-match", action=argparse.BooleanOptionalAction, default=False,
                        help="match the swapped face's colour statistics to the target's "
                        "(default: off; SimSwap's own paste has none)")
    from realtime.cli.live import add_enhance_arguments, add_mask_argument, add_strength_argument

    add_mask_argument(parser, default="auto")
    add_strength_argument(parser, default=1.0)
    add_enhance_arguments(parser, live=False)
    parser.add_argument("--map", action="append", default=[], metavar="REF.jpg=SOURCE.jpg",
                        help="the person in REF.jpg wears the identity in SOURCE.jpg (repeat "
                        "for several people; matched by face with --match-threshold)")
    parser.add_argument("--unassigned", choices=("source", "leave"), default="source",
                        help="faces no --map entry matches: wear --source (default) or are "
                        "left alone")
    parser.add_argument("--cache-dir", type=Path, default=None, metavar="DIR",
                        help="where source identity vectors are cached (default: user cache)")
    low, high = DETECT_WIDTH_RANGE
    parser.add_argument("--detect-width", type=int, default=None, metavar="N",
                        help=f"width in px of the copy the detector searches ({low}..{high}; "
                        "default: the input's own width, at most "
                        f"{high}): lower is faster and misses small faces")


def file_detect_width(requested: int | None, input_width: int) -> int:
    """``--detect-width`` when given (checked), else the input's own width clamped to
    the range the detectors take."""
    low, high = DETECT_WIDTH_RANGE
    if requested is not None:
        if not low <= requested <= high:
            raise SwapInputError(f"--detect-width: expected {low}..{high}, got {requested}")
        return requested
    return max(low, min(high, input_width))


def _input_width(path: Path, kind: str) -> int:
    if kind == "image":
        from realtime.faces.sources import read_image

        return int(read_image(path, "input").shape[1])
    from realtime.io.video import probe_video

    return probe_video(path).width


def _kind(path: Path) -> str:
    from realtime.faces.sources import IMAGE_SUFFIXES

    return "image" if path.suffix.lower() in IMAGE_SUFFIXES else "video"


def _check_paths(args: argparse.Namespace) -> str:
    from realtime.faces.mapping import parse_map
    from realtime.faces.sources import IMAGE_SUFFIXES, read_image
    from realtime.io.video import VIDEO_SUFFIXES

    source: Path
    maps = parse_map(getattr(args, "map", []))
    if not args.source and not maps:
        raise SwapInputError("no identity: give --source PHOTO or --map REF.jpg=SOURCE.jpg")
    for source in [*args.source, *(Path(p) for pair in maps for p in pair)]:
        read_image(source)  # a bad photo fails now, before minutes of model loading
    if args.input.is_dir():
        raise SwapInputError(f"input {args.input}: is a folder; swap takes one photo or "
                             "video file (live --camera takes a folder of photos)")
    if not args.input.is_file():
        raise SwapInputError(f"input {args.input}: no such file")
    kind = _kind(args.input)
    out_suffix = args.output.suffix.lower()
    expected = IMAGE_SUFFIXES if kind == "image" else VIDEO_SUFFIXES
    if out_suffix not in expected:
        raise SwapInputError(
            f"output {args.output}: the input is a{'n' if kind == 'image' else ''} {kind}, so "
            f"expected one of {', '.join(expected)}, got {out_suffix or 'no extension'}"
        )
    if args.output.resolve() == args.input.resolve():
        raise SwapInputError(f"output {args.output}: must differ from the input")
    if not args.output.parent.is_dir():
        raise SwapInputError(f"output {args.output}: folder {args.output.parent} does not exist")
    return kind


def _write_image(path: Path, image: np.ndarray) -> None:
    import cv2

    ok, data = cv2.imencode(path.suffix, image)
    if not ok:
        raise SwapInputError(f"output {path}: OpenCV cannot encode {path.suffix}")
    # a plain open (not mkstemp) so the file gets the user's usual permissions
    tmp = path.with_name(f".{path.stem}.partial{path.suffix}")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data.tobytes())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _reference_vector(path: Path, detector: FaceDetector, encoder_identify: Callable[
        [np.ndarray, np.ndarray], np.ndarray]) -> np.ndarray:  # fmt: skip
    from realtime.faces.sources import NoFaceError, read_image

    image = read_image(path)
    detections = detector.detect(image)
    if not detections:
        raise NoFaceError(f"reference photo {path}: no face found")
    best = max(detections, key=lambda d: d.area)
    return encoder_identify(image, best.landmarks)


def run(args: argparse.Namespace) -> int:
    from realtime.cli.live import check_blend_arg, check_strength_arg
    from realtime.config import Settings, default_cache_dir
    from realtime.faces.detect import make_detector
    from realtime.faces.identity import load_encoder
    from realtime.faces.select import parse_mode
    from realtime.faces.sources import SourceBank
    from realtime.frame.parsing import load_mask_parser
    from realtime.frame.swap import load_swapper
    from realtime.session import choose_processor

    mode = parse_mode(args.faces)
    kind = _check_paths(args)
    models_dir = Path(args.models_dir)
    settings = Settings().with_changes(
        models_dir=str(models_dir), model=args.model, engine=args.engine,
        detector=args.detector, faces=args.faces, match_threshold=args.match_threshold,
        det_threshold=args.det_threshold, feather=args.feather,
        color_match=args.color_match, mask=args.mask,
        identity_strength=check_strength_arg(args.identity_strength), enhance=args.enhance,
        enhance_blend=(check_blend_arg(args.enhance_blend)
                       if args.enhance_blend is not None else Settings().enhance_blend),
    )  # fmt: skip
    parser = load_mask_parser(args.mask, models_dir, engine=args.engine)  # fails early
    swapper = load_swapper(args.model, models_dir, engine=args.engine)
    encoder = load_encoder(args.model, models_dir, engine=args.engine)
    detect_width = file_detect_width(getattr(args, "detect_width", None),
                                     _input_width(args.input, kind))
    detector = make_detector(
        args.detector, models_dir, engine=args.engine, threshold=args.det_threshold,
        detect_width=detect_width,
    )  # fmt: skip
    cache_dir = args.cache_dir or default_cache_dir() / "sources"
    bank = SourceBank(lambda _family: encoder, detector, cache_dir, families=(args.model,))
    from realtime.faces.mapping import FaceMap, parse_map
    from realtime.frame.files import make_frame_swapper

    source = bank.add(list(args.source)) if args.source else None
    for warning in bank.last_warnings:
        print(f"swapcam: warning: {warning}")
    # --map people and --faces match:REF's person: one face map, as live
    face_map = FaceMap(threshold=args.match_threshold, unassigned=args.unassigned)
    mapped = []
    for ref, source_photo in parse_map(args.map):
        worn = bank.add([Path(source_photo)])
        face_map.add_reference(_reference_vector(Path(ref), detector, encoder.identify),
                               worn.name)
        mapped.append(worn)
    if mode.kind == "match" and mode.reference is not None:
        face_map.set_match_photo(mode.reference)
        face_map.add_photo_vector(mode.reference, _reference_vector(
            Path(mode.reference), detector, encoder.identify))
    enhancer = None
    if args.enhance != "off":
        from realtime.frame.enhance import LazyEnhancer, load_enhancer

        opened = load_enhancer(args.enhance, models_dir, engine=args.engine)  # fails early
        enhancer = LazyEnhancer.of(opened)
    processor = choose_processor(swapper, encoder, settings, parser, enhancer)
    swap_frame = make_frame_swapper(
        processor, detector, active=source, sources=[*([source] if source else []), *mapped],
        faces_mode=args.faces, face_map=face_map if face_map.active else None)
    name = source.name if source is not None else "the --map identities"
    if source is not None and mapped:
        name += " and the --map identities"
    if kind == "image":
        from realtime.faces.sources import read_image
        from realtime.io.still import merge_swapped, read_still

        still = read_still(args.input, read_image(args.input, "input"))
        out, count = swap_frame(still.bgr)
        out, notes = merge_swapped(still, out, args.output)
        for note in notes:
            print(f"swapcam: warning: {note}")
        _write_image(args.output, out)
        mask = "box" if parser is None else "parsing"
        extra = "" if enhancer is None else f", enhanced with {args.enhance}"
        print(f"swapped {count} face(s) with {name!r} ({args.model} on "
              f"{swapper.backend}, {mask} mask{extra}) → {args.output}")  # fmt: skip
        return 0
    return _run_video(args, swap_frame, name, swapper.backend)


def _run_video(
    args: argparse.Namespace,
    swap_frame: Callable[[np.ndarray], tuple[np.ndarray, int]],
    source_name: str,
    backend: str,
) -> int:
    from tqdm import tqdm

    from realtime.io.video import VideoError, VideoWriter, probe_video, read_frames

    info = probe_video(args.input)
    frames = read_frames(args.input)
    first = next(frames, None)
    if first is None:
        raise VideoError(f"input {args.input}: the video has no frames")
    swapped = 0
    # size from a decoded frame, not the header: OpenCV applies rotation metadata
    height, width = first.shape[:2]
    writer = VideoWriter(args.output, width, height, info.fps, audio_from=args.input)
    progress = tqdm(total=info.frame_count or None, unit="frame", desc="swap", dynamic_ncols=True)
    try:
        with writer:
            for frame in itertools.chain([first], frames):
                out, count = swap_frame(frame)
                writer.write(out)
                swapped += count
                progress.update(1)
    except KeyboardInterrupt:
        progress.close()
        if args.output.exists():
            print(f"swapcam: interrupted; kept the first {writer.frames_written} frames in "
                  f"{args.output}")  # fmt: skip
        raise
    progress.close()
    print(f"swapped {swapped} face(s) in {writer.frames_written} frames with {source_name!r} "
          f"({args.model} on {backend}) → {args.output}")  # fmt: skip
    if info.frame_count and writer.frames_written < info.frame_count:
        # OpenCV stops at the first frame it cannot decode: a cut or damaged file.
        print(f"swapcam: warning: input {args.input} ended after {writer.frames_written} of "
              f"the {info.frame_count} frames its header lists (truncated or damaged?); "
              f"{args.output} holds the frames that could be read", file=sys.stderr)
        return 1
    return 0
