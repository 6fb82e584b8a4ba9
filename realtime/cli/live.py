"""``swapcam live``: swap faces on a camera or video stream in real time.

With ``--no-window`` it runs headless and prints one stats line per second (fps in
and out, drops, latency p50/p95, per-stage p50) until ``--seconds`` have passed or
Ctrl-C, SIGTERM or SIGHUP (each a clean stop: the recording closed); otherwise it opens
the window (``realtime.ui.app.run_window``).
Only cheap imports at module level: ``--help`` must be instant.
"""

from __future__ import annotations

import argparse
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

from realtime.config import MASK_MODES, MODEL_NAMES, EngineChoice, Settings
from realtime.session import PASSTHROUGH, build_pipeline

if TYPE_CHECKING:
    from realtime.pipeline import Pipeline

log = logging.getLogger(__name__)

LIVE_MODELS = (*MODEL_NAMES, PASSTHROUGH)
ENGINES: tuple[str, ...] = get_args(EngineChoice)
DETECTORS = ("auto", "scrfd", "retinaface", "dlib")
DETECT_WIDTH_RANGE = (160, 3840)


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--camera", default=None, metavar="0|NAME|PATH",
                        help="camera index, camera name as `swapcam devices` lists it (or a "
                        "unique part of it), /dev/video* device, or a video/image/folder path "
                        "(default: the saved setting, 0)")
    parser.add_argument("--source", action="append", type=Path, default=[],
                        metavar="FILE_OR_DIR",
                        help="photo of an identity to wear; a folder adds one identity per "
                        f"image; several photos of ONE person joined with {os.pathsep!r} "
                        f"(a{os.pathsep}b.jpg) are averaged into one identity; repeat "
                        "--source for several identities (switch with the controls)")
    parser.add_argument("--model", choices=LIVE_MODELS, default=None,
                        help="swap model (default: the saved setting, simswap-224); "
                        "'passthrough' pastes the face back unchanged (diagnostics)")
    parser.add_argument("--engine", choices=ENGINES, default=None,
                        help="inference runtime (default: auto = the fastest available)")
    parser.add_argument("--detector", choices=DETECTORS, default=None,
                        help="face detector (auto: SCRFD when installed, else RetinaFace, "
                        "with FaceMesh landmarks when face-mesh is installed; dlib: legacy "
                        "extra)")
    parser.add_argument("--no-window", action="store_true",
                        help="run headless and print a stats line every second")
    parser.add_argument("--virtual-cam", action="store_true",
                        help="send the result to a virtual camera (v4l2loopback / OBS)")
    parser.add_argument("--record", type=Path, default=None, metavar="OUT",
                        help="also record the result to a Matroska file")
    parser.add_argument("--seconds", type=float, default=None, metavar="N",
                        help="stop after N seconds (headless)")
    parser.add_argument("--detect-every", type=int, default=None, metavar="N",
                        help="full detection every N frames, tracking in between")
    add_detect_width_argument(parser, default=None)
    parser.add_argument("--faces", default=None, metavar="all|largest|match:REF",
                        help="which faces to swap")
    add_mask_argument(parser, default=None)
    add_strength_argument(parser, default=None)
    add_enhance_arguments(parser, live=True)
    parser.add_argument("--swap-mode", choices=("auto", "sync", "async"), default=None,
                        help="sync: swap every frame; async: paste the newest swapped face on "
                        "every frame while the swapper catches up; auto: measure and pick")
    add_texture_arguments(parser, default=None)
    parser.add_argument("--size", default=None, metavar="WxH",
                        help="requested camera resolution (e.g. 1280x720)")
    parser.add_argument("--fps", type=float, default=None,
                        help="requested camera fps (file sources are paced at it)")
    add_map_arguments(parser)
    parser.add_argument("--max-faces", type=int, default=None, metavar="N",
                        help="swap at most N faces per frame, the largest first (1..32; "
                        f"default: the saved setting, {Settings().max_faces}): each face "
                        "costs a model call")
    parser.add_argument("--no-meter", action="store_true",
                        help="turn the identity meter off (it measures each swapped face a "
                        "few times a second on the swap worker; shown in the stats)")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="with --no-window: CPU threads per model for ONNX Runtime "
                        "(default, and always in the window: cores - 1, leaving one for "
                        "capture, detection and output)")


def add_map_arguments(parser: argparse.ArgumentParser, *, live: bool = True) -> None:
    """``--map REF=SOURCE`` (repeatable) and ``--unassigned`` (shared by live and swap)."""
    parser.add_argument("--map", action="append", default=[], metavar="REF.jpg=SOURCE.jpg",
                        help="the person in REF.jpg wears the identity in SOURCE.jpg "
                        "(repeat for several people; recognised by face, followed through "
                        "tracking)")
    parser.add_argument("--unassigned", choices=("source", "leave"), default=None,
                        help="faces no --map entry matches: wear the "
                        f"{'active ' if live else ''}source (default) or are left alone")


def add_mask_argument(parser: argparse.ArgumentParser, *, default: str | None) -> None:
    """``--mask box|parsing|auto`` (shared by ``live``, ``swap`` and ``bench``)."""
    saved = "the saved setting, " if default is None else ""
    parser.add_argument("--mask", choices=MASK_MODES, default=default,
                        help="which part of the face is swapped: box = the aligned crop's "
                        "rounded rectangle; parsing = only skin, brows, eyes, glasses, nose, "
                        "lips and mouth as SimSwap's face parser labels them (hair, ears, "
                        "hands stay real; needs the face-parsing model); auto = parsing when "
                        f"face-parsing is installed, else box (default: {saved}auto)")


def add_strength_argument(parser: argparse.ArgumentParser, *, default: float | None) -> None:
    """``--identity-strength S`` (shared by ``live`` and ``swap``)."""
    saved = "the saved setting, " if default is None else ""
    parser.add_argument("--identity-strength", type=float, default=default, metavar="S",
                        help="0..2: how far the face moves from the target's own identity "
                        "towards the source's (1 = the model's own swap, 0 = the target's "
                        "identity, >1 stronger; not 1 costs one identity-encoder call per "
                        f"face and swap; default: {saved}1)")


def add_enhance_arguments(parser: argparse.ArgumentParser, *, live: bool) -> None:
    """``--enhance off|gfpgan`` and ``--enhance-blend B`` (shared by ``live`` and ``swap``)."""
    saved = "the saved setting, " if live else ""
    parser.add_argument("--enhance", choices=("off", "gfpgan"), default=None if live else "off",
                        help="restore the swapped face with GFPGAN 1.4 (Apache-2.0; needs "
                        "'models download gfpgan-1.4'), on the FFHQ-aligned 512 view, pasted "
                        "with the same mask" + ("; live it runs on the swap worker, so it "
                        "lowers the face refresh, not the frame rate" if live else "")
                        + f" (default: {saved}off)")
    parser.add_argument("--enhance-blend", type=float, default=None, metavar="B",
                        help="0..1: how much of the enhanced face is kept over the plain swap "
                        f"(default: {saved}{Settings().enhance_blend:g})")


def check_blend_arg(blend: float | None) -> float | None:
    if blend is not None and not 0.0 <= blend <= 1.0:
        raise ValueError(f"--enhance-blend: expected 0..1, got {blend}")
    return blend


def check_strength_arg(strength: float | None) -> float | None:
    """``strength`` when in 0..2 (or None); raises ``ValueError`` naming the option."""
    from realtime.frame.strength import check_strength

    if strength is None:
        return None
    try:
        return check_strength(strength)
    except ValueError as exc:
        raise ValueError(f"--identity-strength: {exc}") from None


def add_detect_width_argument(parser: argparse.ArgumentParser, *,
                              default: int | None) -> None:
    """``--detect-width N`` (shared by ``live`` and ``bench``)."""
    low, high = DETECT_WIDTH_RANGE
    saved = "the saved setting, " if default is None else ""
    parser.add_argument("--detect-width", type=int, default=default, metavar="N",
                        help="width in px of the copy the detector searches "
                        f"({low}..{high}; default: {saved}{Settings().detect_width}): larger "
                        "finds smaller faces and costs more CPU (RetinaFace at 640 finds "
                        "faces over ~40 px in a 1280-wide frame; legacy dlib over ~160 px, "
                        "~100 px at 960); SCRFD ignores it")


def check_detect_width(width: int | None) -> int | None:
    """``width`` when in ``DETECT_WIDTH_RANGE`` (or None); raises ``ValueError`` otherwise."""
    low, high = DETECT_WIDTH_RANGE
    if width is not None and not low <= width <= high:
        raise ValueError(f"--detect-width: expected {low}..{high}, got {width}")
    return width


def parse_size(text: str) -> tuple[int, int]:
    """``"1280x720"`` → ``(1280, 720)``; raises ``ValueError`` naming the expected form."""
    parts = text.lower().replace("×", "x").split("x")
    try:
        width, height = (int(p) for p in parts)
    except ValueError:
        raise ValueError(f"size: expected WIDTHxHEIGHT like 1280x720, got {text!r}") from None
    if width < 16 or height < 16:
        raise ValueError(f"size: expected at least 16x16, got {text!r}")
    return width, height


def add_texture_arguments(parser: argparse.ArgumentParser, default: str | None) -> None:
    """``--texture`` and ``--live-mouth`` (shared by ``live`` and ``bench``)."""
    parser.add_argument(
        "--texture", choices=("auto", "static", "flow"), default=default,
        help="between two swaps (async): static re-pastes the newest swapped face; flow warps "
        "it with the face's own motion since (mouth, eyes, brows); auto: flow when async")
    parser.add_argument(
        "--live-mouth", action=argparse.BooleanOptionalAction, default=None,
        help="take the current frame's inner mouth over the swapped face (teeth and tongue a "
        "warp cannot show; the lips are the target's own there)")
    add_stability_arguments(parser)


def add_stability_arguments(parser: argparse.ArgumentParser) -> None:
    """``--fade`` and ``--refresh-order`` (shared by ``live`` and ``bench``; default: the
    saved setting)."""
    parser.add_argument(
        "--fade", type=float, default=None, metavar="MS",
        help="cross-fade a face's old texture into a newly swapped one over MS ms (0: replace "
        f"at once; default: the saved setting, {Settings().fade_ms:g})")
    parser.add_argument(
        "--refresh-order", choices=("auto", "stalest", "error"), default=None,
        help="async: the face the swapper refreshes next: stalest (in turn), error (the face "
        "its texture fits worst, weighted by size, no face waiting over twice its turn), auto "
        "(error with the flow texture)")


def stability_changes(args: argparse.Namespace) -> dict[str, Any]:
    """``--fade`` and ``--refresh-order`` as setting changes (validated by the caller's
    ``with_changes``); absent flags keep the defaults."""
    changes: dict[str, Any] = {}
    if getattr(args, "fade", None) is not None:
        changes["fade_ms"] = args.fade
    if getattr(args, "refresh_order", None) is not None:
        changes["refresh_order"] = args.refresh_order
    return changes


def settings_from_args(args: argparse.Namespace, base: Settings | None = None) -> Settings:
    """defaults → saved settings (``base``) → command line."""
    settings = base or Settings()
    changes: dict[str, Any] = {"models_dir": str(args.models_dir)}
    for arg, field in (("camera", "camera"), ("model", "model"), ("engine", "engine"),
                       ("detector", "detector"), ("detect_every", "detect_every"),
                       ("detect_width", "detect_width"), ("mask", "mask"),
                       ("faces", "faces"), ("swap_mode", "swap_mode"), ("fps", "camera_fps"),
                       ("max_faces", "max_faces"), ("texture", "texture"),
                       ("live_mouth", "live_mouth"), ("fade", "fade_ms"),
                       ("refresh_order", "refresh_order"),
                       ("identity_strength", "identity_strength"),
                       ("enhance", "enhance"), ("enhance_blend", "enhance_blend")):
        value = getattr(args, arg, None)
        if value is not None:
            changes[field] = value
    if getattr(args, "size", None):
        changes["camera_width"], changes["camera_height"] = parse_size(args.size)
    if getattr(args, "source", None):
        changes["sources"] = tuple(str(p) for p in args.source)
        changes["active_source"] = 0
    if getattr(args, "virtual_cam", False):
        changes["virtual_cam"] = True
    if getattr(args, "record", None) is not None:
        changes["record_path"] = str(args.record)
    if getattr(args, "map", None):
        from realtime.faces.mapping import parse_map

        parse_map(args.map)  # a malformed entry fails before any model loads
        changes["face_map"] = tuple(args.map)
    if getattr(args, "unassigned", None):
        changes["unassigned_faces"] = args.unassigned
    if getattr(args, "no_meter", False):
        changes["quality_meter"] = False
    if changes.get("detect_every", 1) < 1:
        raise ValueError(f"--detect-every: expected >= 1, got {changes['detect_every']}")
    check_detect_width(changes.get("detect_width"))
    check_max_faces(changes.get("max_faces"))
    check_strength_arg(changes.get("identity_strength"))
    check_blend_arg(changes.get("enhance_blend"))
    return settings.with_changes(**changes)


def check_max_faces(limit: int | None) -> int | None:
    """``limit`` when in ``MAX_FACES_RANGE`` (or None); raises ``ValueError`` otherwise."""
    from realtime.faces.select import MAX_FACES_RANGE

    low, high = MAX_FACES_RANGE
    if limit is not None and not low <= limit <= high:
        raise ValueError(f"--max-faces: expected {low}..{high}, got {limit}")
    return limit


def check_threads(threads: int | None) -> int | None:
    if threads is not None and threads < 1:
        raise ValueError(f"--threads: expected >= 1, got {threads}")
    return threads


class Terminated(Exception):
    """SIGTERM (or SIGHUP: the terminal closed) asked a headless session to end."""


def _end_on_signals() -> Callable[[], None]:
    """SIGTERM and SIGHUP end a headless session like Ctrl-C does: the pipeline stops,
    the recording is closed (its last frames flushed) and the virtual camera released,
    instead of the process dying mid-write. Returns the undo. Only the main thread may
    install handlers; Windows has neither signal for a console process."""
    import signal

    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(signum: int, _frame: Any) -> None:
        raise Terminated(signal.Signals(signum).name)

    names = [n for n in ("SIGTERM", "SIGHUP") if hasattr(signal, n)]
    previous = {n: signal.signal(getattr(signal, n), handler) for n in names}

    def restore() -> None:
        for name, old in previous.items():
            signal.signal(getattr(signal, name), old)
    return restore


def run_headless(pipeline: Pipeline, seconds: float | None, *, interval: float = 1.0,
                 echo: Any = print) -> int:
    """Run until ``seconds`` pass, Ctrl-C, SIGTERM or SIGHUP, echoing a stats line every
    ``interval``."""
    reported: set[str] = set()
    pipeline.start()
    for name, error in pipeline.sink_errors:
        reported.add(name)
        echo(f"warning: {name} is not running: {error}")
    start = time.monotonic()
    restore_signals = _end_on_signals()
    try:
        next_line = start + interval
        while seconds is None or time.monotonic() - start < seconds:
            end = next_line if seconds is None else min(next_line, start + seconds)
            time.sleep(max(0.0, end - time.monotonic()))
            pipeline.check()
            for sink in pipeline.sinks:
                failure = getattr(sink, "error", None)
                if failure is not None and sink.describe() not in reported:
                    reported.add(sink.describe())
                    echo(f"warning: {sink.describe()}: {failure}")
            if time.monotonic() >= next_line:
                echo(pipeline.stats().format_line())
                next_line += interval
    except KeyboardInterrupt:
        echo("stopping (Ctrl-C)")
    except Terminated as signal_name:
        echo(f"stopping ({signal_name})")
    finally:
        restore_signals()  # a second signal ends the process at once
        pipeline.stop(raise_error=False)
        pipeline.wait_stopped()
    pipeline.check()
    stats = pipeline.stats()
    echo(f"done: {stats.frames_in} frames in, {stats.frames_out} out in "
         f"{time.monotonic() - start:.1f} s; drops {stats.drops}")
    if reported:
        # an output the user asked for (--record, --virtual-cam) did not work
        echo(f"error: not every output ran: {', '.join(sorted(reported))}")
        return 1
    return 0


def run(args: argparse.Namespace) -> int:
    check_detect_width(getattr(args, "detect_width", None))  # the window's path too
    if not args.no_window:
        try:
            from realtime.ui.app import run_window
        except ModuleNotFoundError as exc:
            raise RuntimeError(
                f"the window is not available in this build ({exc}); use --no-window"
            ) from exc
        return int(run_window(args))
    from realtime.settings_store import SettingsStore

    loaded = SettingsStore().load()
    if loaded.warning:
        print(f"warning: {loaded.warning}")
    settings = settings_from_args(args, loaded.settings)
    threads = check_threads(getattr(args, "threads", None))
    paths: list[str] = list(settings.sources)
    if not paths and settings.sources_dir:  # photos removed in the window stay removed
        paths = [str(Path(settings.sources_dir).expanduser())]
    if settings.model != PASSTHROUGH and not paths and not settings.face_map:
        raise ValueError("no source identity: give --source PHOTO (or a folder of photos) "
                         "or --map REF.jpg=SOURCE.jpg")
    pipeline, parts = build_pipeline(settings, Path(args.models_dir), paths, threads=threads)
    print(f"live: {pipeline.source.describe()} → "
          f"{', '.join(s.describe() for s in pipeline.sinks)}; model {parts.model_note}; "
          f"detector {parts.detector.name}")
    return run_headless(pipeline, args.seconds)
