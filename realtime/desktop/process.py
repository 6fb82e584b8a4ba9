"""What the GUI process settles with its OS before and while the window runs.

- Windows, before Qt: torch is imported first. A Qt wheel ships an older MSVC runtime;
  once Qt has loaded it, recent torch builds fail to initialise ``c10.dll``
  (``[WinError 1114]``). Loaded the other way round both work.
- Windows: the process's AppUserModelID, so the taskbar groups and pins the window as
  swapcam (with the Start-menu shortcut carrying the same ID), not as ``pythonw``.
- macOS: an ``NSProcessInfo`` activity while the window runs, so App Nap does not
  throttle the camera and the virtual-camera output when the preview is covered by the
  call window it feeds.

The OS is ``sys.platform`` read at call time; the OS libraries are imported lazily.
"""

from __future__ import annotations

import ctypes
import importlib
import importlib.util
import logging
from collections.abc import Callable
from typing import Any

from realtime.system import os_family

log = logging.getLogger(__name__)

APP_USER_MODEL_ID = "swapcam.swapcam"  # Company.Product, as Windows recommends
# NSActivityUserInitiatedAllowingIdleSystemSleep: no App Nap, no timer coalescing; the
# Mac may still sleep when idle (NSActivityUserInitiated without IdleSystemSleepDisabled)
MACOS_ACTIVITY = 0x00FFFFFF & ~(1 << 20)
ACTIVITY_REASON = "swapcam is sending the camera's picture to a virtual camera"


def load_torch_before_qt() -> str | None:
    """Windows: import torch before anything imports Qt. Returns why torch could not be
    loaded (the engines report it again as unusable), or None. Elsewhere: nothing."""
    if os_family() != "windows" or importlib.util.find_spec("torch") is None:
        return None
    try:
        import torch  # noqa: F401 - its DLLs must be in the process before Qt's
    except (ImportError, OSError) as exc:
        log.warning("torch failed to load: %s", exc)
        return str(exc)
    return None


def set_app_user_model_id() -> bool:
    """Windows: group the window under swapcam's own ID; False elsewhere or refused."""
    if os_family() != "windows":
        return False
    shell32 = getattr(ctypes, "windll").shell32  # noqa: B009 - Windows only
    return int(shell32.SetCurrentProcessExplicitAppUserModelID(
        ctypes.c_wchar_p(APP_USER_MODEL_ID))) == 0  # S_OK


def hold_activity() -> Callable[[], None]:
    """macOS: begin an activity that keeps App Nap away; returns the function that ends
    it (a no-op elsewhere, or where Foundation is not installed)."""
    if os_family() != "macos":
        return lambda: None
    try:
        foundation: Any = importlib.import_module("Foundation")
    except ImportError as exc:
        log.info("App Nap stays on (pyobjc Foundation is not installed: %s)", exc)
        return lambda: None
    info = foundation.NSProcessInfo.processInfo()
    token = info.beginActivityWithOptions_reason_(MACOS_ACTIVITY, ACTIVITY_REASON)

    def end() -> None:
        info.endActivity_(token)

    return end
