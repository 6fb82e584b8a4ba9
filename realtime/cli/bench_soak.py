"""``swapcam bench --soak SECONDS``: the live pipeline for a long time with everything on.

Method: the real pipeline (capture, detect, track, swap worker, process, output threads)
runs on a looping clip (default: the built-in three-person clip; ``--input``: a video)
paced like a camera, with what a user turns on: the flow texture, the parsing mask, the
identity meter, a face map with two people, recording to a file and a virtual camera
(a null pyvirtualcam backend). The identity switches every 20 s and a setting changes
(and is saved, as the window does) every 60 s. Every ``--sample-every`` seconds
(default 10) a sample is taken (``bench_soak_verdict``). ``--faults`` injects, between
a quarter and three quarters of the run, the failures of ``bench_soak_faults``. The run
ends with a verdict (exit status 1 when it fails), a JSON (``--json``) and a plot
(``--plot``, matplotlib). SIGTERM ends the run early and cleanly, with its verdict.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from realtime.cli.bench_soak_faults import (
    FAULTS,
    FaultRecord,
    FlakySource,
    GatedSink,
    NullCameraBackend,
    SoakRig,
    mount_small_fs,
    playable_frames,
    unmount_small_fs,
)
from realtime.cli.bench_soak_verdict import (
    WARMUP_FRACTION,
    Counters,
    Sample,
    Sampler,
    Verdict,
    judge,
)

log = logging.getLogger(__name__)

SWITCH_EVERY_S = 20.0
SETTINGS_EVERY_S = 60.0
AGE_EVERY_S = 0.5
FAULTS_FROM, FAULTS_TO = 0.25, 0.75  # of the run: the first and last fifth stay quiet
# t1.jpg crops: two people of the clip (the face map's references) and two who are not
# (identities to wear); each enlarged ×2 like the bench's source portrait.
CLIP_PEOPLE = {"ref-left": (220, 430, 440, 630), "ref-right": (10, 230, 880, 1070)}
OTHER_PEOPLE = {"wear-a": (200, 460, 0, 220), "wear-b": (90, 330, 215, 430)}
SMALL_FS_MB = 48


def add_soak_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--soak", type=float, default=None, metavar="SECONDS",
                        help="instead of speed: run the live pipeline this long with every "
                        "feature on (flow texture, parsing mask, meter, a face map, "
                        "recording, a null virtual camera, identity switches, settings "
                        "changes), sampling memory, handles, threads, fps and latency; "
                        "ends with a verdict (exit 1 when it fails)")
    parser.add_argument("--faults", action="store_true",
                        help="with --soak: inject failures while live (camera lost, photo "
                        "deleted, model damaged, disk full, settings read-only, virtual "
                        "camera consumer gone, bad frames, SIGTERM while recording)")
    parser.add_argument("--plot", type=Path, default=None, metavar="OUT.png",
                        help="with --soak: memory, fps and latency over time, faults marked "
                        "(needs matplotlib)")
    parser.add_argument("--sample-every", type=float, default=10.0, metavar="S",
                        help="with --soak: seconds between samples (default 10)")
    parser.add_argument("--soak-size", default="640x480", metavar="WxH",
                        help="with --soak: the clip's size (default 640x480)")


def crop_photos(folder: Path, crops: dict[str, tuple[int, int, int, int]]) -> dict[str, Path]:
    import cv2

    from realtime.io.clip import _t1

    t1 = _t1()
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, (y0, y1, x0, x1) in crops.items():
        path = folder / f"{name}.png"
        image = cv2.resize(t1[y0:y1, x0:x1], None, fx=2.0, fy=2.0,
                           interpolation=cv2.INTER_CUBIC)
        cv2.imwrite(str(path), image)
        paths[name] = path
    return paths


def private_models(models: Path, work: Path, model: str) -> Path:
    """A models folder of our own where the swap model's folder is a copy (the damaged-
    model fault writes into it); every other entry links to ``models``."""
    own = work / "models"
    own.mkdir(parents=True, exist_ok=True)
    for entry in models.iterdir():
        target = own / entry.name
        if entry.name == model and entry.is_dir():
            shutil.copytree(entry, target, copy_function=shutil.copy2)
        elif entry.is_file():
            shutil.copy2(entry, target)
        else:
            target.symlink_to(entry.resolve(), target_is_directory=True)
    return own


class SoakClock:
    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def __call__(self) -> float:
        return time.monotonic() - self.t0


def open_files() -> list[str]:
    """What this process's file descriptors point at (Linux; empty elsewhere): the
    diagnosis when the handle count grows."""
    folder = Path("/proc/self/fd")
    if not folder.is_dir():
        return []
    targets = []
    for entry in list(folder.iterdir()):
        try:
            targets.append(os.readlink(entry))
        except OSError:  # closed meanwhile
            continue
    return sorted(targets)


def counters(pipeline: Any) -> Counters:
    stats = pipeline.stats()
    drops = sum(v for k, v in stats.drops.items() if not k.startswith("recorder-disk"))
    return Counters(frames_in=stats.frames_in, frames_out=stats.frames_out,
                    swaps=pipeline.stats_recorder.total("swap"), drops=drops,
                    latency_p50_ms=round(stats.latency.p50, 2),
                    latency_p95_ms=round(stats.latency.p95, 2))


def texture_ages(pipeline: Any, fps: float) -> list[float]:
    """Seconds since each live track's texture was swapped (by frame indices)."""
    _, newest = pipeline.preview()
    if newest is None:
        return []
    now = newest.frame.index
    ages = []
    for track in list(pipeline.tracker.tracks):
        texture = pipeline.textures.get(track.track_id)
        if texture is not None:
            ages.append(max(0, now - texture.frame_index) / fps)
    return ages


class FaultRunner:
    """Runs the faults one after another on their own thread at the planned times."""

    def __init__(self, rig: SoakRig, plan: list[tuple[float, str]],
                 stop: threading.Event) -> None:
        self.rig, self.plan, self._stop = rig, plan, stop
        self.records: list[FaultRecord] = []
        self.windows: list[tuple[float, float]] = []
        self.thread = threading.Thread(target=self._run, name="soak-faults", daemon=True)

    def _run(self) -> None:
        for at, kind in self.plan:
            if self._stop.wait(max(0.0, at - self.rig.clock())):
                return
            t0 = self.rig.clock()
            log.info("fault %s at %.0f s", kind, t0)
            try:
                record = FAULTS[kind](self.rig)
            except Exception as exc:  # a fault that cannot be injected is a finding
                log.exception("fault %s could not run", kind)
                record = FaultRecord(t0, kind, f"could not inject: {exc}", None, False)
            self.windows.append((t0, self.rig.clock()))
            record.duration_s = round(self.windows[-1][1] - t0, 2)
            self.records.append(record)
            log.info("fault %s: %s (recovered in %s s)", kind, record.message,
                     record.recovered_s)


def fault_plan(seconds: float, kinds: list[str]) -> list[tuple[float, str]]:
    """Evenly between ``FAULTS_FROM`` and ``FAULTS_TO`` of the run."""
    span = (FAULTS_TO - FAULTS_FROM) * seconds
    step = span / max(1, len(kinds))
    return [(FAULTS_FROM * seconds + i * step, kind) for i, kind in enumerate(kinds)]


def run_soak(args: argparse.Namespace, *, ensure_models: Callable[..., tuple[Path, str | None]],
             source_photo: Callable[[Path], Path],
             machine_info: Callable[[], dict[str, Any]], extra_sinks: Sequence[Any] = ()) -> int:
    """``extra_sinks`` join the run's outputs (a test adds one that leaks)."""
    from realtime.cli.live import parse_size

    seconds = float(args.soak)
    if seconds <= 0 or args.sample_every <= 0:
        raise ValueError(f"--soak and --sample-every must be > 0, got {seconds}, "
                         f"{args.sample_every}")
    if args.plot is not None:
        check_matplotlib()
    if args.input is not None and not Path(args.input).exists():
        raise ValueError(f"--input {args.input}: no such file")
    width, height = parse_size(args.soak_size)
    work = Path(tempfile.mkdtemp(prefix="swapcam-soak-"))
    try:
        report = soak(args, seconds, width, height, work, ensure_models=ensure_models,
                      source_photo=source_photo, extra_sinks=extra_sinks)
    finally:
        NullCameraBackend.unregister()  # pyvirtualcam's registry is process-wide
        small = work / "small-fs"
        if small.is_dir() and os.path.ismount(small):
            unmount_small_fs(small)
        shutil.rmtree(work, ignore_errors=True)
    report["machine"] = machine_info()
    verdict = report["verdict"]
    print(format_summary(report))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    if args.plot is not None:
        from realtime.cli.bench_soak_plot import plot_soak

        plot_soak(report, args.plot)
        print(f"wrote {args.plot}")
    return 0 if verdict["ok"] else 1


def check_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ValueError("--plot needs matplotlib, which is not installed: pip install "
                         "matplotlib (or the dev extra: pip install -e '.[dev]')") from None


def soak(args: argparse.Namespace, seconds: float, width: int, height: int, work: Path, *,
         ensure_models: Callable[..., tuple[Path, str | None]],
         source_photo: Callable[[Path], Path],
         extra_sinks: Sequence[Any] = ()) -> dict[str, Any]:
    from realtime.config import Settings, default_cache_dir
    from realtime.io.sinks import AI_LABEL, RecorderSink, VirtualCameraSink
    from realtime.pipeline import Pipeline
    from realtime.session import PASSTHROUGH, build_parts, live_threads
    from realtime.settings_store import SettingsSaveError, SettingsStore

    model = args.model or "simswap-224"
    cache_dir = default_cache_dir()
    models, note = ensure_models(model, Path(args.models_dir), cache_dir, "parsing")
    if note:
        print(f"note: {note}")
    if model != PASSTHROUGH:
        models = private_models(models, work, model)
    photos_dir = work / "photos"
    photos_dir.mkdir(parents=True)
    shutil.copyfile(source_photo(cache_dir), photos_dir / "portrait.png")
    wear = crop_photos(photos_dir, OTHER_PEOPLE)
    refs = crop_photos(work / "refs", CLIP_PEOPLE)
    spare = crop_photos(work / "spare", {"spare": CLIP_PEOPLE["ref-right"]})["spare"]
    face_map = (f"{refs['ref-left']}={wear['wear-a']}", f"{refs['ref-right']}={wear['wear-b']}")
    settings = Settings(models_dir=str(models), model=model, engine=args.engine,
                        detector=args.detector, faces="all", texture="flow",
                        mask="parsing", quality_meter=True,
                        face_map=face_map if model != PASSTHROUGH else ())
    threads = live_threads()
    parts = build_parts(settings, models, source_paths=[photos_dir / "portrait.png"],
                        cache_dir=cache_dir, threads=threads)
    fps = float(args.fps)
    source = FlakySource(make_source(args.input, width, height, fps))
    recorder = RecorderSink(work / "recording.mkv", width, height, fps)
    sinks: list[Any] = [recorder, VirtualCameraSink(width, height, fps,
                                                    backend=NullCameraBackend.register(),
                                                    label=AI_LABEL)]
    small_fs: Path | None = None
    small_recorder = None
    gated: Any = None
    if args.faults:
        folder = work / "small-fs"
        small_fs = folder if mount_small_fs(folder, SMALL_FS_MB) else None
        folder.mkdir(parents=True, exist_ok=True)
        small_recorder = RecorderSink(folder / "recording.mkv", width, height, fps)
        gated = GatedSink(small_recorder)
        sinks.append(gated)
    sinks += list(extra_sinks)
    store = SettingsStore(work / "settings" / "settings.toml")
    store.path.parent.mkdir(parents=True, exist_ok=True)
    store.save(settings)
    pipeline = Pipeline(source, parts.processor, parts.detector, parts.sources, sinks,
                        settings, face_map=parts.face_map, meter=parts.meter)
    clock = SoakClock()
    rig = SoakRig(pipeline, source, parts.sources, photos_dir, spare, models, model,
                  recorder, small_recorder, small_fs, store, sinks[1], clock,
                  live_child=live_command(args, cache_dir), work_dir=work,
                  small_gate=gated.gate if args.faults else None)
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set()) \
        if threading.current_thread() is threading.main_thread() else None
    kinds = [k for k in FAULTS if not (model == PASSTHROUGH and k in ("model_damaged",
                                                                      "source_photo"))]
    runner = FaultRunner(rig, fault_plan(seconds, kinds) if args.faults else [], stop)
    sampler = Sampler()
    warnings: list[str] = []
    files_after_warmup: list[str] = []
    print(f"soak: {parts.model_note}; detector {parts.detector.name}; {width}x{height} at "
          f"{fps:g} fps for {seconds:g} s; sample every {args.sample_every:g} s; faults "
          f"{'on' if args.faults else 'off'}; work folder {work}")
    pipeline.start()
    try:
        clock.t0 = time.monotonic()
        sampler.start(0.0, counters(pipeline))
        runner.thread.start()
        next_sample, next_switch, next_settings, next_age = (
            args.sample_every, SWITCH_EVERY_S, SETTINGS_EVERY_S, 0.0)
        while not stop.is_set() and clock() < seconds and pipeline.error is None:
            now = clock()
            if now >= next_age:
                sampler.note_texture_ages(texture_ages(pipeline, fps))
                next_age += AGE_EVERY_S
            if now >= next_switch:
                if not rig.hold_identity.is_set():
                    pipeline.next_source()
                next_switch += SWITCH_EVERY_S
            if now >= next_settings:
                next_settings += SETTINGS_EVERY_S
                changed = toggle_settings(pipeline.settings)
                pipeline.update_settings(changed)
                try:
                    store.save(changed)
                except SettingsSaveError as exc:
                    warnings.append(f"{now:.0f} s: {exc}")
            if now >= next_sample:
                row = sampler.sample(now, counters(pipeline))
                next_sample += args.sample_every
                print(format_sample(row), flush=True)
                if not files_after_warmup and now >= WARMUP_FRACTION * seconds:
                    files_after_warmup = open_files()
            time.sleep(0.05)
        ended_early = clock() < seconds
        files_end = open_files()
        stages = {name: {"p50": round(st.p50, 1), "p95": round(st.p95, 1)}
                  for name, st in pipeline.stats().stages.items()}
    finally:
        stop.set()
        if runner.thread.is_alive():
            runner.thread.join(60)
        pipeline.stop(timeout=3.0, raise_error=False)
        pipeline.wait_stopped()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    errors = run_errors(pipeline, recorder, sinks[1], runner.records)
    done = [r.kind for r in runner.records]
    if not ended_early:
        errors += [f"fault {kind} planned at {at:.0f} s did not finish before the end"
                   for at, kind in runner.plan if kind not in done]
    if ended_early and pipeline.error is None:
        warnings.append(f"ended early at {clock():.0f} s (SIGTERM)")
    sent = recorder.stats().frames_sent
    played = playable_frames(recorder.path)
    if played < sent - max(2.0, fps):  # at most the last second may be missing
        errors.append(f"the recording does not play to the end: {played} of {sent} frames")
    duration = min(seconds, clock())

    def quiet(sample: Sample) -> bool:
        start = sample.t - args.sample_every
        return not any(a < sample.t and b > start for a, b in runner.windows)

    verdict: Verdict = judge(sampler.samples, duration, errors, quiet)
    return {"samples": [s.as_dict() for s in sampler.samples],
            "faults": [r.as_dict() for r in runner.records],
            "verdict": verdict.as_dict(),
            "run": {"seconds": round(duration, 1), "model": model, "model_note":
                    parts.model_note, "fallback_note": note, "size": f"{width}x{height}",
                    "fps": fps, "input": str(args.input) if args.input else "built-in clip",
                    "sample_every_s": args.sample_every, "threads_per_model": threads,
                    "recording_frames": {"sent": sent, "played": played},
                    "stages_ms_at_end": stages,
                    "warnings": warnings},
            "diagnostics": {"open_files_after_warmup": files_after_warmup,
                            "open_files_end": files_end}}


def make_source(path: Path | None, width: int, height: int, fps: float) -> Any:
    if path is None:
        from realtime.io.clip import ClipSource

        return ClipSource(width, height, fps=fps, faces=3)
    from realtime.io.capture import open_source

    return open_source(str(path), width=width, height=height, fps=fps, loop=True)


def toggle_settings(settings: Any) -> Any:
    """The periodic settings change: identity strength and detection interval."""
    strength = 0.9 if settings.identity_strength == 1.0 else 1.0
    return settings.with_changes(identity_strength=strength,
                                 detect_every=4 if settings.detect_every == 5 else 5)


def run_errors(pipeline: Any, recorder: Any, vcam: Any,
               records: list[FaultRecord]) -> list[str]:
    errors = []
    if pipeline.error is not None:
        errors.append(f"worker error: {pipeline.error}")
    if recorder.error is not None:
        errors.append(f"recorder: {recorder.error}")
    if vcam.error is not None:
        errors.append(f"virtual camera: {vcam.error}")
    errors += [f"fault {r.kind} at {r.t:.0f} s: {r.message}" for r in records if not r.ok]
    return errors


def live_command(args: argparse.Namespace, cache_dir: Path) -> Callable[[Path], list[str]]:
    """The headless live app on a short clip file, recording to the given path (for the
    SIGTERM fault): passthrough, so it starts in seconds beside the soak."""
    def command(out: Path) -> list[str]:
        clip = write_clip(out.parent / "sigterm-clip.mp4")
        main = Path(__file__).resolve().parents[2] / "main.py"
        return [sys.executable, str(main), "live", "--no-window", "--camera", str(clip),
                "--model", "passthrough", "--record", str(out), "--seconds", "120"]
    return command


def write_clip(path: Path, seconds: float = 2.0, fps: float = 15.0) -> Path:
    """A short video of the built-in clip (the live app loops it)."""
    import cv2

    from realtime.io.clip import SyntheticClip

    if path.exists():
        return path
    clip = SyntheticClip(320, 240, faces=1)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, (320, 240))
    try:
        for i in range(round(seconds * fps)):
            writer.write(clip.render(i))
    finally:
        writer.release()
    return path


def format_sample(s: Sample) -> str:
    age = "-" if s.texture_age_p95_s is None else f"{s.texture_age_p95_s:.1f}"
    return (f"{s.t:>7.0f} s  rss {s.rss_mb:7.1f} MB  uss {s.uss_mb:7.1f}  fds {s.fds:4d}  "
            f"threads {s.threads:3d}  gc {s.gc_objects:8d}  fps {s.fps_in:5.1f}/"
            f"{s.fps_out:5.1f}  drops {s.drops:4d}  lat {s.latency_p50_ms:6.1f}/"
            f"{s.latency_p95_ms:6.1f} ms  tex age p95 {age} s  swaps/s {s.swaps_per_s:.2f}")


def format_summary(report: dict[str, Any]) -> str:
    v = report["verdict"]
    lines = [f"verdict: {'PASS' if v['ok'] else 'FAIL'}  rss growth {v['rss_growth']}  "
             f"fds growth {v['fds_growth']}  threads growth {v['threads_growth']}  "
             f"fps out drop {v['fps_out_drop']}"]
    lines += [f"  {k}: {val}" for k, val in v.get("figures", {}).items()]
    for fault in report["faults"]:
        lines.append(f"  fault {fault['kind']:<20} at {fault['t']:6.0f} s  "
                     f"{'ok ' if fault['ok'] else 'BAD'} recovered in "
                     f"{fault['recovered_s']} s: {fault['message']}")
    lines += [f"  error: {e}" for e in v["errors"]]
    lines += [f"  warning: {w}" for w in report["run"]["warnings"]]
    return "\n".join(lines)

