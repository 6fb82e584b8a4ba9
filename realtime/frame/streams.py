"""A CUDA stream per thread, and the events that order work crossing threads.

Every pipeline thread that touches the GPU (process, swap worker, detect worker, builders)
runs its work on its own stream, made once and current for the thread's life
(:func:`own_stream`). Without it every thread queues on the one legacy default stream, so
the frame's composite and download wait behind the swap worker's generator.

What one thread writes and another reads carries an event (:func:`written`): the reader's
stream waits on it (:func:`adopt`, a device-side wait, never a host one) and the tensors are
marked as used on the reader's stream (``record_stream``: the caching allocator then does
not hand their memory to the writer's next allocation while the reader's work is queued).

Everything is a no-op when torch is not imported or CUDA is not available, so the host path
pays nothing and imports nothing.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Iterable, Iterator
from typing import Any

_local = threading.local()


def cuda_on() -> bool:
    """Whether CUDA work can happen in this process (torch imported, a GPU visible)."""
    torch = sys.modules.get("torch")
    return torch is not None and bool(torch.cuda.is_available())


def thread_stream() -> Any | None:
    """This thread's own CUDA stream (made on first use), None without CUDA."""
    if not cuda_on():
        return None
    made = getattr(_local, "stream", None)
    if made is None:
        import torch

        made = _local.stream = torch.cuda.Stream()
    return made


@contextlib.contextmanager
def own_stream(*, load: bool = False) -> Iterator[Any | None]:
    """Make this thread's stream current for the block (a thread's whole loop).

    ``load``: import torch first. A thread that opens engines (the window's build and
    probe workers, the enhancer's opener) imports torch inside the block itself: without
    this its first build would queue on the shared default stream."""
    if load:
        import torch  # a dependency; cuda_on() looks in sys.modules
    chosen = thread_stream()
    if chosen is None:
        yield None
        return
    import torch

    with torch.cuda.stream(chosen):
        yield chosen


def stream_key() -> int:
    """The current stream's handle (0 without CUDA): part of the cache key of a device
    constant, so each stream reads only the copy its own work wrote."""
    if not cuda_on():
        return 0
    import torch

    return int(torch.cuda.current_stream().cuda_stream)


def written() -> Any | None:
    """An event on the current stream after the work queued so far (what this thread
    wrote and another will read); None without CUDA."""
    if not cuda_on():
        return None
    import torch

    event = torch.cuda.Event()
    event.record(torch.cuda.current_stream())
    return event


def adopt(event: Any | None, tensors: Iterable[Any] = ()) -> None:
    """Order the current stream after ``event`` (a device-side wait) and mark ``tensors``
    as used on it. Nothing without an event."""
    if event is None:
        return
    import torch

    current = torch.cuda.current_stream()
    current.wait_event(event)
    for tensor in tensors:
        # only memory of the stream's device (a CPU processor's tensors have no stream)
        if isinstance(tensor, torch.Tensor) and tensor.device.type == current.device.type:
            tensor.record_stream(current)


def tensors_of(items: Iterable[Any]) -> list[Any]:
    """The tensors inside crops, ``MaskedCrop``s and aligned faces (what a reader uses)."""
    found: list[Any] = []
    for item in items:
        for value in (item, getattr(item, "crop", None), getattr(item, "mask", None),
                      getattr(item, "crop_t", None)):
            if type(value).__module__.startswith("torch") and hasattr(value, "record_stream"):
                found.append(value)
    return found
