"""Settings persistence: one TOML file in the user's config folder.

Every save is atomic (a temporary file in the same folder, flushed, then renamed over
the old one), so a crash mid-write never leaves half a file. A file that cannot be
read at all is moved aside as a backup and defaults are used. A readable file with
unusable values (wrong type, NaN, out of range, unknown choice: ``realtime.config.RULES``)
keeps every good value; each bad one is replaced by its default, the original file is
copied to ``settings.toml.bak-<time>``, the repaired file is written, and
``LoadResult.reset_keys`` names the keys (``warning`` says it in a sentence).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from dataclasses import dataclass, fields
from pathlib import Path

import tomli_w

from engines.fileio import write_atomic
from realtime.config import SettingError, Settings, default_config_path, validate_setting
from realtime.system import os_family

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 ships no tomllib
    import tomli as tomllib

log = logging.getLogger(__name__)

# Windows: waits between tries to replace a settings file another program holds open
REPLACE_RETRY_S = (0.05, 0.1, 0.2, 0.4, 0.8)


class SettingsSaveError(OSError):
    """The settings file could not be written; the message names the file."""


@dataclass(frozen=True)
class LoadResult:
    """What ``SettingsStore.load`` found: the settings to use and what to tell the user."""

    settings: Settings
    warning: str | None = None  # set when the file was unusable and defaults were used
    backup: Path | None = None  # where the unusable file was moved or copied
    # settings whose saved value was unusable and is now the default (for a banner)
    reset_keys: tuple[str, ...] = ()


class SettingsStore:
    """Loads and saves ``Settings`` at ``path`` (default: the user's config folder)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_config_path()

    def load(self) -> LoadResult:
        """Read the file; a missing file gives defaults silently, an unreadable one is
        moved aside, unusable values are reset one by one (see the module docstring)."""
        if not self.path.exists():
            return LoadResult(Settings())
        try:
            raw = self.path.read_bytes()
            data = tomllib.loads(raw.decode("utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            backup = self._backup()
            where = f"kept as {backup}" if backup else "could not be moved aside"
            warning = (
                f"Your settings file {self.path} could not be used ({exc}); "
                f"it was {where} and the defaults are in use."
            )
            log.warning("%s", warning)
            return LoadResult(Settings(), warning=warning, backup=backup)
        values: dict[str, object] = {}
        problems: dict[str, str] = {}
        for f in fields(Settings):
            if f.name not in data:
                continue
            try:
                values[f.name] = validate_setting(f.name, data[f.name])
            except SettingError as exc:
                problems[f.name] = str(exc)
        settings = Settings(**values)  # type: ignore[arg-type]
        if not problems:
            return LoadResult(settings)
        backup = self._copy_aside(raw)
        kept = f"your file was kept as {backup}" if backup else "no backup could be written"
        warning = (f"Settings reset to their defaults because the saved values were not "
                   f"usable: {'; '.join(problems.values())} ({kept}).")
        log.warning("%s", warning)
        try:
            self.save(settings)  # the next start must not reset (and back up) again
        except SettingsSaveError as exc:
            log.warning("%s", exc)
        return LoadResult(settings, warning=warning, backup=backup,
                          reset_keys=tuple(problems))

    def save(self, settings: Settings) -> None:
        """Write ``settings`` atomically; raises ``SettingsSaveError`` naming the file.

        Windows refuses to rename over a file that another program holds open (an
        editor, a backup or antivirus scan): ``PermissionError`` there is retried for
        about 1.5 s, then reported with what to do."""
        text = tomli_w.dumps(settings.to_dict())
        delays = REPLACE_RETRY_S if os_family() == "windows" else ()
        for attempt in range(len(delays) + 1):
            try:
                write_atomic(self.path, text.encode("utf-8"), fsync=True)
                return
            except PermissionError as exc:
                if attempt < len(delays):
                    time.sleep(delays[attempt])
                    continue
                hint = (" (the file is open in another program, such as an editor, a "
                        "backup or an antivirus scan: close it and change a setting again)"
                        if delays else "")
                raise SettingsSaveError(
                    f"could not save settings to {self.path}: {exc}{hint}") from exc
            except OSError as exc:
                raise SettingsSaveError(
                    f"could not save settings to {self.path}: {exc}") from exc

    def _copy_aside(self, raw: bytes) -> Path | None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        backup = self.path.with_name(f"{self.path.name}.bak-{stamp}")
        counter = 1
        while backup.exists():
            backup = self.path.with_name(f"{self.path.name}.bak-{stamp}-{counter}")
            counter += 1
        try:
            write_atomic(backup, raw, fsync=True)
        except OSError as exc:
            log.error("could not back up the settings file %s: %s", self.path, exc)
            return None
        return backup

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
