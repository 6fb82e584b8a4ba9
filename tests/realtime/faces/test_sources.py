"""SourceBank: photos → identity vectors (averaged, cached), clear errors naming the file."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from realtime.faces.detect import DlibDetector
from realtime.faces.identity import IdentityEncoder, l2_normalize
from realtime.faces.sources import NoFaceError, SourceBank, SourceImageError
from realtime.types import Detection
from tests.dlib_extra import require_dlib
from tests.realtime.frame.test_swap import VectorEngine


class CountingDetector:
    def __init__(self, inner: DlibDetector) -> None:
        self.inner = inner
        self.name = inner.name
        self.calls = 0

    def detect(self, image: np.ndarray) -> list[Detection]:
        self.calls += 1
        return self.inner.detect(image)


@pytest.fixture(scope="module")
def dlib_detector() -> DlibDetector:
    # the file-processing width swap_cli uses (480 misses a face of t1.jpg)
    require_dlib()
    return DlibDetector(detect_width=800)


def _bank(tmp: Path, detector: DlibDetector, families: tuple[str, ...] = ("simswap-224",)
          ) -> tuple[SourceBank, dict[str, VectorEngine], CountingDetector]:  # fmt: skip
    engines: dict[str, VectorEngine] = {}
    encoders: dict[str, IdentityEncoder] = {}

    def encoder_for(family: str) -> IdentityEncoder:
        if family not in encoders:
            engines[family] = VectorEngine()
            emap = np.eye(512, dtype=np.float32) if family == "inswapper-128" else None
            encoders[family] = IdentityEncoder(family, engines[family], emap=emap)
        return encoders[family]

    counting = CountingDetector(detector)
    return SourceBank(encoder_for, counting, tmp, families=families), engines, counting


def test_one_photo_gives_a_normalised_vector_and_thumbnail(
    tmp_path: Path, dlib_detector: DlibDetector, face_photos: dict[str, Path]
) -> None:
    require_dlib()
    bank, engines, _ = _bank(tmp_path, dlib_detector)
    source = bank.add([face_photos["astronaut"]])
    assert source.name == "astronaut" and source.paths == (str(face_photos["astronaut"]),)
    vector = source.embeddings["simswap-224"]
    assert vector.shape == (512,) and np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)
    assert source.thumbnail is not None and source.thumbnail.shape == (96, 96, 3)
    assert len(engines["simswap-224"].seen) == 1
    assert bank.last_warnings == () and len(bank) == 1 and bank[0] is source


def test_several_photos_are_averaged_and_renormalised(
    tmp_path: Path, dlib_detector: DlibDetector, face_photos: dict[str, Path]
) -> None:
    require_dlib()
    bank, _, _ = _bank(tmp_path, dlib_detector)
    a = bank.add([face_photos["astronaut"]]).embeddings["simswap-224"]
    b = bank.add([face_photos["grace_hopper"]]).embeddings["simswap-224"]
    both = bank.add([face_photos["astronaut"], face_photos["grace_hopper"]], name="mix")
    assert both.name == "mix"
    np.testing.assert_allclose(both.embeddings["simswap-224"], l2_normalize(a + b), atol=1e-6)


def test_cache_skips_detection_and_encoding(
    tmp_path: Path, dlib_detector: DlibDetector, face_photos: dict[str, Path]
) -> None:
    require_dlib()
    first, _, det1 = _bank(tmp_path, dlib_detector)
    v1 = first.add([face_photos["grace_hopper"]]).embeddings["simswap-224"]
    assert det1.calls == 1
    second, engines, det2 = _bank(tmp_path, dlib_detector)
    v2 = second.add([face_photos["grace_hopper"]]).embeddings["simswap-224"]
    np.testing.assert_array_equal(v1, v2)
    assert det2.calls == 0 and engines["simswap-224"].seen == []
    # a different model family is a different cache entry
    second.ensure_family("inswapper-128")
    assert len(engines["inswapper-128"].seen) == 1
    assert second.vector(0, "inswapper-128").shape == (512,)


def test_several_faces_take_the_largest_and_warn(
    tmp_path: Path, dlib_detector: DlibDetector, t1_path: Path
) -> None:
    require_dlib()
    bank, _, _ = _bank(tmp_path, dlib_detector)
    bank.add([t1_path])
    assert len(bank.last_warnings) == 1
    assert "t1.jpg" in bank.last_warnings[0] and "6 faces found, using the largest" in (
        bank.last_warnings[0]
    )


def test_no_face_names_the_file(tmp_path: Path, dlib_detector: DlibDetector) -> None:
    require_dlib()
    blank = tmp_path / "wall.png"
    cv2.imwrite(str(blank), np.full((200, 200, 3), 128, np.uint8))
    bank, _, _ = _bank(tmp_path / "cache", dlib_detector)
    with pytest.raises(NoFaceError, match=r"wall\.png: no face found"):
        bank.add([blank])
    assert len(bank) == 0


def test_bad_files_name_the_file(tmp_path: Path, dlib_detector: DlibDetector) -> None:
    require_dlib()
    bank, _, _ = _bank(tmp_path / "cache", dlib_detector)
    corrupt = tmp_path / "broken.jpg"
    corrupt.write_bytes(b"\xff\xd8 not really a jpeg")
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    cases = {
        corrupt: r"broken\.jpg: not a readable image",
        notes: r"notes\.txt: expected an image",
        tmp_path / "absent.png": r"absent\.png: no such file",
        tmp_path: "got a folder",
    }
    for path, message in cases.items():
        with pytest.raises(SourceImageError, match=message):
            bank.add([path])
    with pytest.raises(SourceImageError, match="no source photos"):
        bank.add([])


def test_folder_one_identity_per_image_skipping_bad_ones(
    tmp_path: Path, dlib_detector: DlibDetector, face_photos: dict[str, Path]
) -> None:
    require_dlib()
    folder = tmp_path / "people"
    folder.mkdir()
    for path in face_photos.values():
        (folder / path.name).write_bytes(path.read_bytes())
    cv2.imwrite(str(folder / "blank.png"), np.zeros((64, 64, 3), np.uint8))
    (folder / "readme.txt").write_text("not a photo")
    bank, _, _ = _bank(tmp_path / "cache", dlib_detector)
    added = bank.add_folder(folder)
    assert [s.name for s in added] == ["astronaut", "grace_hopper"]
    assert len(bank.last_warnings) == 1 and "blank.png" in bank.last_warnings[0]
    assert bank.rename(1, "Grace").name == "Grace"
    assert bank.remove(0).name == "astronaut"
    assert [s.name for s in bank.sources] == ["Grace"]
    # photos the user removed from the remembered folder are not added back
    again = bank.add_folder(folder, skip=[folder / "astronaut.png", str(folder / "blank.png")])
    assert [s.name for s in again] == ["grace_hopper"] and bank.last_warnings == ()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SourceImageError, match="found none"):
        bank.add_folder(empty)
