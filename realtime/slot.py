"""A one-slot, latest-wins handoff between two threads.

The producer never waits: ``put`` replaces an item the consumer has not taken yet and
counts it as a drop, so a slow consumer always sees the newest item and nothing piles
up (latency bounded by construction). ``version`` increases with every ``put`` so a
poller (the GUI's preview timer) can tell whether anything changed without consuming.
"""

from __future__ import annotations

import threading
import time
from typing import Generic, TypeVar

T = TypeVar("T")


class LatestSlot(Generic[T]):
    """Holds at most one item; the newest wins.

    One consumer calls :meth:`get` (which takes the item); any number of pollers may
    call :meth:`latest` (which does not). :meth:`close` wakes every waiter so threads
    can stop promptly.
    """

    def __init__(self, name: str = "slot") -> None:
        self.name = name
        self._cond = threading.Condition()
        self._item: T | None = None
        self._unread = False
        self._version = 0
        self._drops = 0
        self._closed = False

    def put(self, item: T) -> None:
        """Store ``item``; an unread previous item is discarded and counted as a drop."""
        with self._cond:
            if self._unread:
                self._drops += 1
            self._item = item
            self._unread = True
            self._version += 1
            self._cond.notify_all()

    def get(self, timeout: float | None = None) -> T | None:
        """Take the newest unread item, waiting up to ``timeout`` seconds for one.

        Returns ``None`` on timeout or when the slot is closed.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._unread and not self._closed:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining)
            if not self._unread:
                return None
            self._unread = False
            return self._item

    def latest(self) -> tuple[int, T | None]:
        """``(version, item)`` without taking it: for pollers such as the preview."""
        with self._cond:
            return self._version, self._item

    def close(self) -> None:
        """Wake every waiter; later ``get`` calls return an unread item or ``None``."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def reopen(self) -> None:
        """Forget a previous close and any unread item (for a pipeline restart)."""
        with self._cond:
            self._closed = False
            self._unread = False
            self._item = None

    @property
    def version(self) -> int:
        with self._cond:
            return self._version

    @property
    def drops(self) -> int:
        """Items replaced before anyone took them."""
        with self._cond:
            return self._drops

    @property
    def pending(self) -> int:
        """0 or 1: whether an unread item waits (the slot never holds more)."""
        with self._cond:
            return int(self._unread)
