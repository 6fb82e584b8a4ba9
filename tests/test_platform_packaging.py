"""What pyproject installs on each OS for the platform parts: pyvirtualcam new enough for
OBS 30's camera extension on macOS 13+ (0.14), and the hotkeys extra's per-OS backends."""

from __future__ import annotations

from packaging.requirements import Requirement
from packaging.version import Version

from tests.test_packaging import PROJECT

PLATFORMS = {"darwin": "Darwin", "win32": "Windows", "linux": "Linux"}


def installed_on(requirements: list[str], platform: str) -> dict[str, Requirement]:
    """The requirements pip installs on ``platform`` (a ``sys.platform`` value)."""
    environment = {"sys_platform": platform, "platform_system": PLATFORMS[platform]}
    chosen = [Requirement(r) for r in requirements]
    return {r.name: r for r in chosen if r.marker is None or r.marker.evaluate(environment)}


def lowest(requirement: Requirement) -> Version:
    return min(Version(s.version) for s in requirement.specifier if s.operator == ">=")


def test_pyvirtualcam_on_macos_is_at_least_0_14() -> None:
    dependencies = PROJECT["project"]["dependencies"]
    for platform, least in (("darwin", "0.14"), ("win32", "0.11"), ("linux", "0.11")):
        found = installed_on(dependencies, platform)
        assert lowest(found["pyvirtualcam"]) >= Version(least), platform


def test_hotkeys_extra_per_os() -> None:
    extra = PROJECT["project"]["optional-dependencies"]["hotkeys"]
    assert set(installed_on(extra, "linux")) == {"pynput"}
    assert {n.lower() for n in installed_on(extra, "darwin")} == {"pyobjc-framework-quartz"}
    assert installed_on(extra, "win32") == {}  # RegisterHotKey is part of Windows
