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
from realtime.desktop import icons, mac_bundle, shortcut
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


def windows_run(outcome: tuple[int, bytes], calls: list[tuple[list[str], dict[str, Any]]]
                ) -> Any:
    """``subprocess.run`` as Windows' Python does it: bytes unless asked for text, and
    text decoded in the ANSI code page (cp1252 here) unless an encoding is given."""
    code, stderr = outcome

    def run(argv: list[str], **kwargs: Any) -> Any:
        calls.append((argv, kwargs))
        env = kwargs["env"]
        if code == 0:
            Path(env["SWAPCAM_LNK"]).write_bytes(b"L\x00\x00\x00")  # what Save() does
        err: bytes | str = stderr
        if kwargs.get("text") or kwargs.get("universal_newlines"):
            err = stderr.decode(kwargs.get("encoding") or "cp1252", kwargs.get("errors")
                                or "strict")
        return subprocess.CompletedProcess(argv, code, b"" if isinstance(err, bytes) else "",
                                           err)

    return run


def test_windows_start_menu_shortcut_through_the_wide_shell_link_api(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    home = tmp_path / "Users" / "王"  # a profile folder outside every ANSI code page
    script, link = windows_env(monkeypatch, home)
    calls: list[tuple[list[str], dict[str, Any]]] = []
    monkeypatch.setattr(subprocess, "run", windows_run((0, b""), calls))
    result = shortcut.install()
    (argv, kwargs), = calls
    assert argv[:4] == ["C:/Windows/powershell.exe", "-NoProfile", "-NonInteractive",
                        "-Command"]
    env = kwargs["env"]
    script_text = argv[4] + env["SWAPCAM_CSHARP"]
    assert "WScript.Shell" not in script_text  # ANSI-bound: saves "C:\Users\?\..."
    assert "IShellLinkW" in script_text and "000214F9-0000-0000-C000-000000000046" in script_text
    assert "[Console]::OutputEncoding = [System.Text.Encoding]::UTF8" in argv[4]
    assert "$saved -ne $env:SWAPCAM_TARGET" in argv[4]  # read back through the same API
    # the paths travel whole, as Unicode environment strings
    icon = home / "Local" / "swapcam" / "swapcam.ico"
    assert env["SWAPCAM_LNK"] == str(link) and "王" in env["SWAPCAM_LNK"]
    assert env["SWAPCAM_TARGET"] == str(script.resolve()) and env["SWAPCAM_ICON"] == str(icon)
    assert env["SWAPCAM_APPID"] == "swapcam.swapcam"  # the window's AppUserModelID
    assert not kwargs.get("text") and not kwargs.get("encoding")  # bytes, decoded as UTF-8
    assert result.changed == (link, icon)
    assert icon.read_bytes()[:6] == b"\x00\x00\x01\x00\x07\x00"  # ICO, 7 images
    shortcut.install(remove=True)
    assert not link.exists() and not icon.exists()


def test_windows_failure_message_survives_a_non_ansi_path(monkeypatch: pytest.MonkeyPatch,
                                                          tmp_path: Path) -> None:
    windows_env(monkeypatch, tmp_path / "王")
    said = "无法保存 C:\\Users\\王\\swapcam.lnk: Access is denied."
    calls: list[tuple[list[str], dict[str, Any]]] = []
    monkeypatch.setattr(subprocess, "run", windows_run((2, said.encode("utf-8")), calls))
    with pytest.raises(ShortcutError) as info:
        shortcut.install()
    assert "(exit 2): " + said in str(info.value)


def test_pip_user_scripts_folder_is_found(monkeypatch: pytest.MonkeyPatch,
                                          tmp_path: Path) -> None:
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(sys, "prefix", sys.base_prefix)  # no virtual environment
    user = tmp_path / "user" / "bin"
    user.mkdir(parents=True)
    (user / "swapcam-gui").write_text("#!/bin/sh\n")
    real = sysconfig.get_path

    def get_path(key: str, scheme: str | None = None, *a: Any, **k: Any) -> str:
        if key == "scripts":
            return str(user if scheme and scheme.endswith("_user") else tmp_path / "sys")
        return real(key)

    monkeypatch.setattr(sysconfig, "get_path", get_path)
    assert shortcut.gui_executable() == (user / "swapcam-gui").resolve()


def test_microsoft_store_python_puts_the_shortcut_where_the_start_menu_is_not_redirected(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    script, _start_menu = windows_env(monkeypatch, tmp_path)
    monkeypatch.setattr(sys, "base_prefix", "C:\\Program Files\\WindowsApps\\"
                        "PythonSoftwareFoundation.Python.3.12_3.12.2800.0_x64__qbz5n2kfra8p0")
    monkeypatch.setenv("USERPROFILE", str(tmp_path / "profile"))
    calls: list[tuple[list[str], dict[str, Any]]] = []
    monkeypatch.setattr(subprocess, "run", windows_run((0, b""), calls))
    result = shortcut.install()
    link = tmp_path / "profile" / "Desktop" / "swapcam.lnk"
    assert result.changed == (link, script.parent / "swapcam.ico")
    assert "Microsoft Store Python cannot write to the Start menu" in result.message


def test_windows_without_appdata(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    windows_env(monkeypatch, tmp_path)
    monkeypatch.delenv("APPDATA")
    with pytest.raises(ShortcutError, match="%APPDATA% is not set"):
        shortcut.install()


# -- macOS -------------------------------------------------------------------------------

MACHINE_CODE = (b"\x7fELF", b"\xcf\xfa\xed\xfe", b"\xca\xfe\xba\xbe")  # ELF, Mach-O 64, fat


def macos_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[Path, Path]:
    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    script = fake_scripts(monkeypatch, tmp_path / "it's \"here\" 王" / "bin", "swapcam-gui")
    return script, tmp_path / "home" / "Applications" / "swapcam.app"


def check_plist(contents: Path) -> dict[str, Any]:
    info: dict[str, Any] = plistlib.loads((contents / "Info.plist").read_bytes())
    assert info["CFBundleIconFile"] == "swapcam.icns" and info["CFBundlePackageType"] == "APPL"
    assert "camera" in info["NSCameraUsageDescription"]
    assert info["CFBundleVersion"] == info["CFBundleShortVersionString"]
    icns = (contents / "Resources" / "swapcam.icns").read_bytes()
    assert icns[:4] == b"icns" and int.from_bytes(icns[4:8], "big") == len(icns)
    return info


@pytest.mark.skipif(shutil.which("cc") is None or mac_bundle.libpython() is None,
                    reason="needs a C compiler and a shared libpython")
def test_macos_bundle_runs_swapcam_in_its_own_compiled_executable(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _script, bundle = macos_env(monkeypatch, tmp_path)
    result = shortcut.install()
    contents = bundle / "Contents"
    info = check_plist(contents)
    launcher = contents / "MacOS" / info["CFBundleExecutable"]
    head = launcher.read_bytes()[:4]
    assert not head.startswith(b"#!") and head in MACHINE_CODE  # LaunchServices: -10669
    assert launcher.stat().st_mode & stat.S_IXUSR
    assert "runs swapcam in its own process" in result.message
    # the launcher loads this environment's Python into itself and runs the GUI entry
    done = subprocess.run([str(launcher), "--help"], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "HOME": str(tmp_path / "home")})
    assert done.returncode == 0, done.stderr
    assert "usage: swapcam" in done.stdout
    shortcut.install(remove=True)
    assert not bundle.exists()


def test_macos_bundle_source_is_built_and_signed(monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    _script, bundle = macos_env(monkeypatch, tmp_path)
    commands: list[list[str]] = []
    sources: list[str] = []

    def run(argv: list[str], **kwargs: Any) -> Any:
        commands.append(argv)
        if argv[0].endswith("xcode-select"):
            return subprocess.CompletedProcess(argv, 0, "/Library/Developer/CommandLineTools", "")
        if argv[0].endswith("/cc"):
            sources.append(Path(argv[-1]).read_text(encoding="utf-8"))
            Path(argv[argv.index("-o") + 1]).write_bytes(b"\xcf\xfa\xed\xfe" + b"\0" * 60)
        return subprocess.CompletedProcess(argv, 0, "", "")

    tools = {"cc": "/usr/bin/cc", "xcode-select": "/usr/bin/xcode-select",
             "codesign": "/usr/bin/codesign"}
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: tools.get(name))
    monkeypatch.setattr(subprocess, "run", run)
    monkeypatch.setattr(mac_bundle, "libpython",
                        lambda: Path("/Library/Frameworks/Python.framework/Versions/3.12/Python"))
    shortcut.install()
    assert [c[0] for c in commands] == ["/usr/bin/xcode-select", "/usr/bin/cc",
                                        "/usr/bin/codesign"]
    assert commands[-1] == ["/usr/bin/codesign", "--force", "--deep", "--sign", "-",
                            str(bundle)]
    (source,) = sources
    assert 'dlopen(LIBPYTHON' in source and "Py_BytesMain" in source
    assert mac_bundle.c_string(sys.executable) in source
    assert (bundle / "Contents" / "MacOS" / "swapcam").read_bytes()[:4] in MACHINE_CODE
    check_plist(bundle / "Contents")


def test_macos_without_command_line_tools_builds_an_applet(monkeypatch: pytest.MonkeyPatch,
                                                           tmp_path: Path) -> None:
    script, bundle = macos_env(monkeypatch, tmp_path)
    scripts: list[str] = []

    def run(argv: list[str], **kwargs: Any) -> Any:
        if argv[0].endswith("xcode-select"):  # the cc stub: the tools are not installed
            return subprocess.CompletedProcess(argv, 2, "", "xcode-select: error")
        if argv[0].endswith("osacompile"):
            scripts.append(argv[argv.index("-e") + 1])
            out = Path(argv[argv.index("-o") + 1]) / "Contents"
            (out / "MacOS").mkdir(parents=True)
            (out / "MacOS" / "applet").write_bytes(b"\xcf\xfa\xed\xfe" + b"\0" * 60)
            (out / "Info.plist").write_bytes(plistlib.dumps(
                {"CFBundleExecutable": "applet", "CFBundleIconFile": "applet"}))
        return subprocess.CompletedProcess(argv, 0, "", "")

    tools = {"cc": "/usr/bin/cc", "xcode-select": "/usr/bin/xcode-select",
             "osacompile": "/usr/bin/osacompile"}
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: tools.get(name))
    monkeypatch.setattr(subprocess, "run", run)
    result = shortcut.install()
    info = check_plist(bundle / "Contents")
    assert info["CFBundleExecutable"] == "applet"  # osacompile's own program, kept
    assert (bundle / "Contents" / "MacOS" / "applet").read_bytes()[:4] in MACHINE_CODE
    (applescript,) = scripts
    quoted = str(script.resolve()).replace("\\", "\\\\").replace('"', '\\"')
    assert f'quoted form of "{quoted}"' in applescript
    assert "codesign was not found" in result.message and "applet" in result.message


def test_c_string_escapes_every_byte_a_path_may_hold() -> None:
    text = 'C:/it\'s "here"/王/??=/\\'
    literal = mac_bundle.c_string(text)
    assert literal.isascii() and '"here"' not in literal and "??=" not in literal
    # what a C compiler makes of it: octal escapes back to the UTF-8 bytes
    body = literal[1:-1]
    decoded = bytearray()
    i = 0
    while i < len(body):
        if body[i] == "\\":
            decoded.append(int(body[i + 1:i + 4], 8))
            i += 4
        else:
            decoded.append(ord(body[i]))
            i += 1
    assert decoded.decode("utf-8") == text


def test_unsupported_system(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "freebsd14")
    with pytest.raises(ShortcutError, match="not supported on freebsd14"):
        shortcut.install()
    assert os.environ  # nothing else touched
