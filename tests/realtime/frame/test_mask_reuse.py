"""Parsing-mask reuse per track: the real FrameProcessor and FaceParser on real faces,
with a deterministic parser engine and a clock the test moves."""

from __future__ import annotations

import numpy as np
import pytest

from engines.base import TensorSpec
from realtime.config import Settings
from realtime.faces.detect import DlibDetector
from realtime.frame.mask_reuse import MaskReuse
from realtime.frame.parsing import FaceParser
from realtime.frame.process import FrameProcessor, MaskedCrop
from realtime.frame.swap import FaceSwapper
from realtime.types import AlignedFace, Face, ValueTypeError
from tests.dlib_extra import require_dlib
from tests.realtime.frame.test_swap import EchoEngine

VECTOR = np.ones(512, np.float32) / np.sqrt(512)


class BrightSkinEngine:
    """A parser engine with BiSeNet's interface whose class map depends on the crop:
    skin (1) where the red input channel is above that crop's median, hair (17)
    elsewhere, so two faces get different masks. As strict as ONNX Runtime about
    names, dtype and shape; records how many crops each call parsed."""

    backend = "onnxruntime-cpu"
    inputs = (TensorSpec("input", ("batch", 3, 512, 512), "float32"),)
    outputs = (TensorSpec("logits", ("batch", 19, 512, 512), "float32"),)

    def __init__(self) -> None:
        self.batches: list[int] = []

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if set(feeds) != {"input"}:
            raise ValueError(f"unexpected feeds {sorted(feeds)}")
        batch = feeds["input"]
        if batch.dtype != np.float32 or batch.ndim != 4 or batch.shape[1:] != (3, 512, 512):
            raise ValueError(f"input: got {batch.dtype} {batch.shape}")
        self.batches.append(len(batch))
        red = batch[:, 0]
        skin = red > np.median(red, axis=(1, 2), keepdims=True)
        logits = np.zeros((len(batch), 19, 512, 512), np.float32)
        logits[:, 1] = np.where(skin, 5.0, 0.0)
        logits[:, 17] = np.where(skin, 0.0, 5.0)
        return {"logits": logits}

    def close(self) -> None:
        """Nothing to release."""


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def two_faces(t1_bgr: np.ndarray) -> list[Face]:
    require_dlib()
    found = DlibDetector(detect_width=640).detect(t1_bgr)
    largest = sorted(found, key=lambda d: d.area, reverse=True)[:2]
    return [Face(i, d) for i, d in enumerate(largest)]


def _processor(clock: Clock) -> tuple[FrameProcessor, BrightSkinEngine]:
    engine = BrightSkinEngine()
    processor = FrameProcessor(FaceSwapper("simswap-224", EchoEngine(224)), None,
                               Settings(mask="parsing"),
                               parser=FaceParser(engine))  # type: ignore[arg-type]
    processor.mask_reuse = MaskReuse(clock=clock)
    return processor, engine


def _reference_mask(face: AlignedFace) -> np.ndarray | None:
    """The crop's own mask, from a parser of its own (not counted by the one under test)."""
    return FaceParser(BrightSkinEngine()).masks([face.crop])[0]  # type: ignore[arg-type]


def _mask(item: object) -> np.ndarray:
    assert isinstance(item, MaskedCrop) and item.mask is not None
    return np.asarray(item.mask)


def test_a_track_reuses_its_mask_until_the_interval(t1_bgr: np.ndarray,
                                                    two_faces: list[Face]) -> None:
    clock = Clock()
    processor, engine = _processor(clock)
    aligned = processor.align(t1_bgr, two_faces[:1])
    first = processor.swap_crops(aligned, VECTOR, tracks=[7])
    assert engine.batches == [1]  # a new track's first swap is parsed
    keep = processor.mask_reuse.keep_seconds
    assert keep > 0
    clock.now += keep * 0.9
    again = processor.swap_crops(aligned, VECTOR, tracks=[7])
    assert engine.batches == [1]  # reused, not parsed
    assert _mask(again[0]) is _mask(first[0])
    clock.now += keep * 0.2  # now older than the interval (from the parse)
    fresh = processor.swap_crops(aligned, VECTOR, tracks=[7])
    assert engine.batches == [1, 1]
    assert _mask(fresh[0]) is not _mask(first[0])
    np.testing.assert_array_equal(_mask(fresh[0]), _mask(first[0]))  # same crop, same mask
    assert processor.mask_reuse.parses == 2 and processor.mask_reuse.reuses == 1


def test_a_mask_is_never_given_to_another_track(t1_bgr: np.ndarray,
                                                two_faces: list[Face]) -> None:
    """Track 2 (another person, in the first person's place) gets its own parse at
    once, equal to parsing its own crop, never track 1's kept mask."""
    clock = Clock()
    processor, engine = _processor(clock)
    one, two = processor.align(t1_bgr, two_faces)
    kept = _mask(processor.swap_crops([one], VECTOR, tracks=[1])[0])
    other = _mask(processor.swap_crops([two], VECTOR, tracks=[2])[0])
    assert engine.batches == [1, 1]
    own = _reference_mask(two)
    assert own is not None
    np.testing.assert_array_equal(other, own)
    assert np.abs(other - kept).mean() > 0.05  # the two people's masks differ
    # same crop on a new track id: parsed again, not taken from track 1
    moved = processor.swap_crops([one], VECTOR, tracks=[3])
    assert engine.batches == [1, 1, 1]
    assert _mask(moved[0]) is not kept


def test_only_the_faces_due_are_parsed(t1_bgr: np.ndarray, two_faces: list[Face]) -> None:
    clock = Clock()
    processor, engine = _processor(clock)
    one, two = processor.align(t1_bgr, two_faces)
    kept = _mask(processor.swap_crops([one], VECTOR, tracks=[1])[0])
    both = processor.swap_crops([one, two], VECTOR, tracks=[1, 2])
    assert engine.batches == [1, 1]  # only track 2's crop went to the parser
    assert _mask(both[0]) is kept
    own = _reference_mask(two)
    np.testing.assert_array_equal(_mask(both[1]), own)


def test_untracked_faces_are_parsed_on_every_swap(t1_bgr: np.ndarray,
                                                  two_faces: list[Face]) -> None:
    processor, engine = _processor(Clock())
    aligned = processor.align(t1_bgr, two_faces)
    processor.swap_crops(aligned, VECTOR)
    processor.swap_crops(aligned, VECTOR)
    assert engine.batches == [2, 2]
    with pytest.raises(ValueTypeError, match="one track id per face"):
        processor.swap_crops(aligned, VECTOR, tracks=[1])


def test_no_face_found_is_kept_as_the_box_mask(t1_bgr: np.ndarray) -> None:
    """A crop the parser finds no face in (flat grey: nothing above the median) keeps
    ``None`` (the box mask) for its track, reused like a mask."""
    clock = Clock()
    processor, engine = _processor(clock)
    flat = AlignedFace(np.full((224, 224, 3), 128, np.uint8), np.eye(2, 3), 224)
    first = processor.swap_crops([flat], VECTOR, tracks=[4])
    second = processor.swap_crops([flat], VECTOR, tracks=[4])
    assert isinstance(first[0], MaskedCrop) and first[0].mask is None
    assert isinstance(second[0], MaskedCrop) and second[0].mask is None
    assert engine.batches == [1]
    assert t1_bgr is not None


def test_the_interval_follows_the_parse_cost_and_share() -> None:
    clock = Clock()
    reuse = MaskReuse(share=0.1, clock=clock)
    assert reuse.keep_seconds == 0.0
    assert reuse.plan([1]) == [(True, None)]
    marker = np.zeros((4, 4), np.float32)
    reuse.store([1, 2], [marker, marker], seconds=0.4)  # 0.2 s per face
    assert reuse.keep_seconds == pytest.approx(2.0)
    assert reuse.recent_ms() == pytest.approx([200.0])
    clock.now += 1.9
    assert reuse.plan([1, 2, 3]) == [(False, marker), (False, marker), (True, None)]
    clock.now += 0.2
    assert reuse.plan([1]) == [(True, None)]
    reuse.store([1], [marker], seconds=0.1)  # cheaper now: EMA 0.7·0.2 + 0.3·0.1
    assert reuse.keep_seconds == pytest.approx(1.7)
    with pytest.raises(ValueError, match="one mask per track"):
        reuse.store([1, 2], [marker], seconds=0.1)
    with pytest.raises(ValueError, match="share"):
        MaskReuse(share=0.0)


def test_old_tracks_are_forgotten_past_the_bound() -> None:
    clock = Clock()
    reuse = MaskReuse(max_tracks=2, clock=clock)
    masks = [np.full((2, 2), i, np.float32) for i in range(3)]
    for track_id, mask in enumerate(masks):
        reuse.store([track_id], [mask], seconds=0.5)
    parse, kept = zip(*reuse.plan([0, 1, 2]), strict=True)
    assert parse == (True, False, False)  # track 0, parsed longest ago, was dropped
    assert kept[1] is masks[1] and kept[2] is masks[2]
    reuse.forget(1)
    assert reuse.plan([1])[0] == (True, None)
