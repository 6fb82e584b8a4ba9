"""Settings persistence: one TOML file in the user's config folder.

Every save is atomic (a temporary file in the same folder, flushed, then renamed over
the old one), so a crash mid-write never leaves half a file. A file that cannot be
read or does not hold valid settings is moved aside as a backup, defaults are used,
and ``LoadResult.warning`` carries a sentence to show the user.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import get_args

import tomli_w

from engines.fileio import write_atomic
from realtime.config import EngineChoice, Settings, default_config_path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 ships no tomllib
    import tomli as tomllib

log = logging.getLogger(__name__)


class SettingsSaveError(OSError):
    """The settings file could not be written; the message names the file."""


@dataclass(frozen=True)
class LoadResult:
    """What ``SettingsStore.load`` found: the settings to use and what to tell the user."""

    settings: Settings
    warning: str | None = None  # set when the file was unusable and defaults were used
    backup: Path | None = None  # where the unusable file was moved


class SettingsStore:
    """Loads and saves ``Settings`` at ``path`` (default: the user's config folder)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_config_path()

    def load(self) -> LoadResult:
        """Read the file; a missing file gives defaults silently, a bad one is backed up."""
        if not self.path.exists():
            return LoadResult(Settings())
        try:
            data = tomllib.loads(self.path.read_text(encoding="utf-8"))
            settings = Settings.from_dict(data)
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, ValueError, TypeError) as exc:
            backup = self._backup()
            where = f"kept as {backup}" if backup else "could not be moved aside"
            warning = (
                f"Your settings file {self.path} could not be used ({exc}); "
                f"it was {where} and the defaults are in use."
            )
            log.warning("%s", warning)
            return LoadResult(Settings(), warning=warning, backup=backup)
        engines = get_args(EngineChoice)
        if settings.engine not in engines:
            # e.g. "torch", offered by earlier versions: ONNX files cannot run on it
            warning = (f"The saved engine {settings.engine!r} is not available (expected one "
                       f"of {', '.join(engines)}); using auto.")
            log.warning("%s", warning)
            return LoadResult(settings.with_changes(engine="auto"), warning=warning)
        return LoadResult(settings)

    def save(self, settings: Settings) -> None:
        """Write ``settings`` atomically; raises ``SettingsSaveError`` naming the file."""
        text = tomli_w.dumps(settings.to_dict())
        try:
            write_atomic(self.path, text.encode("utf-8"), fsync=True)
        except OSError as exc:
            raise SettingsSaveError(f"could not save settings to {self.path}: {exc}") from exc

    def _backup(self) -> Path | None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        backup = self.path.with_name(f"{self.path.name}.invalid-{stamp}")
        counter = 1
        while backup.exists():
            backup = self.path.with_name(f"{self.path.name}.invalid-{stamp}-{counter}")
            counter += 1
        try:
            os.replace(self.path, backup)
        except OSError as exc:
            log.error("could not move the unusable settings file %s aside: %s", self.path, exc)
            return None
        return backup
