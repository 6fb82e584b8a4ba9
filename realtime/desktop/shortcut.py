"""Menu entries for the installed GUI entry point (``swapcam-gui``), per OS.

Linux: ``$XDG_DATA_HOME/applications/swapcam.desktop`` (default ``~/.local/share``) with
an absolute ``Exec`` and the icon in the hicolor theme (PNG sizes + scalable SVG).
Windows: a Start-menu shortcut (``.lnk``) written through the shell's wide-character
``IShellLinkW`` (``windows_link``; any user name, e.g. ``C:\\Users\\王``), with an ``.ico``
of our PNGs and swapcam's AppUserModelID.
macOS: ``~/Applications/swapcam.app``, a bundle whose executable is a compiled launcher
that runs swapcam inside the app's own process (``mac_bundle``).

The entry point is looked for where pip puts it: this environment's scripts folder, or
the user scheme's (``pip install --user``, and Microsoft Store Python, whose user folder
lies in its package's LocalCache). The OS is ``sys.platform`` read at call time; every OS
call (``subprocess.run``, ``shutil.which``, the environment, the home folder) is looked up
through its module, so tests fake a platform at the lowest level.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from realtime.desktop import icons, mac_bundle, windows_link
from realtime.system import os_family

APP_ID = "swapcam"
GUI_SCRIPT = "swapcam-gui"
NAME = "swapcam"
COMMENT = "Real-time face swapping on a webcam, with a virtual camera"


class ShortcutError(RuntimeError):
    """The menu entry could not be written or removed; the message says why and what to do."""


@dataclass(frozen=True)
class ShortcutResult:
    changed: tuple[Path, ...]
    message: str


# -- the entry point ---------------------------------------------------------------------


def scripts_dir() -> Path:
    """Where pip put this environment's entry points (``bin`` or ``Scripts``)."""
    return Path(sysconfig.get_path("scripts"))


def user_scripts_dir() -> Path | None:
    """Where ``pip install --user`` puts entry points for this Python (Microsoft Store
    Python: under its package's LocalCache), or None inside a virtual environment."""
    if sys.prefix != sys.base_prefix:
        return None
    try:
        scheme = sysconfig.get_preferred_scheme("user")
        return Path(sysconfig.get_path("scripts", scheme))
    except (KeyError, ValueError):  # a Python built without a user scheme
        return None


def gui_executable() -> Path:
    """The installed GUI entry point, absolute; ShortcutError when it is not installed."""
    suffix = ".exe" if os_family() == "windows" else ""
    folders = [scripts_dir(), *filter(None, [user_scripts_dir()])]
    for folder in folders:
        path = folder / f"{GUI_SCRIPT}{suffix}"
        if path.is_file():
            return path.resolve()
    looked = " or ".join(str(f / f"{GUI_SCRIPT}{suffix}") for f in folders)
    raise ShortcutError(
        f"{looked} does not exist: install swapcam into this environment first "
        f"(pip install -e . in the source folder), then run install-shortcut again")


def microsoft_store_python() -> bool:
    """Python from the Microsoft Store: its writes to AppData land in a private copy."""
    return "PythonSoftwareFoundation.Python." in sys.base_prefix


# -- Linux -------------------------------------------------------------------------------


def xdg_data_home() -> Path:
    """``$XDG_DATA_HOME`` when set to an absolute path, else ``~/.local/share``."""
    value = os.environ.get("XDG_DATA_HOME", "")
    if value and Path(value).is_absolute():
        return Path(value)
    return Path.home() / ".local" / "share"


def exec_quote(path: Path) -> str:
    """``path`` as one quoted argument of a desktop entry's ``Exec`` key: inside double
    quotes ``"`` `` ` `` ``$`` and ``\\`` are backslash-escaped, and then the string
    escape doubles each backslash; ``%`` is written ``%%``."""
    text = str(path).replace("%", "%%")
    for char in ("\\", '"', "`", "$"):
        text = text.replace(char, "\\" + char)
    return '"' + text.replace("\\", "\\\\") + '"'


def desktop_entry(executable: Path) -> str:
    return "\n".join([
        "[Desktop Entry]",
        "Type=Application",
        "Version=1.4",  # the newest that validators before 0.27 know
        f"Name={NAME}",
        "GenericName=Face swap camera",
        f"Comment={COMMENT}",
        f"Exec={exec_quote(executable)}",
        f"Icon={APP_ID}",
        "Terminal=false",
        "Categories=AudioVideo;Video;",
        "Keywords=webcam;camera;face;swap;virtual camera;",
        f"StartupWMClass={APP_ID}",
        "",
    ])


def linux_paths(data_home: Path) -> list[Path]:
    """Every file install writes (and remove deletes): the entry, then the icons."""
    hicolor = data_home / "icons" / "hicolor"
    return [data_home / "applications" / f"{APP_ID}.desktop",
            hicolor / "scalable" / "apps" / f"{APP_ID}.svg",
            *(hicolor / f"{size}x{size}" / "apps" / f"{APP_ID}.png" for size in icons.SIZES)]


def _refresh_caches(data_home: Path) -> None:
    """Tell the desktop about the new files, where its tools are installed (optional)."""
    for tool, argument in (("update-desktop-database", data_home / "applications"),
                           ("gtk-update-icon-cache", data_home / "icons" / "hicolor")):
        found = shutil.which(tool)
        if found is None:
            continue
        extra = ["-f", "-t"] if tool == "gtk-update-icon-cache" else []
        subprocess.run([found, *extra, str(argument)], capture_output=True, check=False)


def install_linux() -> ShortcutResult:
    executable = gui_executable()
    data_home = xdg_data_home()
    entry, svg, *pngs = linux_paths(data_home)
    for path in (entry, svg, *pngs):
        path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(icons.svg_path(), svg)
    for size, path in zip(icons.SIZES, pngs, strict=True):
        shutil.copyfile(icons.png_path(size), path)
    entry.write_text(desktop_entry(executable), encoding="utf-8")
    _refresh_caches(data_home)
    return ShortcutResult((entry, svg, *pngs),
                          f"menu entry {entry} starts {executable} (icon: hicolor '{APP_ID}')")


def remove_linux() -> ShortcutResult:
    data_home = xdg_data_home()
    removed = tuple(p for p in linux_paths(data_home) if p.exists())
    for path in removed:
        path.unlink()
    if removed:
        _refresh_caches(data_home)
    return ShortcutResult(removed, f"removed {len(removed)} files" if removed
                          else "no menu entry was installed")


# -- Windows -----------------------------------------------------------------------------

def _windows_folder(variable: str) -> Path:
    value = os.environ.get(variable)
    if not value:
        raise ShortcutError(f"%{variable}% is not set: cannot find the user's folders")
    return Path(value)


def windows_paths() -> tuple[Path, Path]:
    """(the Start-menu shortcut, the icon it points at). Microsoft Store Python writes
    what it puts under AppData into its package's private copy, which the Start menu
    never reads: there the shortcut goes on the Desktop, the icon beside the program."""
    if microsoft_store_python():
        folder = Path(os.environ.get("USERPROFILE") or Path.home())
        return folder / "Desktop" / f"{NAME}.lnk", scripts_dir() / f"{APP_ID}.ico"
    programs = (_windows_folder("APPDATA") / "Microsoft" / "Windows" / "Start Menu"
                / "Programs")
    icon = _windows_folder("LOCALAPPDATA") / APP_ID / f"{APP_ID}.ico"
    return programs / f"{NAME}.lnk", icon


def install_windows() -> ShortcutResult:
    executable = gui_executable()
    link, icon = windows_paths()
    icon.parent.mkdir(parents=True, exist_ok=True)
    icon.write_bytes(icons.ico_bytes())
    link.parent.mkdir(parents=True, exist_ok=True)
    try:
        windows_link.write_link(link, executable, icon, COMMENT)
    except windows_link.LinkError as exc:
        raise ShortcutError(str(exc)) from exc
    where = ("desktop shortcut (Microsoft Store Python cannot write to the Start menu: "
             "drag it there, or install Python from python.org)"
             if microsoft_store_python() else "Start-menu shortcut")
    return ShortcutResult((link, icon), f"{where} {link} starts {executable}")


def remove_windows() -> ShortcutResult:
    removed = tuple(p for p in windows_paths() if p.exists())
    for path in removed:
        path.unlink()
    return ShortcutResult(removed, f"removed {len(removed)} files" if removed
                          else "no Start-menu shortcut was installed")


# -- macOS -------------------------------------------------------------------------------


def macos_bundle() -> Path:
    return Path.home() / "Applications" / f"{NAME}.app"


def app_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(APP_ID)
    except PackageNotFoundError:
        return "0.1.0"


def info_plist() -> dict[str, object]:
    release = app_version()
    return {
        "CFBundleName": NAME, "CFBundleDisplayName": NAME,
        "CFBundleIdentifier": f"org.{APP_ID}.app", "CFBundleExecutable": APP_ID,
        "CFBundleIconFile": f"{APP_ID}.icns", "CFBundlePackageType": "APPL",
        "CFBundleShortVersionString": release, "CFBundleVersion": release,
        "CFBundleInfoDictionaryVersion": "6.0", "LSMinimumSystemVersion": "11.0",
        "NSCameraUsageDescription": "swapcam shows and swaps faces on your camera's picture.",
        "NSHighResolutionCapable": True,
    }


def install_macos() -> ShortcutResult:
    try:
        return _build_macos(gui_executable())
    except mac_bundle.BundleError as exc:
        raise ShortcutError(str(exc)) from exc


def _build_macos(executable: Path) -> ShortcutResult:
    bundle = macos_bundle()
    if bundle.exists():
        shutil.rmtree(bundle)  # a stale launcher (a script, or another applet)
    contents = bundle / "Contents"
    (contents / "MacOS").mkdir(parents=True)
    if mac_bundle.compile_launcher(contents / "MacOS" / APP_ID):
        keys = info_plist()
        how = "runs swapcam in its own process"
    else:
        shutil.rmtree(bundle)
        mac_bundle.build_applet(bundle, executable)
        keys = {k: v for k, v in info_plist().items() if k != "CFBundleExecutable"}
        how = (f"starts {executable} (an applet: no C compiler or shared libpython here, "
               "so the menu bar shows Python; xcode-select --install, then install again)")
    (contents / "Resources").mkdir(parents=True, exist_ok=True)
    (contents / "Resources" / f"{APP_ID}.icns").write_bytes(icons.icns_bytes())
    mac_bundle.merge_plist(contents / "Info.plist", keys)
    unsigned = mac_bundle.sign(bundle)
    note = f" ({unsigned})" if unsigned else ""
    return ShortcutResult((bundle,), f"launcher {bundle} {how}{note}")


def remove_macos() -> ShortcutResult:
    bundle = macos_bundle()
    if not bundle.exists():
        return ShortcutResult((), "no launcher was installed")
    shutil.rmtree(bundle)
    return ShortcutResult((bundle,), f"removed {bundle}")


# -- the one entry ------------------------------------------------------------------------


def install(remove: bool = False) -> ShortcutResult:
    """Write (or with ``remove`` delete) this OS's menu entry for ``swapcam-gui``."""
    family = os_family()
    actions = {"linux": (install_linux, remove_linux),
               "windows": (install_windows, remove_windows),
               "macos": (install_macos, remove_macos)}
    if family not in actions:
        raise ShortcutError(f"menu entries are not supported on {sys.platform}")
    add, delete = actions[family]
    return delete() if remove else add()
