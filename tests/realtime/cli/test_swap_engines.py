"""``main.py swap --engine openvino`` end to end (random-weight inswapper, t1.jpg)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

import main

pytest.importorskip("openvino")


def test_swap_runs_on_openvino_and_matches_onnxruntime(
    random_models_dir: Path, t1_path: Path, face_photos: dict[str, Path], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    outputs = {}
    for engine in ("openvino", "onnxruntime-cpu"):
        out = tmp_path / f"{engine}.png"
        rc = main.main(["--models-dir", str(random_models_dir), "swap", "--engine", engine,
                        "--detector", "retinaface", "--model", "inswapper-128",
                        "--faces", "largest", "--mask", "box",
                        "--cache-dir", str(tmp_path / "cache"),
                        "--source", str(face_photos["astronaut"]), "--input", str(t1_path),
                        "--output", str(out)])
        text = capsys.readouterr()
        assert rc == 0, text.err
        assert f"on {engine}" in text.out
        image = cv2.imread(str(out))
        assert image is not None
        outputs[engine] = image.astype(int)
    original = cv2.imread(str(t1_path))
    assert original is not None
    assert np.abs(outputs["openvino"] - original.astype(int)).max() > 0  # a face was swapped
    # the same models on two runtimes: the same picture within rounding
    assert np.abs(outputs["openvino"] - outputs["onnxruntime-cpu"]).max() <= 2
