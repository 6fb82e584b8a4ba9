"""The face parser on an engine, the mask setting, and the parsing mask in the frame."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch

from engines.base import TensorSpec
from realtime.config import Settings
from realtime.faces.detect import DlibDetector
from realtime.frame.masks import masks_from_logits, parser_input
from realtime.frame.parsing import FaceParser, ParserMissing, resolve_mask_mode
from realtime.frame.process import FrameProcessor, MaskedCrop
from realtime.frame.swap import FaceSwapper
from realtime.types import Face, ValueTypeError
from tests.dlib_extra import require_dlib
from tests.realtime.frame.test_swap import EchoEngine

VECTOR = np.ones(512, np.float32) / np.sqrt(512)


class ClassMapEngine:
    """A parser engine with BiSeNet's interface whose logits put every crop's centre
    ellipse (the skin of a face aligned on the template) in class 1, the rest in hair
    (17). As strict as ONNX Runtime about names, dtype and shape."""

    backend = "onnxruntime-cpu"
    inputs = (TensorSpec("input", ("batch", 3, 512, 512), "float32"),)
    outputs = (TensorSpec("logits", ("batch", 19, 512, 512), "float32"),)

    def __init__(self) -> None:
        self.calls = 0
        classes = np.full((512, 512), 17, np.uint8)
        cv2.ellipse(classes, (256, 300), (150, 170), 0, 0, 360, 1, -1)
        self.classes = classes.astype(np.int64)

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if set(feeds) != {"input"}:
            raise ValueError(f"unexpected feeds {sorted(feeds)}")
        batch = feeds["input"]
        if batch.dtype != np.float32 or batch.ndim != 4 or batch.shape[1:] != (3, 512, 512):
            raise ValueError(f"input: got {batch.dtype} {batch.shape}")
        self.calls += 1
        logits = np.zeros((len(batch), 19, 512, 512), np.float32)
        np.put_along_axis(logits, self.classes[None, None].repeat(len(batch), 0), 5.0, axis=1)
        return {"logits": logits}

    def close(self) -> None:
        """Nothing to release."""


@pytest.fixture(scope="module")
def t1_faces(t1_bgr: np.ndarray) -> list[Face]:
    require_dlib()
    return [Face(i, d) for i, d in enumerate(DlibDetector(detect_width=640).detect(t1_bgr))]


def test_parser_on_the_real_bisenet(t1_bgr: np.ndarray, t1_faces: list[Face]) -> None:
    """The seeded random BiSeNet (exact architecture) behind a TorchEngine: one batched
    call, masks equal to the maths applied to the module's own logits, host = device."""
    from engines.torch import TorchEngine
    from export.parsing import INPUTS, OUTPUTS
    from export.random_models import make_parser

    module = make_parser(0)
    parser = FaceParser(TorchEngine(module, INPUTS, OUTPUTS))
    assert parser.batched and parser.takes_tensors
    processor = FrameProcessor(FaceSwapper("simswap-224", EchoEngine(224)), None, Settings())
    crops = [a.crop for a in processor.align(t1_bgr, t1_faces[:2])]
    masks = parser.masks(crops)
    with torch.inference_mode():
        logits = module(torch.from_numpy(parser_input(crops))).numpy()
    expected = masks_from_logits(logits, 224)
    for got, want in zip(masks, expected, strict=True):
        assert (got is None) == (want is None)
        if got is not None and want is not None:
            np.testing.assert_allclose(got, want, atol=1e-5)
    device, found = parser.masks_torch([torch.from_numpy(c) for c in crops])
    assert found.tolist() == [m is not None for m in masks]
    for i, m in enumerate(masks):
        if m is not None:
            diff = np.abs(device[i].numpy() - m)
            assert (diff > 1e-4).sum() <= 3


def test_parser_refuses_a_wrong_interface() -> None:
    class Wrong(ClassMapEngine):
        inputs = (TensorSpec("input", (1, 3, 256, 256), "float32"),)

    with pytest.raises(ValueTypeError, match="512"):
        FaceParser(Wrong())


def test_parsing_mask_keeps_hair_and_background(t1_bgr: np.ndarray,
                                                t1_faces: list[Face]) -> None:
    """A black generator: with the parsing mask only the parsed skin turns dark; the
    crop's outer band (hair in the parser's map) keeps the frame's pixels exactly. With
    the setting on box the same processor pastes the whole rounded rectangle."""
    black = EchoEngine(224, transform=lambda f: np.zeros_like(f["t"]))
    engine = ClassMapEngine()
    settings = Settings(mask="parsing", feather=0.02)
    processor = FrameProcessor(FaceSwapper("simswap-224", black), None, settings,
                               parser=FaceParser(engine))  # type: ignore[arg-type]
    face = max(t1_faces, key=lambda f: f.detection.area)
    aligned = processor.align(t1_bgr, [face])
    swapped = processor.swap_crops(aligned, VECTOR)
    assert isinstance(swapped[0], MaskedCrop) and swapped[0].mask is not None
    assert engine.calls == 1
    parsed = processor.composite(t1_bgr, aligned, swapped)
    inverse = cv2.invertAffineTransform(aligned[0].matrix)

    def frame_point(x: float, y: float) -> tuple[int, int]:
        px, py = inverse @ np.array([x, y, 1.0])
        return round(float(py)), round(float(px))

    skin = frame_point(112, 131)  # the ellipse's centre (crop coordinates)
    hair = frame_point(40, 40)  # inside the box mask, outside the parsed face
    assert parsed[skin].max() < 40
    np.testing.assert_array_equal(parsed[hair], t1_bgr[hair])
    processor.update_settings(settings.with_changes(mask="box"))
    boxed = processor.composite(t1_bgr, aligned, swapped)  # the mask is ignored now
    assert boxed[hair].max() < t1_bgr[hair].max() - 20
    assert processor.swap_crops(aligned, VECTOR)[0].__class__ is np.ndarray  # no parse
    assert engine.calls == 1


def test_process_reports_the_parse(t1_bgr: np.ndarray, t1_faces: list[Face]) -> None:
    processor = FrameProcessor(FaceSwapper("simswap-224", EchoEngine(224)), None,
                               Settings(mask="auto"),
                               parser=FaceParser(ClassMapEngine()))  # type: ignore[arg-type]
    _, timings = processor.process(t1_bgr, t1_faces[:2], VECTOR)
    assert set(timings) == {"align", "swap", "composite", "parse"}


def test_mask_mode_resolution(tmp_path: Path) -> None:
    from export.random_models import populate_models_dir

    empty = tmp_path / "empty"
    empty.mkdir()
    assert resolve_mask_mode("auto", empty) == "box"
    assert resolve_mask_mode("box", empty) == "box"
    with pytest.raises(ParserMissing, match="models download face-parsing"):
        resolve_mask_mode("parsing", empty)
    with pytest.raises(ValueError, match="mask"):
        resolve_mask_mode("hair", empty)
    folder = tmp_path / "models"
    populate_models_dir(folder, ("face-parsing",))
    assert resolve_mask_mode("auto", folder) == "parsing"
    assert resolve_mask_mode("parsing", folder) == "parsing"
    assert resolve_mask_mode("box", folder) == "box"


def test_settings_mask_field_round_trips() -> None:
    assert Settings().mask == "auto"
    assert Settings().color_match is False  # SimSwap's paste has no colour matching
    data: dict[str, Any] = Settings(mask="parsing").to_dict()
    assert Settings.from_dict(data).mask == "parsing"
    with pytest.raises(ValueError, match="mask"):
        Settings.from_dict({"mask": 3})
    with pytest.raises(ValueError, match="'mask': expected one of auto, box, parsing"):
        Settings.from_dict({"mask": "hair"})
