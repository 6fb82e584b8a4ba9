"""``swapcam bench --motion``: the texture modes side by side (see ``realtime.cli.motion_bench``
for the method), then how 1 and 3 faces share a slow generator. Parsing and printing."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from realtime.config import Settings
from realtime.frame.hold import HOLD_S
from realtime.session import PASSTHROUGH

SHARING_GENERATOR_S = 0.4  # seconds per face of the paced generator in the sharing runs
# the texture modes the refresh orders are compared with (auto: error with the flow one)
ORDER_TEXTURES = ("flow", "static")


def run_motion(args: argparse.Namespace, *,
               ensure_models: Callable[..., tuple[Path, str | None]],
               source_photo: Callable[[Path], Path],
               machine_info: Callable[[], dict[str, Any]]) -> int:
    """``bench --motion``; ``bench``'s own helpers are passed in (random-weight models
    when the user's are missing, the identity photo, the machine's description)."""
    from tqdm import tqdm

    from realtime.cli.live import stability_changes
    from realtime.cli.motion_bench import (
        PacedSwapper,
        run_mode,
        run_order,
        run_sharing,
    )
    from realtime.config import default_cache_dir
    from realtime.frame.process import FrameProcessor
    from realtime.io.clip import ClipSource
    from realtime.session import (
        PassthroughSwapper,
        build_parts,
        live_threads,
        make_live_detector,
        passthrough_source,
    )

    if not args.refresh > 0:
        raise ValueError(f"--refresh: expected a rate > 0 (Hz), got {args.refresh}")
    if args.seconds <= 0 or args.warmup < 0:
        raise ValueError(f"--seconds must be > 0 and --warmup >= 0, got {args.seconds}, "
                         f"{args.warmup}")
    cache_dir = default_cache_dir()
    threads = args.threads or live_threads()
    settings = Settings(model=args.model, engine=args.engine, detector=args.detector,
                        faces="all", swap_mode="async", detect_every=args.detect_every,
                        color_match=False, quality_meter=False,
                        mask="box" if args.model == PASSTHROUGH else args.mask)
    settings = settings.with_changes(**stability_changes(args))
    note = None
    if args.model == PASSTHROUGH:
        models_dir = Path(args.models_dir)
        detector = make_live_detector(settings, models_dir, threads=threads)
        inner = PassthroughSwapper()
        processor: Any = FrameProcessor(PacedSwapper(inner, 1.0 / args.refresh), None,  # type: ignore[arg-type]
                                        settings)
        sources: Any = (passthrough_source(inner.family),)
        model_note = f"passthrough generator refreshed {args.refresh:g} times a second"
    else:
        models_dir, note = ensure_models(args.model, Path(args.models_dir), cache_dir,
                                         settings.mask)
        settings = settings.with_changes(models_dir=str(models_dir))
        parts = build_parts(settings, models_dir, source_paths=[source_photo(cache_dir)],
                            cache_dir=cache_dir, threads=threads)
        detector, processor, sources = parts.detector, parts.processor, parts.sources
        model_note = f"{parts.model_note} (refresh: the model's own speed)"
    make_source, input_note, clip = _input(args, detector)
    print(f"bench --motion: {input_note}; {model_note}; detector {detector.name}; "
          f"{args.warmup:g} s warm-up + {args.seconds:g} s per mode")
    if note:
        print(f"note: {note}")
    fade = settings.fade_ms
    runs = [(mode, f) for mode in modes_run(args.texture) for f in sorted({0.0, fade})]
    results = {}
    for mode, f in tqdm(runs, desc="texture modes", unit="mode", leave=False):
        name = mode if f == 0 else f"{mode}+fade"
        results[name] = run_mode(make_source, processor, detector, sources,
                                 settings.with_changes(fade_ms=f), mode, seconds=args.seconds,
                                 warmup=args.warmup, people=1 if clip is not None else None)
    if clip is not None:  # the talking clip with a hand crossing and missed detections
        for hold in (0.0, HOLD_S):
            results[f"occluded, hold {hold:g} s"] = run_occluded(
                clip, args, processor, detector, sources, settings, hold)
    sharing: list[Any] = []
    orders: list[Any] = []
    if not args.no_sharing:
        paced = FrameProcessor(PacedSwapper(PassthroughSwapper(), SHARING_GENERATOR_S), None,  # type: ignore[arg-type]
                               settings.with_changes(mask="box"))
        shares = [(n, order) for n in (1, 3) for order in ("fair", "batch")]
        for n, order in tqdm(shares, desc="sharing", unit="run", leave=False):
            sharing.append(run_sharing(
                lambda faces: ClipSource(640, 480, fps=30.0, faces=faces), paced, detector,
                (passthrough_source("simswap-224"),), settings, n, order,
                seconds=max(4.0, 10 * SHARING_GENERATOR_S * n),
                generator_s=SHARING_GENERATOR_S))
        group = group_source(detector, args.fps)
        order_runs = [(texture, order) for texture in ORDER_TEXTURES
                      if args.texture in ("auto", texture) for order in ("stalest", "error")]
        for texture, order in tqdm(order_runs, desc="refresh order", unit="run", leave=False):
            orders.append(run_order(
                group, paced, detector, (passthrough_source("simswap-224"),), settings, order,
                seconds=max(2 * args.seconds, 20.0), warmup=max(args.warmup, 3.0),
                generator_s=SHARING_GENERATOR_S, texture=texture))
    print(format_motion(results))
    if sharing:
        print(format_sharing(sharing))
    if orders:
        print(format_orders(orders))
    if args.json is not None:
        report: dict[str, Any] = {mode: asdict(r) for mode, r in results.items()}
        report["settings"] = {
            "input": input_note, "model": args.model, "model_note": model_note,
            "fallback_note": note, "refresh_hz": args.refresh if args.model == PASSTHROUGH
            else None, "seconds": args.seconds, "warmup": args.warmup,
            "detector": detector.name, "detect_every": args.detect_every,
            "threads": threads, "machine": machine_info()}
        report["sharing"] = [asdict(s) for s in sharing]
        report["refresh_order"] = [asdict(o) for o in orders]
        report["settings"]["fade_ms"] = fade
        report["settings"]["refresh_order"] = settings.refresh_order
        for entry in report.values():
            if isinstance(entry, dict) and "error" in entry:
                entry["ms_per_face"] = entry["ms_per_face_p50"]
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    return 0


def modes_run(texture: str) -> list[str]:
    """The texture modes ``--texture`` asks for (auto: all)."""
    from realtime.cli.motion_bench import MODES

    if texture == "static":
        return ["static"]
    if texture == "flow":
        return ["flow", "live_mouth"]
    return list(MODES)


def run_occluded(clip: Any, args: argparse.Namespace, processor: Any, detector: Any,
                 sources: Any, settings: Settings, hold_s: float) -> Any:
    """The flow texture (with the fade) on the talking clip with a hand-sized patch
    crossing the face every 2 s and 3 missed detections every 12 detector calls; lost
    faces held ``hold_s`` seconds (0: today's behaviour before the hold)."""
    from realtime.cli.motion_bench import run_mode
    from realtime.cli.stability_bench import MissingDetector, OccludedSource
    from realtime.io.talking import talking_source

    centre = clip.points.mean(axis=0)
    width = 2.2 * clip.iod

    def make() -> Any:
        return OccludedSource(talking_source(clip, fps=args.fps), (centre[0], centre[1]),
                              width)

    return run_mode(make, processor, MissingDetector(detector), sources, settings, "flow",
                    seconds=args.seconds, warmup=args.warmup, people=1, hold_s=hold_s)


def group_source(detector: Any, fps: float) -> Any:
    """A factory of the clip where one of three people talks (t1.jpg's group, the middle
    face animated, the others still)."""
    from realtime.io.talking import TalkingClip, group_photo, talking_source

    photo = group_photo()
    found = sorted(detector.detect(photo), key=lambda d: float(d.box[0]))
    if len(found) != 3:
        raise ValueError(f"the group clip's photo shows {len(found)} faces to this detector; "
                         "expected 3")
    clip = TalkingClip(photo, found[1].landmarks, photo.shape[1], photo.shape[0], fit=False,
                       head_radius=2.0)
    return lambda: talking_source(clip, fps=fps)


def _input(args: argparse.Namespace, detector: Any) -> tuple[Any, str, Any]:
    """A factory of fresh sources (one per mode), a line saying what it is, and the
    talking clip (None for a video file)."""
    if args.input is not None:
        from realtime.io.capture import open_source

        path = Path(args.input)
        if not path.is_file():
            raise ValueError(f"--input {path}: expected a video file")
        return ((lambda: open_source(str(path), fps=args.fps)),
                f"{path.name} at {args.fps:g} fps", None)
    from realtime.io.clip import source_portrait
    from realtime.io.talking import TalkingClip, talking_source

    photo = source_portrait()
    found = detector.detect(photo)
    if not found:
        raise ValueError("the built-in talking clip's photo shows no face to this detector")
    clip = TalkingClip(photo, max(found, key=lambda d: d.area).landmarks, 640, 480)
    return ((lambda: talking_source(clip, fps=args.fps)),
            f"built-in talking clip 640×480 at {args.fps:g} fps", clip)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def format_motion(results: dict[str, Any]) -> str:
    head = (f"{'texture':>22} {'error':>6} {'frames':>6} {'ms/face p50':>11} {'p95':>6} "
            f"{'cpu p50':>7} {'p95':>6} "
            f"{'fps in':>6} {'out':>6} {'drops':>5} {'swaps/s':>7} {'fallbacks':>9} "
            f"{'pop':>5} {'peak':>5} {'input':>5} {'switches':>8} {'flicker':>7} "
            f"{'flashes':>7}")
    lines = [head, "-" * len(head)]
    for mode, r in results.items():
        error = "-" if r.error is None else f"{r.error:.2f}"
        lines.append(f"{mode:>22} {error:>6} {r.error_samples:>6} "
                     f"{_ms(r.ms_per_face_p50):>11} "
                     f"{_ms(r.ms_per_face_p95):>6} {_ms(r.cpu_ms_per_face_p50):>7} "
                     f"{_ms(r.cpu_ms_per_face_p95):>6} {r.fps_in:>6.1f} {r.fps_out:>6.1f} "
                     f"{r.drops:>5} {r.swaps_per_s:>7.2f} {r.fallbacks:>9} "
                     f"{_ms(r.pop):>5} {_ms(r.pop_peak):>5} {_ms(r.pop_input_peak):>5} "
                     f"{r.switches:>8} {_ms(r.flicker):>7} {r.flashes:>7}")
    lines.append("error: mean |shown − current frame| (0–255) where the paste weight > 0.5; "
                 "ms/face: the texture step per face per frame, wall time on the process "
                 "thread; cpu: that thread's CPU time for it (the work on one core); pop: the "
                 "mean change of the shown face over the frames of a texture change ÷ the "
                 "input's mean change there over the run; peak: the largest of those frames' "
                 "changes instead (input: the input's own largest there, the floor of peak); "
                 "flicker: p95 |shown change − input change|; flashes: frames "
                 "showing fewer swapped faces than people")
    return "\n".join(lines)


def format_orders(results: list[Any]) -> str:
    lines = [f"refresh order, one of three people talking, a generator of "
             f"{results[0].generator_s:g} s per face: error per face (track order), "
             "mean; refreshes; longest wait"]
    for r in results:
        errors = ", ".join(f"{e:.2f}" for e in r.errors.values()) or "-"
        mean = "-" if r.mean_error is None else f"{r.mean_error:.2f}"
        counts = ", ".join(str(n) for n in r.refreshes.values())
        waits = ", ".join(f"{w:.1f}" for w in r.longest_wait_s.values())
        lines.append(f"  {r.texture:>6} {r.order:>7}: error [{errors}] mean {mean}; "
                     f"refreshes [{counts}]; longest wait [{waits}] s")
    return "\n".join(lines)


def format_sharing(results: list[Any]) -> str:
    lines = [f"sharing a generator of {results[0].generator_s:g} s per face (G): "
             "first texture after the face appears, and refresh interval, per face"]
    for r in results:
        first = ", ".join(f"{s / r.generator_s:.1f}" for s in r.first_texture_s) or "-"
        every = ", ".join(f"{s / r.generator_s:.1f}" for s in r.refresh_interval_s) or "-"
        lines.append(f"  {r.faces} face(s), {r.order:>5}: first texture [{first}] G; "
                     f"refresh every [{every}] G")
    return "\n".join(lines)
