"""LatestSlot: one item, newest wins, drops counted, waiters woken."""

from __future__ import annotations

import threading
import time

from realtime.slot import LatestSlot


def test_put_replaces_unread_item_and_counts_a_drop() -> None:
    slot: LatestSlot[int] = LatestSlot("t")
    slot.put(1)
    slot.put(2)
    slot.put(3)
    assert slot.drops == 2
    assert slot.pending == 1
    assert slot.get(timeout=0) == 3
    assert slot.pending == 0
    assert slot.get(timeout=0) is None  # nothing newer


def test_taken_item_is_not_a_drop() -> None:
    slot: LatestSlot[int] = LatestSlot()
    for i in range(5):
        slot.put(i)
        assert slot.get(timeout=0) == i
    assert slot.drops == 0
    assert slot.version == 5


def test_get_waits_for_a_newer_item() -> None:
    slot: LatestSlot[str] = LatestSlot()
    threading.Timer(0.05, slot.put, args=("late",)).start()
    t0 = time.monotonic()
    assert slot.get(timeout=2.0) == "late"
    assert 0.03 < time.monotonic() - t0 < 1.0


def test_get_times_out() -> None:
    slot: LatestSlot[int] = LatestSlot()
    t0 = time.monotonic()
    assert slot.get(timeout=0.05) is None
    assert time.monotonic() - t0 >= 0.04


def test_close_wakes_a_waiter() -> None:
    slot: LatestSlot[int] = LatestSlot()
    got: list[int | None] = []
    waiter = threading.Thread(target=lambda: got.append(slot.get(timeout=5.0)))
    waiter.start()
    time.sleep(0.05)
    slot.close()
    waiter.join(1.0)
    assert not waiter.is_alive()
    assert got == [None]


def test_latest_does_not_consume_and_tracks_version() -> None:
    slot: LatestSlot[int] = LatestSlot()
    assert slot.latest() == (0, None)
    slot.put(7)
    assert slot.latest() == (1, 7)
    assert slot.latest() == (1, 7)
    assert slot.get(timeout=0) == 7
    assert slot.latest() == (1, 7)  # the preview keeps showing the last item


def test_unread_items_are_replaced_not_queued() -> None:
    slot: LatestSlot[int] = LatestSlot()
    for item in (1, 2, 3):
        slot.put(item)
    assert slot.pending == 1 and slot.drops == 2
    assert slot.get(timeout=0) == 3
    assert slot.get(timeout=0) is None  # 1 and 2 are gone, not waiting behind 3
    assert slot.pending == 0 and slot.drops == 2


def test_fast_producer_slow_consumer_never_holds_more_than_one() -> None:
    slot: LatestSlot[int] = LatestSlot()
    stop = threading.Event()
    produced = [0]

    def produce() -> None:
        while not stop.is_set():
            produced[0] += 1
            slot.put(produced[0])
            time.sleep(0.0005)

    thread = threading.Thread(target=produce)
    thread.start()
    taken = []
    for _ in range(10):
        newest = slot.version  # item k is the k-th put: newest put so far
        item = slot.get(timeout=1.0)
        assert item is not None
        # latest wins: the item taken is at least as new as the newest put before the
        # get (a queue would hand out an older one: ~20 puts happen between gets)
        assert item >= newest, (item, newest)
        taken.append(item)
        time.sleep(0.01)
    stop.set()
    thread.join()
    assert taken == sorted(taken)  # always newer
    assert slot.drops + len(taken) + slot.pending == produced[0]
