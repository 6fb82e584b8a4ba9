"""A swap and what it hands over: textures, their events, their flow references, its time.

The swap runs on the frame thread (sync mode) or on the swap worker (async mode), each on
its own CUDA stream (:mod:`realtime.frame.streams`). What crosses threads carries an event:
the aligned crops the frame thread made (``job.ready``) and the textures the worker wrote
(``Texture.ready``); the reader's stream waits on it on the device. The worker waits (on
the host) for its own swap only, so it takes its next job after its previous swap completed
and publishes textures the frame thread can use without waiting for the worker.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from realtime.frame.motion import frame_greys
from realtime.frame.process import FaceProcessor, swap_by_source
from realtime.frame.streams import adopt, tensors_of, written
from realtime.frame.swap_timing import SwapTimer
from realtime.frame.textures import TextureStore
from realtime.types import SourceFace


class SwapJob(Protocol):
    """What a swap needs from the pipeline's job (``pipeline._SwapJob``)."""

    @property
    def frame_index(self) -> int: ...
    @property
    def track_ids(self) -> tuple[int, ...]: ...
    @property
    def aligned(self) -> tuple[Any, ...]: ...
    @property
    def sources(self) -> tuple[SourceFace, ...]: ...
    @property
    def image(self) -> np.ndarray | None: ...
    @property
    def crops(self) -> tuple[Any, ...] | None: ...
    @property
    def ready(self) -> Any: ...


def receive(job: SwapJob) -> None:
    """On the worker: order its stream after the frame thread's writes of the job's
    aligned crops (and swapped crops, in sync mode) before reading them."""
    adopt(job.ready, tensors_of([*job.aligned, *(job.crops or ())]))


def swap_on_worker(processor: FaceProcessor, textures: TextureStore, timer: SwapTimer,
                   job: SwapJob) -> list[Any]:
    """The swap worker's swap: swap, wait for it (this thread's own work), publish the
    textures with the event after them and, on the device path, their flow reference
    greys made on the host from the job's frame (the frame thread never reads them back)."""
    timing = timer.begin()
    crops = swap_by_source(processor, job.aligned, job.sources, job.track_ids)
    timer.end(timing, wait=True)
    textures.put_swapped(job.frame_index, job.track_ids, job.aligned, crops, job.sources,
                         ready=written(), greys=_host_greys(job))
    return crops


def swap_on_frame(processor: FaceProcessor, textures: TextureStore, timer: SwapTimer,
                  job: SwapJob) -> list[Any]:
    """Sync mode: swap on the frame thread's stream; its GPU time is read on a later frame
    (``timer.done``), never waited for."""
    timing = timer.begin()
    crops = swap_by_source(processor, job.aligned, job.sources, job.track_ids)
    timer.end(timing)
    # the greys too: after a switch to async mode the flow reads them, not the device
    textures.put_swapped(job.frame_index, job.track_ids, job.aligned, crops, job.sources,
                         greys=_host_greys(job))
    return crops


def _host_greys(job: SwapJob) -> list[np.ndarray] | None:
    """On the device path, the textures' flow reference greys made on the host from the
    job's frame and each face's matrix (nothing read back); None on the host path, whose
    crops are host images already."""
    if job.image is None or not any(hasattr(a, "crop_t") for a in job.aligned):
        return None
    return frame_greys(job.image, job.aligned)


def on_device(processor: object) -> bool:
    """Whether ``processor``'s swaps queue work on a CUDA device (timed by events)."""
    return bool(getattr(processor, "queues_on_device", False))


__all__: Sequence[str] = ("on_device", "receive", "swap_on_frame", "swap_on_worker")
