"""``main.py bench --quality`` end to end on tiny inputs with random-weight models."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

import main


@pytest.mark.slow
def test_quality_bench_writes_the_table_json_and_report(
    random_models_dir: Path, t1_bgr: np.ndarray, face_photos: dict[str, Path], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))  # vectors cached here
    sources = tmp_path / "sources"
    sources.mkdir()
    for name, photo in face_photos.items():
        (sources / f"{name}{photo.suffix}").write_bytes(photo.read_bytes())
    targets = tmp_path / "targets"
    targets.mkdir()
    cv2.imwrite(str(targets / "guest.png"), t1_bgr[60:420, 0:420])  # one person of t1
    out = tmp_path / "out" / "quality.json"
    report = tmp_path / "out" / "report.html"
    rc = main.main(["--models-dir", str(random_models_dir), "bench", "--quality",
                    "--model", "inswapper-128", "--engine", "onnxruntime-cpu",
                    "--detector", "retinaface", "--sources", str(sources),
                    "--targets", str(targets), "--json", str(out), "--report", str(report)])
    text = capsys.readouterr()
    assert rc == 0, text.err
    assert "id_retrieval_top1" in text.out  # the table on the terminal

    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["model"] == "inswapper-128"
    assert data["sources"] == ["astronaut", "grace_hopper"]
    assert data["targets"] == ["guest.png"]
    assert isinstance(data["encoder"], str) and data["encoder"].startswith("arcface")
    summary = data["summary"]
    assert summary["pairs"] == 2 and summary["measured"] == 2
    assert 0.0 <= summary["id_retrieval_top1"] <= 1.0
    assert -1.0 <= summary["identity_cosine_mean"] <= 1.0
    assert summary["pose_error_deg_mean"] >= 0.0
    assert summary["expression_error_mean"] >= 0.0
    assert summary["swaps_per_s"] > 0 and math.isfinite(summary["swaps_per_s"])
    assert {(p["source"], p["target"]) for p in data["pairs"]} == {
        ("astronaut", "guest.png"), ("grace_hopper", "guest.png")}
    assert "solvePnP" in data["proxies"]  # the proxies used are stated
    # random weights: the report says the numbers mean nothing
    assert any("meaningless" in w for w in data["warnings"])

    html = report.read_text(encoding="utf-8")
    assert "meaningless" in html and "random-weight" in html
    assert html.count("<img ") == 2 + 1 + 2  # sources, target, one output per pair
