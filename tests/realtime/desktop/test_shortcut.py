"""``install-shortcut`` on each OS, the platform faked at ``sys.platform`` and the OS
calls (``sysconfig``'s scripts folder, the environment, ``shutil.which``,
``subprocess.run``). The Linux entry is checked by ``desktop-file-validate`` when it is
installed (Debian: desktop-file-utils)."""

from __future__ import annotations

import os
import plistlib
import shutil
import stat
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import pytest

from main import main
from realtime.desktop import icons, shortcut
from realtime.desktop.shortcut import ShortcutError

VALIDATE = shutil.which("desktop-file-validate")


def fake_scripts(monkeypatch: pytest.MonkeyPatch, folder: Path, name: str) -> Path:
    """An environment whose scripts folder is ``folder``, with ``name`` installed."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / name
    script.write_text("#!/bin/sh\n")
    real = sysconfig.get_path
    monkeypatch.setattr(sysconfig, "get_path",
                        lambda key, *a, **k: str(folder) if key == "scripts" else real(key))
    return script


@pytest.fixture
def linux(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)  # no cache tools
    return tmp_path / "data"


def test_linux_entry_icon_and_validation(linux: Path, monkeypatch: pytest.MonkeyPatch,
                                         tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         ) -> None:
    script = fake_scripts(monkeypatch, tmp_path / "venv $HOME" / "bin", "swapcam-gui")
    assert main(["install-shortcut"]) == 0
    entry = linux / "applications" / "swapcam.desktop"
    assert str(entry) in capsys.readouterr().out
    text = entry.read_text()
    # absolute, quoted (a space and a $ in the folder), % doubled: the spec's rules
    assert f'Exec="{str(script.resolve()).replace("$", chr(92) * 2 + "$")}"' in text
    assert "Icon=swapcam\n" in text and "Terminal=false\n" in text
    hicolor = linux / "icons" / "hicolor"
    assert (hicolor / "scalable" / "apps" / "swapcam.svg").read_bytes() == \
        icons.svg_path().read_bytes()
    for size in icons.SIZES:
        assert (hicolor / f"{size}x{size}" / "apps" / "swapcam.png").read_bytes() == \
            icons.png_path(size).read_bytes()
    assert main(["install-shortcut", "--remove"]) == 0
    assert not entry.exists() and not any(hicolor.rglob("swapcam.*"))
    assert main(["install-shortcut", "--remove"]) == 0
    assert "no menu entry was installed" in capsys.readouterr().out


@pytest.mark.skipif(VALIDATE is None, reason="desktop-file-validate is not installed "
                    "(Debian: apt-get install desktop-file-utils)")
def test_linux_entry_passes_desktop_file_validate(linux: Path, monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path) -> None:
    fake_scripts(monkeypatch, tmp_path / "my venv" / "bin", "swapcam-gui")
    entry, *_ = shortcut.install().changed
    done = subprocess.run([str(VALIDATE), str(entry)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == "", done.stdout  # not even a hint


def test_linux_default_data_home_and_cache_tools(monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_DATA_HOME", "relative/is/ignored")
    fake_scripts(monkeypatch, tmp_path / "bin", "swapcam-gui")
    ran: list[list[str]] = []
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: f"/usr/bin/{name}")
    monkeypatch.setattr(subprocess, "run", lambda argv, **k: ran.append(argv))
    shortcut.install()
    data = tmp_path / "home" / ".local" / "share"
    assert (data / "applications" / "swapcam.desktop").is_file()
    assert ran == [["/usr/bin/update-desktop-database", str(data / "applications")],
                   ["/usr/bin/gtk-update-icon-cache", "-f", "-t",
                    str(data / "icons" / "hicolor")]]


def test_not_installed_entry_point_says_what_to_do(linux: Path, monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path) -> None:
    fake_scripts(monkeypatch, tmp_path / "bin", "something-else")
    with pytest.raises(ShortcutError, match=r"swapcam-gui does not exist: install swapcam"):
        shortcut.install()
    assert not (linux / "applications").exists()


def test_exec_quote_escapes() -> None:
    assert shortcut.exec_quote(Path("/opt/a b/x")) == '"/opt/a b/x"'
    assert shortcut.exec_quote(Path('/o/"q"/100%/$v/`c`')) == \
        '"/o/\\\\"q\\\\"/100%%/\\\\$v/\\\\`c\\\\`"'


def windows_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[Path, Path]:
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setenv("APPDATA", str(tmp_path / "Roaming"))
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path / "Local"))
    script = fake_scripts(monkeypatch, tmp_path / "venv" / "Scripts", "swapcam-gui.exe")
    monkeypatch.setattr(shutil, "which",
                        lambda name, *a, **k: "C:/Windows/powershell.exe"
                        if name == "powershell" else None)
    link = tmp_path / "Roaming" / "Microsoft" / "Windows" / "Start Menu" / "Programs" / \
        "swapcam.lnk"
    return script, link


def test_windows_start_menu_shortcut(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    script, link = windows_env(monkeypatch, tmp_path)
    calls: list[tuple[list[str], dict[str, str]]] = []

    def powershell(argv: list[str], *, env: dict[str, str], **kw: Any) -> Any:
        calls.append((argv, env))
        Path(env["SWAPCAM_LNK"]).write_bytes(b"L\x00\x00\x00")  # what Save() does
        return subprocess.CompletedProcess(argv, 0, "", "")

    monkeypatch.setattr(subprocess, "run", powershell)
    result = shortcut.install()
    (argv, env), = calls
    assert argv[:4] == ["C:/Windows/powershell.exe", "-NoProfile", "-NonInteractive",
                        "-Command"]
    assert "CreateShortcut($env:SWAPCAM_LNK)" in argv[4] and "$s.Save()" in argv[4]
    icon = tmp_path / "Local" / "swapcam" / "swapcam.ico"
    assert env["SWAPCAM_LNK"] == str(link) and env["SWAPCAM_TARGET"] == str(script.resolve())
    assert env["SWAPCAM_ICON"] == f"{icon},0"
    assert result.changed == (link, icon)
    assert icon.read_bytes()[:6] == b"\x00\x00\x01\x00\x07\x00"  # ICO, 7 images
    shortcut.install(remove=True)
    assert not link.exists() and not icon.exists()


def test_windows_powershell_failure_is_reported(monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    windows_env(monkeypatch, tmp_path)
    monkeypatch.setattr(subprocess, "run", lambda argv, **k: subprocess.CompletedProcess(
        argv, 1, "", "New-Object : Retrieving the COM class factory failed"))
    with pytest.raises(ShortcutError, match=r"exit 1.*COM class factory"):
        shortcut.install()


def test_windows_without_appdata(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    windows_env(monkeypatch, tmp_path)
    monkeypatch.delenv("APPDATA")
    with pytest.raises(ShortcutError, match="%APPDATA% is not set"):
        shortcut.install()


def test_macos_launcher_bundle(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    script = fake_scripts(monkeypatch, tmp_path / "it's here" / "bin", "swapcam-gui")
    shortcut.install()
    contents = tmp_path / "home" / "Applications" / "swapcam.app" / "Contents"
    info = plistlib.loads((contents / "Info.plist").read_bytes())
    assert info["CFBundleExecutable"] == "swapcam" and info["CFBundleIconFile"] == "swapcam.icns"
    assert "NSCameraUsageDescription" in info
    launcher = contents / "MacOS" / "swapcam"
    assert launcher.stat().st_mode & stat.S_IXUSR
    quoted = str(script.resolve()).replace("'", "'\\''")
    assert launcher.read_text() == f"#!/bin/sh\nexec '{quoted}' \"$@\"\n"
    # the launcher is a real shell script: it runs the entry point it names
    script.write_text("#!/bin/sh\necho started \"$@\"\n")
    script.chmod(0o755)
    done = subprocess.run([str(launcher), "x"], capture_output=True, text=True)
    assert done.stdout == "started x\n"
    icns = (contents / "Resources" / "swapcam.icns").read_bytes()
    assert icns[:4] == b"icns" and int.from_bytes(icns[4:8], "big") == len(icns)
    shortcut.install(remove=True)
    assert not (tmp_path / "home" / "Applications" / "swapcam.app").exists()


def test_unsupported_system(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "freebsd14")
    with pytest.raises(ShortcutError, match="not supported on freebsd14"):
        shortcut.install()
    assert os.environ  # nothing else touched
