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
