"""``swapcam bench``: measure the live pipeline on a fixed synthetic clip.

Method: for each size the real pipeline (capture → detect/track → align → swap →
composite → output threads, one-slot handoffs) runs on :mod:`realtime.io.clip` (package
face images moving, turning and under changing light), paced at ``--fps`` like a
camera (or ``--unpaced``: a new frame as soon as the previous one is taken), into a
null sink. After ``--warmup`` seconds (engine start, first swap) the counters are
reset and ``--seconds`` are measured: fps in/out, swapped-texture refreshes per
second, per-stage p50/p95/p99, drops per handoff and end-to-end latency (capture
timestamp → the sink accepted the frame). When the user's models are missing, models
of the real architecture with random weights are written to a cache folder (speed
does not depend on the weights) and the report says so.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import platform
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from realtime.cli.live import (
    DETECTORS,
    ENGINES,
    add_detect_width_argument,
    add_stability_arguments,
    check_detect_width,
    check_threads,
    parse_size,
    stability_changes,
)
from realtime.config import MODEL_NAMES, Settings
from realtime.faces.detect_eval import VARIANTS
from realtime.frame.parsing import MASK_MODES
from realtime.session import PASSTHROUGH

log = logging.getLogger(__name__)

BENCH_MODELS = (*MODEL_NAMES, PASSTHROUGH)
DEFAULT_SIZES = "640x480,1280x720,1920x1080"
TABLE_STAGES = ("capture", "detect", "track", "align", "swap", "composite", "sink")
# the identity encoder each swapper needs, for the random-weight fallback
ENCODERS = {"simswap-224": "arcface-simswap", "simswap-512": "arcface-simswap",
            "inswapper-128": "arcface-w600k"}


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", choices=BENCH_MODELS, default=None,
                        help="swap model (default simswap-224; passthrough with --motion); "
                        "'passthrough' measures detection + tracking + composite with the "
                        "generator replaced by a copy")
    parser.add_argument("--engine", choices=ENGINES, default="auto",
                        help="inference runtime (tensorrt needs an NVIDIA GPU)")
    parser.add_argument("--detector", choices=DETECTORS, default="auto")
    parser.add_argument("--sizes", default=DEFAULT_SIZES,
                        help=f"comma-separated WxH list (default {DEFAULT_SIZES})")
    parser.add_argument("--seconds", type=float, default=10.0,
                        help="measured seconds per size (default 10)")
    parser.add_argument("--warmup", type=float, default=3.0,
                        help="seconds run before measuring (default 3)")
    parser.add_argument("--fps", type=float, default=30.0,
                        help="clip pacing, like a camera (default 30)")
    parser.add_argument("--unpaced", action="store_true",
                        help="maximum throughput: a new frame as soon as one is taken")
    parser.add_argument("--faces", default="largest",
                        help="which faces to swap: all | largest (default; the clip holds 3)")
    parser.add_argument("--clip-faces", type=int, default=3, choices=(1, 2, 3),
                        help="faces in the clip (default 3)")
    parser.add_argument("--detect-every", type=int, default=5)
    add_detect_width_argument(parser, default=Settings().detect_width)
    parser.add_argument("--swap-mode", choices=("auto", "sync", "async"), default="auto")
    parser.add_argument("--mask", choices=(*MASK_MODES, "both"), default="auto",
                        help="the mask to measure with (as on live; default auto); both = a "
                        "box row and a parsing row per size in one run (needs face-parsing, "
                        "random weights otherwise), to compare on a noisy machine")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="CPU threads per model for ONNX Runtime (default: cores - 1, "
                        "as in live)")
    parser.add_argument("--texture", choices=("auto", "static", "flow"), default="auto",
                        help="between two swaps (async), as on live: static, flow (follow "
                        "the face's own motion) or auto (flow when async); with --motion: "
                        "the modes run (default: all)")
    add_stability_arguments(parser)
    parser.add_argument("--json", type=Path, default=None, metavar="OUT",
                        help="also write the results as JSON")
    parser.add_argument("--meter", choices=("on", "off", "both"), default="on",
                        help="the identity meter during the run; 'both' runs every size "
                        "with and without it, side by side (its cost on fps and latency)")
    parser.add_argument("--enhance", choices=("off", "gfpgan", "both"), default="off",
                        help="the GFPGAN 1.4 face enhancer on the swap worker; 'both' runs "
                        "every size without and with it, side by side (its cost on the "
                        "face refresh, swap/s, and on the frame rate)")
    parser.add_argument("--quality", action="store_true",
                        help="instead of speed: SimSwap's paper metrics (ID retrieval, "
                        "identity cosine, pose and expression error) over every "
                        "--sources × --targets pair, with a JSON and an HTML report")
    parser.add_argument("--strengths", default=None, metavar="LIST",
                        help="with --quality: identity strengths to compare, e.g. 0.5,1,1.5 "
                        "(each 0..2; the table gives identity cosine, pose and expression "
                        "error per strength)")
    parser.add_argument("--sources", type=Path, default=None, metavar="DIR",
                        help="with --quality: a folder of source photos (one identity each)")
    parser.add_argument("--targets", type=Path, default=None, metavar="DIR_OR_VIDEO",
                        help="with --quality: a folder of target photos, a photo or a video "
                        "(8 frames sampled)")
    parser.add_argument("--report", type=Path, default=None, metavar="OUT.html",
                        help="with --quality: the HTML report (default: quality-report.html "
                        "beside --json, else in the current folder)")
    parser.add_argument("--detectors", action="store_true",
                        help="instead of the pipeline: the face detectors side by side "
                        "(dlib, SCRFD, RetinaFace, RetinaFace + FaceMesh) on a held-out set "
                        "of real photos × variants: recall, false positives, landmark error "
                        "(NME) overall and at ±40° tilt, ms per 640×360 and 1280×720 frame")
    parser.add_argument("--photos", type=Path, default=None, metavar="DIR",
                        help="with --detectors: a folder of your own photos added to the "
                        "held-out set")
    parser.add_argument("--variants", default=None, metavar="LIST",
                        help="with --detectors: comma-separated subset of "
                        + ",".join(VARIANTS) + " (default: all)")
    parser.add_argument("--motion", action="store_true",
                        help="instead of speed: how closely the shown face follows the "
                        "person between two swaps, per texture mode (static, flow, live "
                        "mouth): face error, texture cost per face, fps and drops; then "
                        "first-texture latency and refresh interval with 1 and 3 faces")
    parser.add_argument("--input", type=Path, default=None, metavar="VIDEO",
                        help="with --motion: a video to measure on (default: a talking clip "
                        "made from a package face photo)")
    parser.add_argument("--refresh", type=float, default=0.5, metavar="HZ",
                        help="with --motion and the passthrough model: texture refreshes "
                        "per second (default 0.5, a CPU-like generator)")
    parser.add_argument("--no-sharing", action="store_true",
                        help="with --motion: skip the 1- and 3-face sharing runs")
    parser.add_argument("--repeats", type=int, default=10, metavar="N",
                        help="with --detectors: timed runs per frame size (median; default 10)")
    from realtime.cli.bench_soak import add_soak_arguments

    add_soak_arguments(parser)


def ensure_models(model: str, models_dir: Path, cache_dir: Path,
                  mask: str = "box") -> tuple[Path, str | None]:
    """``models_dir`` when ``model`` and its encoder (and the face parser for ``--mask
    parsing``) are installed, else a cache folder of random-weight models of the same
    architecture; returns it and a note when it fell back."""
    if model == PASSTHROUGH:
        return models_dir, None
    from engines.models import model_status

    needed: tuple[str, ...] = (model, ENCODERS[model])
    if mask in ("parsing", "both"):
        needed += ("face-parsing",)
    if all(model_status(models_dir, name) in ("present", "verified") for name in needed):
        return models_dir, None
    from export.random_models import populate_models_dir

    folder = cache_dir / "bench-random-models"
    if not all(model_status(folder, name) in ("present", "verified") for name in needed):
        log.info("writing random-weight %s models to %s", ", ".join(needed), folder)
        folder.mkdir(parents=True, exist_ok=True)
        populate_models_dir(folder, needed)
    note = (f"{', '.join(needed)} not installed in {models_dir}: measured with random-weight "
            f"models of the same architecture in {folder} (speed does not depend on weights)")
    return folder, note


def _source_photo(cache_dir: Path) -> Path:
    """A t1.jpg face that is not in the clip as the identity to wear."""
    import cv2

    from realtime.io.clip import source_portrait

    path = cache_dir / "bench-source-t1.png"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), source_portrait())
    return path


def bench_size(parts: Any, settings: Any, width: int, height: int, *, seconds: float,
               warmup: float, fps: float, paced: bool, clip_faces: int,
               meter: bool = True, enhance: str = "off",
               on_measure: Any = None) -> dict[str, Any]:
    """Run the pipeline on the clip at one size; returns the measured figures.
    ``on_measure()`` is called as the measured seconds begin (selftest resets its counters)."""
    from realtime.faces.track import FaceTracker
    from realtime.io.clip import ClipSource
    from realtime.io.sinks import NullSink
    from realtime.pipeline import Pipeline

    source = ClipSource(width, height, fps=fps, paced=paced, faces=clip_faces)
    reuse = getattr(parts.processor, "mask_reuse", None)
    if reuse is not None:
        reuse.clear()  # every row starts with new tracks: their first swaps parse
    settings = settings.with_changes(quality_meter=meter and parts.meter is not None,
                                     enhance=enhance)
    parts.processor.update_settings(settings)
    pipeline = Pipeline(source, parts.processor, parts.detector, parts.sources, [NullSink()],
                        settings, tracker=FaceTracker(detect_every=settings.detect_every),
                        meter=parts.meter if meter else None)
    if not paced:
        source.ready = lambda: pipeline.captured.pending == 0
    pipeline.start()
    try:
        time.sleep(warmup)
        pipeline.check()
        drops0 = pipeline.stats().drops
        pipeline.stats_recorder.reset()
        if reuse is not None:
            reuse.reset_counts()
        if on_measure is not None:
            on_measure()
        t0 = time.monotonic()
        time.sleep(seconds)
        elapsed = time.monotonic() - t0
        stats = pipeline.stats()
        rec = pipeline.stats_recorder
        totals = {name: rec.total(name) for name in ("in", "out", "processed", "swap")}
    finally:
        pipeline.stop()
        pipeline.wait_stopped()
    return {
        "size": f"{width}x{height}",
        "mask": settings.mask,
        **_parse_figures(reuse if getattr(parts.processor, "uses_parser", False) else None),
        "meter": "on" if settings.quality_meter else "off",
        "enhance": enhance,
        "enhance_ms_per_call": _enhance_ms(parts.processor) if enhance != "off" else None,
        "meter_reading": stats.format_meter(),
        "seconds": round(elapsed, 2),
        "fps_in": totals["in"] / elapsed,
        "fps_out": totals["out"] / elapsed,
        "fps_processed": totals["processed"] / elapsed,
        "swaps_per_s": totals["swap"] / elapsed,
        "swap_mode": stats.swap_mode,
        "faces": stats.faces,
        "latency_ms": asdict(stats.latency),
        "stages_ms": {name: asdict(s) for name, s in stats.stages.items()},
        "drops": {k: v - drops0.get(k, 0) for k, v in stats.drops.items()},
    }


def _enhance_ms(processor: Any) -> float | None:
    """The last enhancer call's wall time (all faces of one swap), or None."""
    lazy = getattr(processor, "enhancer", None)
    enhancer = lazy.get() if lazy is not None else None
    return None if enhancer is None else enhancer.last_ms


def _parse_figures(reuse: Any) -> dict[str, Any]:
    """The face parser's share of a run: faces parsed, masks reused, ms per parsed face."""
    if reuse is None:
        return {"parses": 0, "mask_reuses": 0, "parse_ms_per_face": None}
    times = sorted(reuse.recent_ms())
    return {"parses": reuse.parses, "mask_reuses": reuse.reuses,
            "parse_ms_per_face": times[len(times) // 2] if times else None,
            "mask_keep_s": round(reuse.keep_seconds, 2)}


def format_table(results: list[dict[str, Any]]) -> str:
    stages = [s for s in TABLE_STAGES if any(s in r["stages_ms"] for r in results)]
    head = (f"{'size':>18} {'fps in':>6} {'out':>6} {'swap/s':>6} {'lat p50':>7} {'p95':>6} "
            f"{'drops cap/out':>13} {'parse ms/n':>11} | "
            + " ".join(f"{s + ' p50/p95/p99':>22}" for s in stages))
    lines = [head, "-" * len(head)]
    for r in results:
        cells = []
        for s in stages:
            st = r["stages_ms"].get(s)
            cells.append(f"{'-':>22}" if st is None else
                         f"{st['p50']:>8.1f}/{st['p95']:>6.1f}/{st['p99']:>6.1f}")
        drops = f"{r['drops'].get('capture', 0)}/{r['drops'].get('output', 0)}"
        size = r["size"] + ("" if r.get("meter", "on") == "on" else " nm")
        if r.get("mask") is not None:
            size += f" {r['mask']}"
        if r.get("enhance", "off") != "off":
            size += f" +{r['enhance']}"
        parse = "-" if r.get("parse_ms_per_face") is None else \
            f"{r['parse_ms_per_face']:.0f}/{r['parses']}"
        lines.append(
            f"{size:>18} {r['fps_in']:>6.1f} {r['fps_out']:>6.1f} {r['swaps_per_s']:>6.2f} "
            f"{r['latency_ms']['p50']:>7.1f} {r['latency_ms']['p95']:>6.1f} {drops:>13} "
            f"{parse:>11} | "
            + " ".join(cells))
    return "\n".join(lines)


def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {"platform": platform.platform(), "python": platform.python_version(),
                            "cpus": os.cpu_count(), "processor": platform.processor()}
    with contextlib.suppress(OSError):  # not every OS has a load average
        info["load_average"] = [round(x, 2) for x in os.getloadavg()]
    return info


def run(args: argparse.Namespace) -> int:
    from realtime.config import default_cache_dir

    if args.model is None:
        args.model = PASSTHROUGH if args.motion else "simswap-224"
    if args.motion:
        from realtime.cli.bench_motion import run_motion

        return run_motion(args, ensure_models=ensure_models, source_photo=_source_photo,
                          machine_info=machine_info)
    if args.quality:
        return run_quality(args)
    if args.soak is not None:
        from realtime.cli.bench_soak import run_soak

        return run_soak(args, ensure_models=ensure_models, source_photo=_source_photo,
                        machine_info=machine_info)
    if args.detectors:
        return run_detectors(args)
    from realtime.session import build_parts, live_threads

    detect_width = check_detect_width(args.detect_width) or Settings().detect_width
    sizes = [parse_size(s) for s in args.sizes.split(",") if s.strip()]
    if not sizes:
        raise ValueError(f"--sizes: expected WxH[,WxH...], got {args.sizes!r}")
    if args.seconds <= 0 or args.warmup < 0:
        raise ValueError(f"--seconds must be > 0 and --warmup >= 0, got {args.seconds}, "
                         f"{args.warmup}")
    threads = check_threads(getattr(args, "threads", None)) or live_threads()
    cache_dir = default_cache_dir()
    models_dir, note = ensure_models(args.model, Path(args.models_dir), cache_dir, args.mask)
    if note:
        print(f"note: {note}")
    settings = Settings(models_dir=str(models_dir), model=args.model, engine=args.engine,
                        detector=args.detector, faces=args.faces,
                        detect_every=args.detect_every, swap_mode=args.swap_mode,
                        detect_width=detect_width, quality_meter=args.meter != "off",
                        texture=args.texture,
                        mask="parsing" if args.mask == "both" else args.mask)
    settings = settings.with_changes(**stability_changes(args))
    photos = [] if args.model == PASSTHROUGH else [_source_photo(cache_dir)]
    parts = build_parts(settings, models_dir, source_paths=photos, cache_dir=cache_dir,
                        threads=threads)
    load_start = machine_info().get("load_average")
    pacing = "unpaced" if args.unpaced else f"paced at {args.fps:g} fps"
    print(f"bench: {parts.model_note}; detector {parts.detector.name}; clip {pacing}, "
          f"{args.clip_faces} faces, swap {args.faces}; {args.warmup:g} s warm-up + "
          f"{args.seconds:g} s per size; {threads} ONNX Runtime thread(s) per model; "
          f"load average {load_start}")
    results = []
    try:
        from tqdm import tqdm

        meters = {"on": (True,), "off": (False,), "both": (True, False)}[args.meter]
        masks = ("box", "parsing") if args.mask == "both" else (settings.mask,)
        enhances = {"off": ("off",), "gfpgan": ("gfpgan",),
                    "both": ("off", "gfpgan")}[args.enhance]
        if args.enhance != "off":
            _require_enhancer(parts.processor)
        runs = [(size, mask, m, e) for size in sizes for mask in masks for m in meters
                for e in enhances]
        for (width, height), mask, meter, enhance in tqdm(runs, desc="bench", unit="run",
                                                          leave=False):
            results.append(bench_size(parts, settings.with_changes(mask=mask), width, height,
                                      seconds=args.seconds,
                                      warmup=args.warmup, fps=args.fps,
                                      paced=not args.unpaced, clip_faces=args.clip_faces,
                                      meter=meter, enhance=enhance))
    finally:
        close = getattr(parts.processor.swapper, "close", None)
        if close is not None:
            close()
    print(format_table(results) + ("\n(nm: identity meter off)" if args.meter != "on" else ""))
    for r in results:
        if r.get("enhance_ms_per_call") is not None:
            print(f"{r['size']} enhancer: {r['enhance_ms_per_call']:.0f} ms per swap call "
                  "(on the swap worker)")
    for r in results:
        if r["meter_reading"]:
            print(f"{r['size']} meter: {r['meter_reading']}")
    if args.json is not None:
        report = {"model": args.model, "model_note": parts.model_note, "fallback_note": note,
                  "engine": args.engine, "detector": parts.detector.name,
                  "paced_fps": None if args.unpaced else args.fps, "faces": args.faces,
                  "clip_faces": args.clip_faces, "detect_every": args.detect_every,
                  # what the detector searches (None: SCRFD, which ignores the setting)
                  "detect_width": getattr(parts.detector, "detect_width", None),
                  "swap_mode": args.swap_mode, "mask": args.mask, "threads": threads,
                  "texture": args.texture,
                  "machine": machine_info(),
                  "load_average_at_start": load_start, "results": results}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    return 0


def _require_enhancer(processor: Any) -> None:
    """Open the enhancer before timing (a missing model is an error here, not a silent
    'off' as live)."""
    lazy = getattr(processor, "enhancer", None)
    if lazy is None or lazy.wait() is None:
        why = getattr(lazy, "error", None) or "this processor takes no enhancer"
        raise ValueError(f"--enhance: the face enhancer cannot be opened ({why}); "
                         "install it with: models download gfpgan-1.4")


def run_quality(args: argparse.Namespace) -> int:
    """``bench --quality``: the paper's metrics over every source × target pair."""
    import numpy as np
    from tqdm import tqdm

    from realtime.config import default_cache_dir
    from realtime.faces.quality import load_meter_encoder
    from realtime.faces.sources import SourceBank, image_folder, read_image
    from realtime.frame import quality
    from realtime.session import build_parts, make_photo_detector

    if args.sources is None or args.targets is None:
        raise ValueError("--quality needs --sources DIR and --targets DIR_OR_VIDEO")
    if not args.sources.is_dir():
        raise ValueError(f"--sources {args.sources}: expected a folder of photos")
    if not args.targets.exists():
        raise ValueError(f"--targets {args.targets}: no such file or folder")
    if args.model == PASSTHROUGH:
        raise ValueError("--quality needs a swap model, not passthrough")
    strengths = parse_strengths(args.strengths)
    cache_dir = default_cache_dir()
    models_dir, note = ensure_models(args.model, Path(args.models_dir), cache_dir)
    if note:
        print(f"note: {note}")
    settings = Settings(models_dir=str(models_dir), model=args.model, engine=args.engine,
                        detector=args.detector, quality_meter=False)
    parts = build_parts(settings, models_dir, cache_dir=cache_dir,
                        threads=check_threads(args.threads))
    detector = make_photo_detector(settings, models_dir, parts.detector)
    bank = parts.sources if isinstance(parts.sources, SourceBank) else None
    if bank is None:
        raise RuntimeError("--quality: expected a source bank")
    photos = image_folder(args.sources)
    if not photos:
        raise ValueError(f"--sources {args.sources}: no photos in it")
    for photo in photos:
        bank.add([photo])
    sources = bank.sources
    encoder, encoder_name, independent = load_meter_encoder(args.model, models_dir,
                                                            engine=args.engine, threads=None)

    def detect(image: np.ndarray) -> list[Any]:
        return list(detector.detect(image))

    source_images = [read_image(p) for p in photos]
    vectors = []
    for image in source_images:
        found = detect(image)
        best = max(found, key=lambda d: d.area)
        vectors.append(encoder.identify(image, best.landmarks))
    source_vectors = np.stack(vectors)
    targets = quality.load_targets(args.targets)
    if not targets:
        raise ValueError(f"--targets {args.targets}: no images or frames in it")
    warnings = []
    from engines.models import MODELS, model_status

    for name in (args.model, ENCODERS[args.model], encoder_name):
        published = all(f.sha256 for f in MODELS[name].files)
        if not published or model_status(models_dir, name) != "verified":
            warnings.append(f"{name}: {quality.RANDOM_WEIGHTS_NOTE}")
    if note:
        warnings.append(note)
    if not independent:
        warnings.append(f"identity measured with {encoder_name}, the encoder that drove the "
                        "swap (install the other ArcFace for an independent measure)")
    by_strength: dict[str, Any] = {}
    for strength in strengths:
        parts.processor.update_settings(settings.with_changes(identity_strength=strength))
        with tqdm(total=len(sources) * len(targets), desc=f"quality s={strength:g}",
                  unit="pair") as bar:
            run_results = quality.evaluate(parts.processor, detect, encoder.identify,
                                           sources, source_vectors, targets,
                                           progress=lambda: bar.update(1))
        by_strength[f"{strength:g}"] = quality.summarize(
            run_results[0], [s.name for s in sources], source_vectors)
        if strength == 1.0 or strength == strengths[0]:
            results, outputs = run_results
    summary = quality.summarize(results, [s.name for s in sources], source_vectors)
    cross = summary.get("source_cross_cosine_mean")
    if cross is not None and cross > 0.9:
        warnings.append(f"the encoder hardly tells the sources apart (mean cosine between "
                        f"different sources {cross:.2f}): numbers are meaningless")
    report = {
        "model": args.model, "model_note": parts.model_note, "encoder": encoder_name,
        "encoder_independent": independent, "sources": [s.name for s in sources],
        "targets": [name for name, _ in targets], "summary": summary,
        "proxies": "ID retrieval: nearest source by cosine of the measuring encoder's "
                   "vectors; pose: L2 of yaw/pitch/roll (degrees) from solvePnP on the five "
                   "landmarks against a generic 3-D face; expression: landmark residual "
                   "after removing the best similarity transform, over the inter-ocular "
                   "distance",
        "warnings": warnings, "pairs": quality.pair_dicts(results), "machine": machine_info(),
    }
    if args.strengths is not None:
        report["strengths"] = by_strength
        print(format_strengths(by_strength))
    for warning in warnings:
        print(f"warning: {warning}")
    for key, value in summary.items():
        print(f"{key:>26}: {value:.4f}" if isinstance(value, float) else
              f"{key:>26}: {value}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    html_path = args.report or ((args.json.parent if args.json else Path.cwd())
                                / "quality-report.html")
    html_path.parent.mkdir(parents=True, exist_ok=True)
    quality.write_html(html_path, report, source_images, [t for _, t in targets], outputs)
    print(f"wrote {html_path}")
    return 0


def parse_strengths(text: str | None) -> list[float]:
    """``"0.5,1,1.5"`` → ``[0.5, 1.0, 1.5]`` (None → ``[1.0]``); each must be in 0..2."""
    from realtime.frame.strength import check_strength

    if text is None:
        return [1.0]
    try:
        values = [check_strength(float(part)) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise ValueError(f"--strengths: expected numbers in 0..2 like 0.5,1,1.5, got "
                         f"{text!r} ({exc})") from None
    if not values:
        raise ValueError(f"--strengths: expected at least one number, got {text!r}")
    return list(dict.fromkeys(values))


def format_strengths(by_strength: dict[str, Any]) -> str:
    """One row per strength: identity cosine, pose and expression error."""
    lines = [f"{'strength':>8} {'id cosine':>10} {'id top-1':>9} {'pose °':>8} "
             f"{'expression':>10}"]
    for key, row in by_strength.items():
        def cell(name: str, width: int, row: dict[str, Any] = row) -> str:
            value = row.get(name)
            return f"{value:>{width}.4f}" if isinstance(value, float) else f"{'-':>{width}}"
        lines.append(f"{key:>8} {cell('identity_cosine_mean', 10)} "
                     f"{cell('id_retrieval_top1', 9)} {cell('pose_error_deg_mean', 8)} "
                     f"{cell('expression_error_mean', 10)}")
    return "\n".join(lines)


def run_detectors(args: argparse.Namespace) -> int:
    """``bench --detectors``: every detector on the same held-out set in one run."""
    import tempfile

    import cv2
    from tqdm import tqdm

    from realtime.faces import detect_eval

    names = ([v.strip() for v in args.variants.split(",") if v.strip()]
             if args.variants else list(VARIANTS))
    unknown = [v for v in names if v not in VARIANTS]
    if not names or unknown:
        raise ValueError(f"--variants: expected some of {','.join(VARIANTS)}, got "
                         f"{args.variants!r}")
    if args.repeats < 1:
        raise ValueError(f"--repeats: expected >= 1, got {args.repeats}")
    detect_width = check_detect_width(args.detect_width) or Settings().detect_width
    threads = check_threads(args.threads) or 2
    photos = detect_eval.package_photos()
    if args.photos is not None:
        if not args.photos.is_dir():
            raise ValueError(f"--photos {args.photos}: expected a folder of photos")
        photos.update({f"own:{k}": v for k, v in detect_eval.folder_photos(args.photos).items()})
    cv2.setNumThreads(1)  # the detectors' own resizes on one core, as on the live worker
    with tempfile.TemporaryDirectory(prefix="swapcam-bench-detect-") as work:
        contenders = detect_eval.build_contenders(
            Path(args.models_dir), engine=args.engine, threads=threads,
            detect_width=detect_width, work_dir=Path(work))
        refs = detect_eval.reference_points(photos, contenders.references)
        samples = detect_eval.build_set(photos, refs, names)
        frames = detect_eval.timing_frames(photos["t1"])
        faces = sum(len(s.points) for s in samples)
        load = machine_info().get("load_average")
        method = (f"held-out set: {len(photos)} photos ({', '.join(photos)}) × {len(names)} "
                  f"variants ({', '.join(names)}) = {len(samples)} images, {faces} faces; "
                  f"reference points: {contenders.reference}, found on each original at "
                  f"{detect_eval.REFERENCE_WIDTH} px and carried through each variant's "
                  "transform; a detection matches a face when its box holds the face's eyes "
                  "and nose, others are false positives; NME = mean 5-point error / "
                  f"inter-ocular distance; ms = median of {args.repeats} runs on t1.jpg "
                  f"letterboxed into each size, {threads} ONNX Runtime thread(s), engine "
                  f"{args.engine}; load average {load}")
        print(f"bench --detectors: {method}")
        runnable = sum(1 for d in contenders.detectors.values() if not isinstance(d, str))
        with tqdm(total=runnable * len(samples), desc="detectors", unit="image",
                  leave=False) as bar:
            rows = detect_eval.compare(contenders.detectors, samples, frames,
                                       repeats=args.repeats, progress=lambda: bar.update(1))
    print(detect_eval.format_rows(rows))
    if args.json is not None:
        report = {"method": method, "reference": contenders.reference,
                  "photos": list(photos), "variants": names, "faces": faces,
                  "detect_width": detect_width, "threads": threads, "engine": args.engine,
                  "machine": machine_info(), "rows": [r.as_dict() for r in rows]}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    return 0
