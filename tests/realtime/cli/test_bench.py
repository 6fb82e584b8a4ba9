"""``swapcam bench``: the synthetic clip, the table and JSON, the model fallback."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import main
from realtime.cli.bench import format_table
from realtime.io.clip import ClipSource, SyntheticClip
from tests.dlib_extra import require_dlib


def _tensorrt_reason() -> str | None:
    """None when the TensorRT backend can run here, else why not."""
    from engines.registry import backend_status

    return backend_status().get("tensorrt", "unknown")


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def test_clip_is_deterministic_moves_and_holds_detectable_faces() -> None:
    require_dlib()
    from realtime.faces.detect import DlibDetector

    clip = SyntheticClip(640, 480)
    a, b = clip.render(10), SyntheticClip(640, 480).render(10)
    assert np.array_equal(a, b)  # same clip on every run
    assert np.array_equal(clip.render(3), clip.render(3 + clip.length))  # loops seamlessly
    assert float(np.abs(clip.render(0).astype(int) - clip.render(15)).mean()) > 5  # it moves
    brightness = [float(clip.render(i).mean()) for i in (0, 30, 90)]
    assert max(brightness) - min(brightness) > 10  # lighting changes
    detector = DlibDetector(detect_width=640, upsample=0)
    counts = [len(detector.detect(clip.render(i))) for i in range(0, clip.length, 12)]
    # every face is detectable; a turned face may be missed now and then (the tracker
    # carries it), as with a real camera
    assert min(counts) >= 2 and counts.count(3) >= 0.7 * len(counts), counts


def test_clip_source_pacing() -> None:
    import time

    source = ClipSource(320, 240, fps=50)
    source.open()
    t0 = time.monotonic()
    frames = [source.read() for _ in range(26)]
    took = time.monotonic() - t0
    source.close()
    assert all(f is not None for f in frames)
    assert [f.index for f in frames if f is not None] == list(range(26))
    assert 0.4 < took < 1.0  # 25 intervals of 20 ms


def test_passthrough_bench_writes_table_and_json(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    require_dlib()
    out = tmp_path / "bench.json"
    code = main.main(["--models-dir", str(tmp_path / "models"), "bench", "--model",
                      "passthrough", "--detector", "dlib", "--sizes", "320x240,480x360",
                      "--seconds", "1.5", "--warmup", "0.7", "--detect-width", "800",
                      "--json", str(out)])
    text = capsys.readouterr().out
    assert code == 0, text
    assert "320x240" in text and "480x360" in text and "composite p50/p95/p99" in text
    report = json.loads(out.read_text())
    assert report["model"] == "passthrough"
    assert report["detect_width"] == 800  # read back from the detector the bench ran
    assert report["machine"]["cpus"] >= 1
    assert [r["size"] for r in report["results"]] == ["320x240", "480x360"]
    for r in report["results"]:
        assert 20 < r["fps_in"] < 40  # paced at 30 fps
        assert r["fps_out"] > 15
        assert r["swaps_per_s"] > 10  # passthrough "swaps" on every frame it keeps up with
        assert r["faces"] >= 1
        assert set(r["stages_ms"]) >= {"capture", "track", "align", "composite", "sink"}
        assert r["latency_ms"]["p95"] > 0


def test_format_table_shows_missing_stages_as_dashes() -> None:
    stage = {"p50": 1.0, "p95": 2.0, "p99": 3.0, "mean": 1.5, "count": 3}
    result = {"size": "64x64", "fps_in": 30.0, "fps_out": 29.0, "swaps_per_s": 0.5,
              "latency_ms": {"p50": 40.0, "p95": 80.0}, "drops": {"capture": 2},
              "stages_ms": {"track": stage}}
    other = {**result, "size": "128x128", "stages_ms": {"swap": stage}}
    table = format_table([result, other])
    assert "track p50/p95/p99" in table and "swap p50/p95/p99" in table
    first, second = table.splitlines()[2:]
    assert first.split("|")[1].split() == ["1.0/", "2.0/", "3.0", "-"]
    assert second.split("|")[1].split() == ["-", "1.0/", "2.0/", "3.0"]


def test_bench_rejects_bad_sizes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main.main(["--models-dir", str(tmp_path), "bench", "--model", "passthrough",
                      "--sizes", "huge"])
    assert code == 1
    assert "expected WIDTHxHEIGHT" in capsys.readouterr().err
    code = main.main(["--models-dir", str(tmp_path), "bench", "--model", "passthrough",
                      "--detect-width", "4000"])
    assert code == 1
    assert "--detect-width: expected 160..3840, got 4000" in capsys.readouterr().err


def test_bench_help_documents_detect_width(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main.main(["bench", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--detect-width N" in help_text and "default: 640" in help_text


def test_missing_models_fall_back_to_random_weights(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    require_dlib()
    pytest.importorskip("export.random_models")
    out = tmp_path / "bench.json"
    code = main.main(["--models-dir", str(tmp_path / "empty"), "bench", "--model",
                      "inswapper-128", "--engine", "onnxruntime-cpu", "--detector", "dlib",
                      "--sizes", "320x240", "--seconds", "1.5", "--warmup", "1",
                      "--json", str(out)])
    text = capsys.readouterr().out
    assert code == 0, text
    assert "random-weight" in text
    report = json.loads(out.read_text())
    assert "random-weight" in report["fallback_note"]
    assert report["results"][0]["swaps_per_s"] > 0.5


def test_tensorrt_is_accepted_and_explains_itself_without_a_gpu(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    require_dlib()
    pytest.importorskip("export.random_models")
    if _tensorrt_reason() is None:
        pytest.skip("TensorRT is usable here: covered by the gpu test")
    code = main.main(["--models-dir", str(tmp_path / "empty"), "bench", "--model",
                      "inswapper-128", "--engine", "tensorrt", "--detector", "dlib",
                      "--sizes", "320x240", "--seconds", "1"])
    assert code == 1
    assert "tensorrt" in capsys.readouterr().err.lower()


@pytest.mark.gpu
def test_tensorrt_bench_on_a_gpu(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reason = _tensorrt_reason()
    if reason is not None:
        pytest.skip(f"TensorRT is not usable here: {reason}")
    out = tmp_path / "bench.json"
    code = main.main(["--models-dir", str(tmp_path / "empty"), "bench", "--model",
                      "simswap-224", "--engine", "tensorrt", "--sizes", "1280x720",
                      "--seconds", "3", "--json", str(out)])
    assert code == 0, capsys.readouterr()
    result = json.loads(out.read_text())["results"][0]
    assert result["swap_mode"] == "sync"
    assert result["fps_out"] > 25


def _installed_mesh(models_dir: Path, face_landmark_tflite: Path) -> None:
    from engines.models import import_model

    assert import_model(face_landmark_tflite, models_dir) == ["face-mesh"]


@pytest.mark.slow
def test_bench_detectors_side_by_side(tmp_path: Path, face_landmark_tflite: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    """One photo folder × two variants: every detector in one table, with the method."""
    import shutil

    from realtime.faces.detect import dlib_available

    models_dir = tmp_path / "models"
    _installed_mesh(models_dir, face_landmark_tflite)
    own = tmp_path / "own"
    own.mkdir()
    import cv2

    from realtime.faces.detect_eval import package_photos

    cv2.imwrite(str(own / "hanks.png"), package_photos()["tom_hanks"])
    shutil.copyfile(own / "hanks.png", own / "notes.txt")  # not a photo suffix: ignored
    out = tmp_path / "detectors.json"
    code = main.main(["--models-dir", str(models_dir), "bench", "--detectors", "--variants",
                      "original,rot+40", "--repeats", "1", "--photos", str(own),
                      "--json", str(out)])
    text = capsys.readouterr().out
    assert code == 0, text
    assert "reference points:" in text and "NME = mean 5-point error" in text
    assert "ms 640×360" in text and "ms 1280×720" in text
    report = json.loads(out.read_text())
    assert report["variants"] == ["original", "rot+40"]
    assert "own:hanks" in report["photos"]
    rows = {r["detector"].split(" (")[0]: r for r in report["rows"]}
    assert "SCRFD-10GF" in rows and rows["SCRFD-10GF"]["missing"].startswith("not installed")
    if dlib_available():
        assert rows["dlib HOG + 68 pt"]["found"] >= 1
    else:
        assert "not installed" in rows["dlib HOG + 68 pt"]["missing"]
        assert "not installed" in text
    mesh = rows["RetinaFace + FaceMesh"]
    retina = rows["RetinaFace"]
    faces = mesh["faces"]
    assert faces == retina["faces"] >= 2 * 5  # at least t1's and Hanks' faces, twice
    assert mesh["recall"] >= 0.8 and mesh["false_positives"] <= 2
    assert mesh["nme_tilt40"] < 0.15 and mesh["nme"] < 0.1
    assert set(mesh["ms"]) == {"640x360", "1280x720"} and min(mesh["ms"].values()) > 0


def test_bench_detectors_rejects_unknown_variants(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    code = main.main(["--models-dir", str(tmp_path), "bench", "--detectors", "--variants",
                      "original,upside-down"])
    assert code != 0
    assert "upside-down" in capsys.readouterr().err
