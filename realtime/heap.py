"""Frame-sized buffers reused from the heap instead of faulted in afresh every frame.

glibc's allocator serves a large block (above its mmap threshold, which it raises as
blocks are freed) with fresh pages, and gives free memory at the top of the heap back to
the system once it exceeds its trim threshold (twice the mmap threshold). At webcam sizes
a frame's buffers (a 640×480 frame is 0.9 MB) sit near those thresholds, so depending on
the order of the frees the loop can fall into a state where each frame's buffers are
handed back and faulted in again: ~390 page faults and ~0.8 ms of system time a frame at
640×480 on a 2-core Xeon, about a tenth of the process thread's work. Fixing both
thresholds keeps buffers up to 32 MB (a 4K BGR frame is 24 MB) on the heap for reuse.
Elsewhere (macOS, Windows, musl) this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import sys

log = logging.getLogger(__name__)

# mallopt's parameter numbers (glibc's malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
# glibc refuses an mmap threshold above 32 MB on 64-bit machines
MMAP_THRESHOLD = 32 * 1024 * 1024
TRIM_THRESHOLD = 128 * 1024 * 1024


@functools.lru_cache(maxsize=1)
def keep_frame_buffers() -> bool:
    """Set glibc's mmap and trim thresholds once per process; True when they were set
    (False off glibc Linux, or when ``mallopt`` refuses)."""
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    done = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    if not done:
        log.debug("mallopt refused the frame buffer thresholds")
    return done
