"""engines.models: the face-mesh entry (MediaPipe's face_landmark.tflite, pinned sha256)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from engines import models
from engines.base import ModelFileError
from tests.engines import FileServer

HTML = b"<!DOCTYPE html><html><body>404 not found</body></html>"


def test_entry_pins_the_official_file() -> None:
    info = models.MODELS["face-mesh"]
    assert info.download_name == "face_landmark.tflite" and info.kind == "landmarks"
    assert info.files[0].sha256 == models.FACE_MESH_SHA256
    assert len(models.FACE_MESH_SHA256) == 64
    assert info.urls[0].startswith("https://storage.googleapis.com/mediapipe-assets/")
    assert info.licence_name == "Apache-2.0"
    assert models.FILE_NAMES["face_landmark.tflite"] == "face-mesh"


def test_import_recognises_the_file_by_name(tmp_path: Path, face_landmark_tflite: Path
                                            ) -> None:
    models_dir = tmp_path / "models"
    assert models.import_model(face_landmark_tflite, models_dir) == ["face-mesh"]
    assert models.model_status(models_dir, "face-mesh") == "verified"
    path = models.require_model(models_dir, "face-mesh")
    assert path.read_bytes() == face_landmark_tflite.read_bytes()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == models.FACE_MESH_SHA256


def test_a_page_saved_as_face_landmark_is_refused(tmp_path: Path) -> None:
    fake = tmp_path / "face_landmark.tflite"
    fake.write_bytes(HTML)
    models_dir = tmp_path / "models"
    with pytest.raises(ModelFileError, match="published"):
        models.import_model(fake, models_dir)
    assert models.model_status(models_dir, "face-mesh") == "missing"
    assert not (models_dir / "face-mesh" / "face_landmark.tflite").exists()


def test_tfl3_identifier_check(tmp_path: Path, face_landmark_tflite: Path) -> None:
    """The kind check behind the hash: the flatbuffer identifier at bytes 4..8."""
    fake = tmp_path / "page.tflite"
    fake.write_bytes(HTML)
    with pytest.raises(ModelFileError, match="not a TensorFlow Lite file"):
        models._validate_kind(fake, "face_landmark.tflite")
    models._validate_kind(face_landmark_tflite, "face_landmark.tflite")  # accepted


def test_another_tflite_is_refused_by_the_pinned_hash(tmp_path: Path,
                                                      face_landmark_tflite: Path) -> None:
    """A real TFLite flatbuffer that is not MediaPipe's file (one byte of a weight
    changed) passes the identifier check but not the pinned sha256, at import and at
    download; a good download is verified."""
    data = bytearray(face_landmark_tflite.read_bytes())
    data[len(data) // 2] ^= 0x01
    assert bytes(data[4:8]) == b"TFL3"
    other = tmp_path / "other" / "face_landmark.tflite"
    other.parent.mkdir()
    other.write_bytes(bytes(data))
    models_dir = tmp_path / "models"
    with pytest.raises(ModelFileError, match=models.FACE_MESH_SHA256):
        models.import_model(other, models_dir)
    assert models.model_status(models_dir, "face-mesh") == "missing"
    with FileServer({"/face_landmark.tflite": bytes(data)}) as srv, \
            pytest.raises(Exception, match="sha256"):
        models.download_model("face-mesh", models_dir, accept_licence=True, progress=False,
                              base_url=srv.base_url)
    assert models.model_status(models_dir, "face-mesh") == "missing"
    with FileServer({"/face_landmark.tflite": face_landmark_tflite.read_bytes()}) as srv:
        path = models.download_model("face-mesh", models_dir, accept_licence=True,
                                     progress=False, base_url=srv.base_url)
    assert models.model_status(models_dir, "face-mesh") == "verified"
    assert path.read_bytes() == face_landmark_tflite.read_bytes()
