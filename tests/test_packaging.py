"""What pyproject promises the desktop: a GUI entry point, the icon files as package data,
and dependencies that install from wheels (no compiler) on Windows and macOS."""

from __future__ import annotations

import sys
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

import main
from realtime.desktop import icons

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def requirement(name: str) -> Requirement:
    found = [Requirement(r) for r in PROJECT["project"]["dependencies"]
             if Requirement(r).name == name]
    assert len(found) == 1, name
    return found[0]


def test_gui_entry_point_is_main_gui_main() -> None:
    assert PROJECT["project"]["gui-scripts"] == {"swapcam-gui": "main:gui_main"}
    assert callable(main.gui_main)


def test_icon_files_are_package_data() -> None:
    patterns = PROJECT["tool"]["setuptools"]["package-data"]["realtime.desktop"]
    folder = ROOT / "realtime" / "desktop"
    shipped = {p for pattern in patterns for p in folder.glob(pattern)}
    assert icons.svg_path() in shipped
    assert all(path in shipped for path in icons.png_paths().values())


def test_insightface_never_resolves_to_a_source_only_release() -> None:
    """insightface 0.7.x are sdists with a Cython extension (a C++ compiler on Windows);
    1.0 is the first release published as a pure-Python wheel."""
    spec = requirement("insightface").specifier
    assert not spec.contains(Version("0.7.3")) and spec.contains(Version("1.0"))


def test_camera_names_package_only_where_it_is_used() -> None:
    marker = requirement("cv2-enumerate-cameras").marker
    assert marker is not None
    assert marker.evaluate({"sys_platform": "win32"})
    assert marker.evaluate({"sys_platform": "darwin"})
    assert not marker.evaluate({"sys_platform": "linux"})
