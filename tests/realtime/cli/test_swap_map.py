"""``main.py swap --map REF=SOURCE`` on a photo of six people (t1.jpg), random weights.

Random-weight ArcFace cannot tell people apart in general, but a face cut from the
same photo matches itself far above every other face (``--match-threshold 0.9``, as the
``--faces match:`` test does), which is all a mapping needs.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

import main
from realtime.faces.align import CROP_SIZES, align_matrix
from realtime.frame.composite import face_region

FAMILY = "inswapper-128"


def _swap(models_dir: Path, cache: Path, *args: str | Path) -> int:
    argv = ["--models-dir", str(models_dir), "swap", "--engine", "onnxruntime-cpu",
            "--detector", "retinaface", "--model", FAMILY, "--match-threshold", "0.9",
            "--cache-dir", str(cache), *map(str, args)]  # fmt: skip
    return main.main(argv)


def _read(path: Path) -> np.ndarray:
    image = cv2.imread(str(path))
    assert image is not None, path
    return image


@pytest.fixture(scope="module")
def t1_boxes(t1_bgr: np.ndarray) -> list[tuple[int, int, int, int]]:
    """The inswapper paste region of each of t1's six faces, left to right."""
    from realtime.faces.detect import make_detector

    detector = make_detector("retinaface", Path("/nonexistent"), engine="onnxruntime-cpu",
                             detect_width=t1_bgr.shape[1])
    found = sorted(detector.detect(t1_bgr), key=lambda d: float(d.box[0]))
    assert len(found) == 6
    boxes = []
    for d in found:
        x0, y0, x1, y1 = face_region(align_matrix(d.landmarks, FAMILY), CROP_SIZES[FAMILY],
                                     t1_bgr.shape)
        boxes.append((int(x0), int(y0), int(x1), int(y1)))
    return boxes


def _changed(out: np.ndarray, original: np.ndarray,
             boxes: list[tuple[int, int, int, int]]) -> list[int]:  # fmt: skip
    changed = np.any(out != original, axis=2)
    return [i for i, (x0, y0, x1, y1) in enumerate(boxes) if changed[y0:y1, x0:x1].any()]


def _region(image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    x0, y0, x1, y1 = box
    return image[y0:y1, x0:x1]


@pytest.mark.slow
def test_map_gives_two_people_their_own_identities(
    random_models_dir: Path, t1_path: Path, t1_bgr: np.ndarray, face_photos: dict[str, Path],
    t1_boxes: list[tuple[int, int, int, int]], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    first, second = 1, 4  # two people apart in the photo: their regions do not overlap
    refs = []
    for index in (first, second):
        x0, y0, x1, y1 = t1_boxes[index]
        ref = tmp_path / f"person{index}.png"
        cv2.imwrite(str(ref), t1_bgr[max(y0 - 40, 0):y1 + 40, max(x0 - 40, 0):x1 + 40])
        refs.append(ref)
    grace, astronaut = face_photos["grace_hopper"], face_photos["astronaut"]
    cache = tmp_path / "cache"

    mapped = tmp_path / "mapped.png"
    rc = _swap(random_models_dir, cache, "--input", t1_path, "--output", mapped,
               "--map", f"{refs[0]}={grace}", "--map", f"{refs[1]}={astronaut}",
               "--unassigned", "leave")
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert "swapped 2 face(s)" in out.out
    result = _read(mapped)
    assert _changed(result, t1_bgr, t1_boxes) == [first, second]  # the others left alone

    # each mapped face is exactly what swapping that one face with its source gives
    for index, ref, photo, other in ((first, refs[0], grace, astronaut),
                                     (second, refs[1], astronaut, grace)):
        alone = tmp_path / f"alone{index}.png"
        rc = _swap(random_models_dir, cache, "--source", photo, "--input", t1_path,
                   "--output", alone, "--faces", f"match:{ref}")
        assert rc == 0, capsys.readouterr().err
        np.testing.assert_array_equal(_region(result, t1_boxes[index]),
                                      _region(_read(alone), t1_boxes[index]))
        wrong = tmp_path / f"wrong{index}.png"
        rc = _swap(random_models_dir, cache, "--source", other, "--input", t1_path,
                   "--output", wrong, "--faces", f"match:{ref}")
        assert rc == 0, capsys.readouterr().err
        # the identity matters: the other source gives that face another look
        assert (_region(result, t1_boxes[index]) != _region(_read(wrong), t1_boxes[index])).any()

    # --unassigned source (the default): everyone else wears --source
    everyone = tmp_path / "everyone.png"
    rc = _swap(random_models_dir, cache, "--source", astronaut, "--input", t1_path,
               "--output", everyone, "--map", f"{refs[0]}={grace}")
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert "swapped 6 face(s)" in out.out
    assert _changed(_read(everyone), t1_bgr, t1_boxes) == list(range(6))


def test_a_malformed_map_entry_fails_before_any_model_loads(
    tmp_path: Path, t1_path: Path, face_photos: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    out = tmp_path / "out.png"
    rc = main.main(["--models-dir", str(tmp_path / "no-models"), "swap", "--input",
                    str(t1_path), "--output", str(out), "--map", str(face_photos["astronaut"])])
    assert rc != 0
    assert "REF.jpg=SOURCE.jpg" in capsys.readouterr().err
    assert not out.exists()
