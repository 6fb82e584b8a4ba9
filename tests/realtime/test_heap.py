"""Frame-sized buffers come back from the heap: freeing and allocating a frame's worth of
memory in a loop faults in no fresh pages once the thresholds are set (glibc Linux)."""

from __future__ import annotations

import resource
import sys

import numpy as np
import pytest

from realtime import heap


def _faults_per_cycle(nbytes: int, cycles: int = 40) -> float:
    """Minor page faults per cycle of a frame's work: two buffers of ``nbytes`` made,
    written and freed (a frame and its output). Freed together they leave more than
    glibc's adaptive trim threshold (twice the largest block freed) at the top of the
    heap, which it hands back, and the next frame faults in again."""
    def cycle() -> None:
        frame, out = np.empty(nbytes, np.uint8), np.empty(nbytes, np.uint8)
        frame.fill(1)  # touch every page
        out.fill(2)
        del frame, out

    cycle()  # the first frame faults its pages in, whatever the thresholds
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(cycles):
        cycle()
    after = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    return (after - before) / cycles


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_a_frame_buffer_is_reused_not_faulted_in_again() -> None:
    assert heap.keep_frame_buffers() is True
    assert heap.keep_frame_buffers() is True  # once per process, the same answer
    for nbytes in (921_600, 6_220_800):  # 640×480 and 1920×1080 BGR frames
        pages = 2 * nbytes // 4096  # what a cycle faults in when the heap is trimmed
        assert _faults_per_cycle(nbytes) < 0.02 * pages, nbytes


def test_nothing_is_set_off_linux(monkeypatch: pytest.MonkeyPatch) -> None:
    heap.keep_frame_buffers.cache_clear()
    monkeypatch.setattr(heap.sys, "platform", "darwin")
    try:
        assert heap.keep_frame_buffers() is False
    finally:
        heap.keep_frame_buffers.cache_clear()
