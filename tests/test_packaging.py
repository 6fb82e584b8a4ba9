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


def test_our_code_is_apache_2_0_with_the_licence_text_beside_it() -> None:
    """The pyproject field and the LICENSE file say the same; the models keep their own
    licences (engines/models.py), which this field does not cover."""
    assert PROJECT["project"]["license"] == "Apache-2.0"
    assert PROJECT["project"]["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text
    build = [Requirement(r) for r in PROJECT["build-system"]["requires"]]
    setuptools = next(r for r in build if r.name == "setuptools")
    # an SPDX string in `license` needs setuptools 77 (PEP 639); older ones reject it
    assert not setuptools.specifier.contains(Version("76.0"))


def test_the_dev_install_can_build_the_docs() -> None:
    """CI installs only `.[dev]` and then builds the docs: the docs extra must be in it."""
    extras = PROJECT["project"]["optional-dependencies"]
    dev = {Requirement(r).name: str(Requirement(r).specifier) for r in extras["dev"]}
    docs = {Requirement(r).name: str(Requirement(r).specifier) for r in extras["docs"]}
    assert {"sphinx", "myst-parser", "furo"} <= set(docs)
    assert all(dev.get(name) == spec for name, spec in docs.items())
