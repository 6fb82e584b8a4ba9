"""FrameProcessor: align → swap → composite on t1.jpg's six faces, with fake generators."""

from __future__ import annotations

import numpy as np
import pytest

from realtime.config import Settings
from realtime.faces.detect import DlibDetector
from realtime.faces.identity import IdentityEncoder, l2_normalize
from realtime.frame.process import FrameProcessor, MissingEmbeddingError
from realtime.frame.swap import FaceSwapper
from realtime.types import Face, SourceFace, ValueTypeError
from tests.dlib_extra import require_dlib
from tests.realtime.frame.test_swap import EchoEngine, VectorEngine

VECTOR = l2_normalize(np.ones(512))


@pytest.fixture(scope="module")
def t1_faces(t1_bgr: np.ndarray) -> list[Face]:
    require_dlib()
    detections = DlibDetector(detect_width=800).detect(t1_bgr)
    assert len(detections) == 6
    return [Face(i, d) for i, d in enumerate(detections)]


def _regions(processor: FrameProcessor, image: np.ndarray, faces: list[Face]
             ) -> list[tuple[int, int, int, int]]:  # fmt: skip
    from realtime.frame.composite import face_region

    return [
        tuple(int(v) for v in face_region(a.matrix, a.size, image.shape))  # type: ignore[misc]
        for a in processor.align(image, faces)
    ]


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


@pytest.mark.parametrize("family", ["simswap-224", "inswapper-128"])
def test_identity_generator_gives_back_the_frame(
    family: str, t1_bgr: np.ndarray, t1_faces: list[Face]
) -> None:
    size = 224 if family == "simswap-224" else 128
    processor = FrameProcessor(FaceSwapper(family, EchoEngine(size)), None, Settings())
    out, timings = processor.process(t1_bgr, t1_faces, VECTOR)
    assert set(timings) == {"align", "swap", "composite"}
    assert all(ms >= 0 for ms in timings.values())
    outside = np.ones(t1_bgr.shape[:2], bool)
    for x0, y0, x1, y1 in _regions(processor, t1_bgr, t1_faces):
        assert _psnr(out[y0:y1, x0:x1], t1_bgr[y0:y1, x0:x1]) >= 40
        outside[y0:y1, x0:x1] = False
    np.testing.assert_array_equal(out[outside], t1_bgr[outside])


def test_black_generator_changes_every_face_and_nothing_else(
    t1_bgr: np.ndarray, t1_faces: list[Face]
) -> None:
    engine = EchoEngine(224, transform=lambda f: np.zeros_like(f["t"]))
    settings = Settings(color_match=False)
    processor = FrameProcessor(FaceSwapper("simswap-224", engine), None, settings)
    original = t1_bgr.copy()
    out, _ = processor.process(t1_bgr, t1_faces, VECTOR)
    np.testing.assert_array_equal(t1_bgr, original)  # input untouched
    assert len(engine.calls) == 1 and engine.calls[0]["t"].shape[0] == 6
    outside = np.ones(t1_bgr.shape[:2], bool)
    for face, (x0, y0, x1, y1) in zip(t1_faces, _regions(processor, t1_bgr, t1_faces),
                                      strict=True):  # fmt: skip
        cx, cy = face.landmarks[2]  # the nose tip is deep inside the mask
        assert out[int(cy), int(cx)].max() < 30
        outside[y0:y1, x0:x1] = False
    np.testing.assert_array_equal(out[outside], t1_bgr[outside])


def test_no_faces_pass_through(t1_bgr: np.ndarray) -> None:
    processor = FrameProcessor(FaceSwapper("inswapper-128", EchoEngine(128)), None, Settings())
    out, timings = processor.process(t1_bgr, [], VECTOR)
    assert timings == {} and out is not t1_bgr
    np.testing.assert_array_equal(out, t1_bgr)


def test_source_face_vectors_by_family(t1_bgr: np.ndarray, t1_faces: list[Face]) -> None:
    processor = FrameProcessor(
        FaceSwapper("inswapper-128", EchoEngine(128)),
        IdentityEncoder("inswapper-128", VectorEngine(), emap=np.eye(512, dtype=np.float32)),
        Settings(),
    )
    with_vector = SourceFace("a", ("a.jpg",), {"inswapper-128": VECTOR})
    assert processor.swap_crops(processor.align(t1_bgr, t1_faces[:2]), with_vector)
    without = SourceFace("b", ("b.jpg",), {"simswap-224": VECTOR})
    with pytest.raises(MissingEmbeddingError, match="'b' has no identity vector for inswapper"):
        processor.process(t1_bgr, t1_faces, without)
    with pytest.raises(ValueTypeError, match=r"expected \(512,\)"):
        processor.process(t1_bgr, t1_faces, np.ones(3))
    with pytest.raises(ValueTypeError, match="one swapped crop per face"):
        processor.composite(t1_bgr, processor.align(t1_bgr, t1_faces), [])
    with pytest.raises(ValueTypeError, match="does not match swapper"):
        FrameProcessor(
            FaceSwapper("simswap-224", EchoEngine(224)),
            IdentityEncoder("inswapper-128", VectorEngine(), emap=np.eye(512, dtype=np.float32)),
            Settings(),
        )
