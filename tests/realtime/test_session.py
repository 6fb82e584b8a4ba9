"""One live session's parts: detectors tuned for frames and photos, thread budget, sources."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from realtime import session
from realtime.cli import live as live_cli
from realtime.cli.live import settings_from_args
from realtime.config import Settings
from tests.dlib_extra import require_dlib
from tests.realtime.cli.test_live import _help_text, _parse


def test_detect_width_option_reaches_the_embedded_detector(tmp_path: Path) -> None:
    require_dlib()
    from realtime.faces.detect import DlibDetector

    base = Settings(detector="dlib", detect_width=800)
    assert settings_from_args(_parse(), base).detect_width == 800  # the saved setting
    settings = settings_from_args(_parse("--detect-width", "960"), base)
    assert settings.detect_width == 960
    detector = session.make_live_detector(settings, tmp_path)
    assert isinstance(detector, DlibDetector)
    assert (detector.detect_width, detector.upsample) == (960, session.LIVE_DLIB_UPSAMPLE)
    for bad in ("159", "3841"):
        with pytest.raises(ValueError, match=r"--detect-width: expected 160\.\.3840"):
            settings_from_args(_parse("--detect-width", bad), base)
    for edge in (160, 3840):
        assert settings_from_args(_parse("--detect-width", str(edge)), base).detect_width == edge
    help_text = " ".join(_help_text().split())
    assert "--detect-width N" in help_text and "160..3840" in help_text


class RecordingBank:
    def __init__(self) -> None:
        self.calls: list[tuple[object, ...]] = []

    def add(self, paths: list[Path], name: str | None = None) -> None:
        self.calls.append(("add", list(paths)))

    def add_folder(self, folder: Path, *, skip: tuple[str, ...] = ()) -> None:
        self.calls.append(("folder", folder, skip))


def test_a_source_entry_of_several_photos_is_one_identity(tmp_path: Path) -> None:
    folder = tmp_path / "people"
    folder.mkdir()
    a, b, c = (tmp_path / f"{n}.jpg" for n in "abc")
    bank = RecordingBank()
    session.add_sources(bank, [f"{a}{os.pathsep}{b}", c, str(folder), f"{c}{os.pathsep}"],
                         skip=(str(folder / "gone.jpg"),))
    assert bank.calls == [("add", [a, b]), ("add", [c]),
                          ("folder", folder, (str(folder / "gone.jpg"),)), ("add", [c])]
    assert session.split_source(f"{a}{os.pathsep}{b}{os.pathsep}{c}") == [a, b, c]
    assert os.pathsep in _help_text()


def test_live_threads_leave_a_core_for_the_frame_threads() -> None:
    assert [session.live_threads(n) for n in (1, 2, 4, 16)] == [1, 1, 3, 15]
    assert session.live_threads() == max(1, (os.cpu_count() or 1) - 1)
    assert _parse("--threads", "2").threads == 2
    with pytest.raises(ValueError, match="--threads: expected >= 1, got 0"):
        live_cli.check_threads(0)


def test_frames_and_photos_get_their_own_detector_tuning(tmp_path: Path) -> None:
    require_dlib()
    from realtime.faces.detect import DlibDetector

    settings = Settings(detector="dlib")
    frames = session.make_live_detector(settings, tmp_path)
    photos = session.make_photo_detector(settings, tmp_path, frames)
    assert isinstance(frames, DlibDetector) and isinstance(photos, DlibDetector)
    assert (frames.detect_width, frames.upsample) == (session.LIVE_DLIB_WIDTH,
                                                      session.LIVE_DLIB_UPSAMPLE)
    default = DlibDetector()
    assert (photos.detect_width, photos.upsample) == (default.detect_width, default.upsample)

    class Other:
        name = "other"

    other = Other()
    assert session.make_photo_detector(settings, tmp_path, other) is other  # type: ignore[arg-type]
