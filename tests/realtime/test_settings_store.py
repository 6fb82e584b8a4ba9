"""Settings persistence: round trip, atomic write, unusable files backed up."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from realtime.config import Settings
from realtime.settings_store import SettingsSaveError, SettingsStore


def test_missing_file_gives_defaults_without_warning(tmp_path: Path) -> None:
    result = SettingsStore(tmp_path / "nope" / "settings.toml").load()
    assert result.settings == Settings()
    assert result.warning is None and result.backup is None


def test_round_trip_keeps_every_field(tmp_path: Path) -> None:
    store = SettingsStore(tmp_path / "cfg" / "settings.toml")
    changed = Settings().with_changes(
        camera="clip.mp4", sources=("a.jpg", "b.jpg"), active_source=1, feather=0.2,
        color_match=True, mask="parsing", virtual_cam=True, window_geometry="AAAA", detect_every=3,
        removed_sources=("gone.jpg",), engine="onnxruntime-cpu",
    )
    store.save(changed)
    assert store.load().settings == changed


def test_detect_width_is_saved_and_loaded(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    store = SettingsStore(path)
    assert store.load().settings.detect_width == 640  # the default before any file
    store.save(Settings().with_changes(detect_width=960))
    assert "detect_width = 960" in path.read_text()
    assert store.load().settings.detect_width == 960
    path.write_text('detect_width = "wide"\n')
    loaded = store.load()
    assert loaded.settings.detect_width == 640 and "detect_width" in str(loaded.warning)


def test_save_leaves_no_temporary_files(tmp_path: Path) -> None:
    store = SettingsStore(tmp_path / "settings.toml")
    for i in range(3):
        store.save(Settings().with_changes(detect_every=i + 1))
    assert [p.name for p in tmp_path.iterdir()] == ["settings.toml"]
    assert store.load().settings.detect_every == 3


def test_failed_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = SettingsStore(tmp_path / "settings.toml")
    store.save(Settings().with_changes(detect_every=7))

    def broken_replace(src: object, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(SettingsSaveError, match=r"settings\.toml"):
        store.save(Settings().with_changes(detect_every=9))
    monkeypatch.undo()
    assert store.load().settings.detect_every == 7
    assert [p.name for p in tmp_path.iterdir()] == ["settings.toml"]


@pytest.mark.parametrize(
    "content",
    [b"this is = = not toml", b"\xff\xfe\x00garbage"],
    ids=["syntax", "not-utf8"],
)
def test_unusable_file_is_backed_up_and_defaults_used(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "settings.toml"
    path.write_bytes(content)
    result = SettingsStore(path).load()
    assert result.settings == Settings()
    assert result.warning is not None and str(path) in result.warning
    assert result.backup is not None and result.backup.read_bytes() == content
    assert not path.exists()
    # a second bad file on the same second gets its own backup
    path.write_bytes(content)
    second = SettingsStore(path).load()
    assert second.backup is not None and second.backup != result.backup


def test_an_engine_no_longer_offered_falls_back_to_auto(tmp_path: Path) -> None:
    store = SettingsStore(tmp_path / "settings.toml")
    # an engine an older version offered: written as that version would have (with_changes
    # now refuses it, so the object is built without the check)
    store.save(dataclasses.replace(Settings(), engine="torch", detect_every=4))
    result = store.load()
    assert result.settings.engine == "auto" and result.settings.detect_every == 4
    assert result.warning is not None and "'torch'" in result.warning
    assert result.reset_keys == ("engine",)
    # the original is kept; the file now holds the repaired settings (no reset next time)
    assert result.backup is not None and 'engine = "torch"' in result.backup.read_text()
    again = store.load()
    assert again.reset_keys == () and again.settings == result.settings


def test_a_second_repair_on_the_same_second_keeps_the_first_backup(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Backups are named by the second: a second bad file then gets its own name, so
    the first user file is never overwritten."""
    from realtime import settings_store

    monkeypatch.setattr(settings_store.time, "strftime", lambda _fmt: "20260101-000000")
    path = tmp_path / "settings.toml"
    path.write_text("detect_every = 0\n", encoding="utf-8")
    first = SettingsStore(path).load()
    path.write_text("detect_every = -5\n", encoding="utf-8")
    second = SettingsStore(path).load()
    assert first.backup is not None and second.backup is not None
    assert first.backup != second.backup
    assert first.backup.read_text(encoding="utf-8") == "detect_every = 0\n"
    assert second.backup.read_text(encoding="utf-8") == "detect_every = -5\n"
