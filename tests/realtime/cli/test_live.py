"""``swapcam live``: arguments, settings, and headless runs on a real video file."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

import main
from realtime.cli import live as live_cli
from realtime.cli.live import configure_parser, parse_size, settings_from_args
from realtime.config import Settings
from tests.dlib_extra import require_dlib
from tests.realtime.media import write_mjpeg


@pytest.fixture(autouse=True)
def _isolated_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never read or write the real user's settings and caches."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def clip_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-second MJPEG AVI of the synthetic bench clip (three moving faces)."""
    from realtime.io.clip import SyntheticClip

    clip = SyntheticClip(640, 480)
    return write_mjpeg(tmp_path_factory.mktemp("video") / "clip.avi",
                       (clip.render(i) for i in range(60)), 30.0)


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    configure_parser(parser)
    args = parser.parse_args(argv)
    args.models_dir = Path("/models")
    return args


def test_parse_size() -> None:
    assert parse_size("1280x720") == (1280, 720)
    assert parse_size("640×480") == (640, 480)
    with pytest.raises(ValueError, match="expected WIDTHxHEIGHT"):
        parse_size("big")


def test_settings_from_args_overrides_only_what_was_given() -> None:
    base = Settings(detect_every=7, faces="largest", camera="2")
    args = _parse("--camera", "clip.mp4", "--source", "a.jpg", "--source", "b.jpg",
                  "--swap-mode", "async", "--size", "640x480", "--record", "out.mkv")
    s = settings_from_args(args, base)
    assert (s.camera, s.sources, s.swap_mode) == ("clip.mp4", ("a.jpg", "b.jpg"), "async")
    assert (s.camera_width, s.camera_height, s.record_path) == (640, 480, "out.mkv")
    assert (s.detect_every, s.faces) == (7, "largest")  # kept from the saved settings
    assert s.models_dir == "/models"
    with pytest.raises(ValueError, match="detect-every"):
        settings_from_args(_parse("--detect-every", "0"), base)


def test_texture_arguments_reach_the_settings() -> None:
    base = Settings(texture="static", live_mouth=True)
    kept = settings_from_args(_parse(), base)
    assert (kept.texture, kept.live_mouth) == ("static", True)
    given = settings_from_args(_parse("--texture", "flow", "--no-live-mouth"), base)
    assert (given.texture, given.live_mouth) == ("flow", False)
    with pytest.raises(SystemExit):
        _parse("--texture", "warp")


def test_fade_and_refresh_order_reach_the_settings() -> None:
    from realtime.cli.live import stability_changes
    from realtime.config import SettingError

    base = Settings(fade_ms=100.0, refresh_order="stalest")
    kept = settings_from_args(_parse(), base)
    assert (kept.fade_ms, kept.refresh_order) == (100.0, "stalest")
    given = settings_from_args(_parse("--fade", "0", "--refresh-order", "error"), base)
    assert (given.fade_ms, given.refresh_order) == (0.0, "error")
    assert stability_changes(_parse("--fade", "300")) == {"fade_ms": 300.0}
    with pytest.raises(SettingError, match="fade_ms"):
        settings_from_args(_parse("--fade", "-5"), base)
    with pytest.raises(SystemExit):
        _parse("--refresh-order", "fair")




def test_window_path_rejects_a_bad_detect_width_before_opening() -> None:
    args = _parse("--detect-width", "10")
    with pytest.raises(ValueError, match="--detect-width"):
        live_cli.run(args)  # not --no-window: checked before the window is imported


def test_headless_passthrough_prints_a_stats_line_every_second(
        clip_video: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    require_dlib()
    code = main.main(["--models-dir", str(tmp_path / "models"), "live", "--camera",
                      str(clip_video), "--model", "passthrough", "--detector", "dlib",
                      "--no-window", "--seconds", "2.5"])
    out = capsys.readouterr().out
    assert code == 0, out
    lines = [line for line in out.splitlines() if line.startswith("fps in")]
    assert len(lines) >= 2, out
    last = lines[-1]
    fps_out = float(last.split("out")[1].split("|")[0])
    assert fps_out > 15, last
    assert "latency p50" in last and "detect=" in last and "composite=" in last
    assert "done:" in out


@pytest.mark.slow
def test_headless_swap_with_a_real_model_and_recording(
        clip_video: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path,
        face_photos: dict[str, Path]) -> None:
    """inswapper-128 (random weights, official format) swapping live, recorded to a file."""
    require_dlib()
    random_models = pytest.importorskip("export.random_models")
    models = tmp_path / "models"
    random_models.populate_models_dir(models, ["inswapper-128", "arcface-w600k"])
    record = tmp_path / "out.mkv"
    code = main.main(["--models-dir", str(models), "live", "--camera", str(clip_video),
                      # two photos of "one person", joined as the window stores them
                      "--source", os.pathsep.join(str(face_photos[name]) for name in
                                                  ("grace_hopper", "astronaut")), "--model",
                      "inswapper-128", "--engine", "onnxruntime-cpu", "--detector", "dlib",
                      "--no-window", "--seconds", "3", "--record", str(record)])
    out = capsys.readouterr().out
    assert code == 0, out
    lines = [line for line in out.splitlines() if line.startswith("fps in")]
    assert lines and "swap=" in lines[-1], out
    swaps = float(lines[-1].split("swaps/s")[1].split("(")[0])
    assert swaps > 1.0, lines[-1]
    assert record.exists() and record.stat().st_size > 1000
    capture = cv2.VideoCapture(str(record))
    ok, frame = capture.read()
    capture.release()
    assert ok and frame.shape == (480, 640, 3) and float(np.std(frame)) > 5


def test_missing_source_is_a_clear_error(clip_video: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    code = main.main(["--models-dir", str(tmp_path), "live", "--camera", str(clip_video),
                      "--no-window", "--seconds", "1"])
    assert code == 1
    assert "no source identity" in capsys.readouterr().err


def test_window_mode_hands_over_to_the_ui(monkeypatch: pytest.MonkeyPatch) -> None:
    import realtime.ui.app as app
    from realtime.cli import live as live_cli

    seen: list[argparse.Namespace] = []
    def fake_window(args: argparse.Namespace) -> int:
        seen.append(args)
        return 0

    monkeypatch.setattr(app, "run_window", fake_window)
    args = _parse("--camera", "0")
    assert live_cli.run(args) == 0
    assert seen == [args]


def test_missing_virtual_camera_is_reported_and_the_stream_goes_on(
        clip_video: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    require_dlib()
    if any(Path("/dev").glob("video*")):
        pytest.skip("a video device exists here: the virtual camera may really open")
    code = main.main(["--models-dir", str(tmp_path / "models"), "live", "--camera",
                      str(clip_video), "--model", "passthrough", "--detector", "dlib",
                      "--no-window", "--virtual-cam", "--seconds", "1.5"])
    out = capsys.readouterr().out
    assert code == 1, out  # the stream went on, but an asked-for output did not run
    assert "warning: virtual camera" in out and "v4l2loopback" in out
    assert any(line.startswith("fps in") for line in out.splitlines())


def test_ctrl_c_stops_cleanly(clip_video: Path, tmp_path: Path) -> None:
    require_dlib()
    import os
    import signal
    import subprocess
    import sys
    import time

    root = Path(__file__).resolve().parents[3]
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "c"),
           "XDG_CACHE_HOME": str(tmp_path / "k")}
    proc = subprocess.Popen(
        [sys.executable, str(root / "main.py"), "--models-dir", str(tmp_path), "live",
         "--camera", str(clip_video), "--model", "passthrough", "--detector", "dlib",
         "--no-window"],
        cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        assert proc.stdout is not None
        for line in proc.stdout:  # wait for the first stats line: it is running
            if line.startswith("fps in") or time.monotonic() > deadline:
                break
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == 0, out
    assert "stopping (Ctrl-C)" in out and "done:" in out


def test_engine_choices_are_what_the_registry_runs() -> None:
    from engines.registry import PREFERENCES
    from realtime.cli import bench as bench_cli
    from realtime.cli import swap as swap_cli
    from realtime.ui.controls import ENGINE_LABELS

    expected = ("auto", "tensorrt", "onnxruntime-cuda", "onnxruntime-directml",
                "onnxruntime-coreml", "onnxruntime-cpu", "openvino")
    assert expected == PREFERENCES
    assert tuple(ENGINE_LABELS) == expected
    for module in (live_cli, swap_cli, bench_cli):
        parser = argparse.ArgumentParser()
        module.configure_parser(parser)
        engine = next(a for a in parser._actions if a.dest == "engine")
        assert tuple(engine.choices or ()) == expected, module.__name__
    with pytest.raises(SystemExit):
        _parse("--engine", "torch")






def _help_text() -> str:
    parser = argparse.ArgumentParser()
    configure_parser(parser)
    return parser.format_help()






def test_max_faces_setting_and_its_limits() -> None:
    """Issue 15 item 5: ``live`` had no limit on faces per frame."""
    assert Settings().max_faces == 4
    assert settings_from_args(_parse("--max-faces", "2")).max_faces == 2
    assert settings_from_args(_parse(), Settings(max_faces=7)).max_faces == 7
    for bad in ("0", "33", "-1"):
        with pytest.raises(ValueError, match=r"--max-faces: expected 1\.\.32"):
            settings_from_args(_parse("--max-faces", bad))


def test_headless_record_that_cannot_open_its_file_fails(
        clip_video: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 15 item 6: a ``--record`` that cannot open its file warned and exited 0."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the recording's folder should be")
    code = main.main(["--models-dir", str(tmp_path / "models"), "live", "--camera",
                      str(clip_video), "--model", "passthrough", "--detector", "retinaface",
                      "--no-window", "--seconds", "1", "--record",
                      str(blocker / "out.mkv")])
    out = capsys.readouterr().out
    assert code == 1, out
    assert "warning: " in out and "out.mkv" in out
    assert "error: not every output ran" in out
