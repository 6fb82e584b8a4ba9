"""Saving settings on Windows, where renaming over a file another program holds open
fails: the platform is faked at ``sys.platform`` and the rename (``os.replace``) raises
what Windows raises (WinError 32, a PermissionError)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from realtime import settings_store
from realtime.config import Settings
from realtime.settings_store import SettingsSaveError, SettingsStore

SHARING_VIOLATION = PermissionError(13, "The process cannot access the file because it is "
                                        "being used by another process")


def replace_failing(monkeypatch: pytest.MonkeyPatch, times: int) -> list[float]:
    real = os.replace
    calls = {"n": 0}
    slept: list[float] = []

    def replace(src: object, dst: object) -> None:
        calls["n"] += 1
        if calls["n"] <= times:
            raise SHARING_VIOLATION
        real(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(settings_store.time, "sleep", slept.append)
    return slept


def test_windows_retries_until_the_other_program_lets_go(monkeypatch: pytest.MonkeyPatch,
                                                        tmp_path: Path) -> None:
    monkeypatch.setattr(sys, "platform", "win32")
    store = SettingsStore(tmp_path / "settings.toml")
    slept = replace_failing(monkeypatch, times=2)
    store.save(Settings().with_changes(detect_every=5))
    assert slept == [0.05, 0.1]
    assert store.load().settings.detect_every == 5
    assert [p.name for p in tmp_path.iterdir()] == ["settings.toml"]  # no temporary left


def test_windows_gives_up_with_what_to_do(monkeypatch: pytest.MonkeyPatch,
                                          tmp_path: Path) -> None:
    monkeypatch.setattr(sys, "platform", "win32")
    store = SettingsStore(tmp_path / "settings.toml")
    slept = replace_failing(monkeypatch, times=99)
    with pytest.raises(SettingsSaveError, match="open in another program") as info:
        store.save(Settings())
    assert str(tmp_path / "settings.toml") in str(info.value)
    assert slept == list(settings_store.REPLACE_RETRY_S)
    assert list(tmp_path.iterdir()) == []


def test_posix_does_not_wait(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    slept = replace_failing(monkeypatch, times=1)
    with pytest.raises(SettingsSaveError) as info:
        SettingsStore(tmp_path / "settings.toml").save(Settings())
    assert slept == [] and "another program" not in str(info.value)
