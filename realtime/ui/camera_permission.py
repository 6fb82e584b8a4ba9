"""macOS: the camera permission asked on the GUI thread before the first camera open,
and the camera opened again once the person allows it.

The camera is opened on a worker thread. When macOS has not yet asked the person,
OpenCV's AVFoundation backend asks from that thread, cannot wait for the answer there
and fails; after the person clicks Allow nothing would open the camera again. So the
window asks first, here, on the GUI thread (AVFoundation's ``AVCaptureDevice
requestAccessForMediaType:completionHandler:``, through pyobjc, imported lazily), opens
no camera until the answer comes, and then ``granted`` (open it now) or ``refused`` (the
sentence that says where to allow it) arrives on the GUI thread.

Elsewhere (and where pyobjc's AVFoundation is not installed) ``ensure()`` is True at once:
Windows has no per-app prompt for desktop programs (its privacy switch makes the open
fail, and the open's message says where the switch is); Linux has none.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

from PySide6.QtCore import QObject, Signal

from realtime.system import os_family

log = logging.getLogger(__name__)

# AVAuthorizationStatus
NOT_DETERMINED, RESTRICTED, DENIED, AUTHORIZED = 0, 1, 2, 3
STATUS_NAMES = {NOT_DETERMINED: "not_determined", RESTRICTED: "restricted",
                DENIED: "denied", AUTHORIZED: "authorized"}
REFUSED = ("macOS does not let swapcam use the camera. Allow it in System Settings → "
           "Privacy & Security → Camera (turn on swapcam, or the Terminal you started it "
           "from), then start swapcam again; or play a video or image file instead "
           "(Camera → 'Video or image file…').")
RESTRICTED_TEXT = ("The camera is blocked on this Mac by a profile or parental controls "
                   "(Screen Time → Content & Privacy): play a video or image file instead.")


def avfoundation() -> Any:
    """pyobjc's AVFoundation (installed with cv2-enumerate-cameras on macOS), or None."""
    try:
        return importlib.import_module("AVFoundation")
    except ImportError as exc:
        log.info("camera permission not checked (pyobjc AVFoundation: %s)", exc)
        return None


class CameraPermission(QObject):
    """Ask once, on the GUI thread; ``granted`` or ``refused(text)`` follow there."""

    granted = Signal()
    refused = Signal(str)
    _answered = Signal(bool)  # from AVFoundation's queue: crosses to this object's thread

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._answered.connect(self._on_answer)
        self.asking = False

    def status(self) -> str:
        """``authorized``, ``denied``, ``restricted``, ``not_determined``, or
        ``not_needed`` (not macOS, or AVFoundation missing)."""
        if os_family() != "macos":
            return "not_needed"
        av = avfoundation()
        if av is None:
            return "not_needed"
        code = int(av.AVCaptureDevice.authorizationStatusForMediaType_(av.AVMediaTypeVideo))
        return STATUS_NAMES.get(code, "not_needed")

    def ensure(self) -> bool:
        """True when a camera may be opened now. False while the system asks the person
        (``granted`` or ``refused`` follows) or when it was refused (``refused`` is
        emitted now)."""
        state = self.status()
        if state in ("authorized", "not_needed"):
            return True
        if state in ("denied", "restricted"):
            self.refused.emit(REFUSED if state == "denied" else RESTRICTED_TEXT)
            return False
        if not self.asking:
            self.asking = True
            av = avfoundation()
            av.AVCaptureDevice.requestAccessForMediaType_completionHandler_(
                av.AVMediaTypeVideo, self._handler)
        return False

    def _handler(self, allowed: bool) -> None:
        # AVFoundation calls this on a dispatch queue of its own, never the GUI thread
        self._answered.emit(bool(allowed))

    def _on_answer(self, allowed: bool) -> None:
        self.asking = False
        if allowed:
            log.info("camera allowed: opening it")
            self.granted.emit()
        else:
            self.refused.emit(REFUSED)
