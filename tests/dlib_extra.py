"""Tests of the legacy dlib detector skip cleanly when its extra is not installed."""

from __future__ import annotations

import importlib.util

import pytest

DLIB_MISSING = ("the legacy dlib detector is not installed (pip install -e '.[dlib]': "
                "dlib-bin and face-recognition-models)")


def dlib_installed() -> bool:
    return all(importlib.util.find_spec(name) is not None
               for name in ("dlib", "face_recognition_models"))


def require_dlib() -> None:
    """Skip the calling test (or fixture) when the dlib extra is missing."""
    if not dlib_installed():
        pytest.skip(DLIB_MISSING)
