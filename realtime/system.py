"""Which OS this is, read from ``sys.platform`` at call time (so a test that sets
``sys.platform`` fakes the OS for every branch that asks here)."""

from __future__ import annotations

import sys


def os_family(platform: str | None = None) -> str:
    """``"linux"``, ``"windows"``, ``"macos"`` or ``"other"`` for ``sys.platform``
    (or ``platform``)."""
    name = sys.platform if platform is None else platform
    if name.startswith("linux"):
        return "linux"
    if name in ("win32", "cygwin"):
        return "windows"
    if name == "darwin":
        return "macos"
    return "other"


MAX_PATH = 260  # Windows' limit, with the closing NUL, unless long paths are enabled


def windows_long_paths_enabled() -> bool:
    """Whether Windows lets programs use paths of more than 260 characters
    (``HKLM\\SYSTEM\\CurrentControlSet\\Control\\FileSystem\\LongPathsEnabled`` = 1;
    Python itself is built to use them then)."""
    try:
        import winreg
    except ImportError:
        return False
    try:
        with winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE,  # type: ignore[attr-defined]
                            r"SYSTEM\CurrentControlSet\Control\FileSystem") as key:
            value, _kind = winreg.QueryValueEx(key, "LongPathsEnabled")  # type: ignore[attr-defined]
    except OSError:
        return False
    return bool(value)


def long_path_problem(path: object) -> str | None:
    """On Windows without long paths, why ``path`` (absolute, 260 characters or more)
    cannot be used, and the fix; None elsewhere and for shorter paths."""
    if os_family() != "windows":
        return None
    text = str(path)
    if len(text) < MAX_PATH - 1 or windows_long_paths_enabled():
        return None
    return (f"the path is {len(text)} characters long and Windows allows {MAX_PATH - 1} "
            "unless long paths are enabled: move the file to a shorter folder, or enable "
            "long paths (an administrator: Set-ItemProperty HKLM:\\SYSTEM\\"
            "CurrentControlSet\\Control\\FileSystem LongPathsEnabled 1, then sign in again)")


# Windows process-creation flags (subprocess names them only on Windows)
CREATE_NEW_PROCESS_GROUP = 0x00000200
CREATE_NO_WINDOW = 0x08000000


def helper_process_kwargs() -> dict[str, object]:
    """``subprocess`` options for a helper program such as ffmpeg: the terminal's Ctrl-C
    must not reach it (swapcam ends it by closing its input, so the file is finished), and
    on Windows it must not open a console window of its own (``swapcam-gui`` has none)."""
    if os_family() == "windows":
        return {"creationflags": CREATE_NEW_PROCESS_GROUP | CREATE_NO_WINDOW}
    return {"start_new_session": True}
