"""The outputs of a pipeline as a group: started together, their drops counted together."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from realtime.io.sinks import FrameSink

log = logging.getLogger(__name__)


def start_sinks(sinks: Sequence[FrameSink]) -> list[tuple[str, Exception]]:
    """Start each sink; one that cannot open (no virtual camera device) must not stop the
    stream: its (description, error) is returned for the UI/CLI, the others run."""
    errors: list[tuple[str, Exception]] = []
    for sink in sinks:
        try:
            sink.start()
        except Exception as exc:
            log.error("%s could not start: %s", sink.describe(), exc)
            errors.append((sink.describe(), exc))
    return errors


def sink_drops(sinks: Sequence[FrameSink]) -> dict[str, int]:
    """Frames dropped by sinks that run their own thread, by sink name (non-zero only)."""
    drops: dict[str, int] = {}
    for sink in sinks:
        sink_stats = getattr(sink, "stats", None)
        count = getattr(sink_stats() if callable(sink_stats) else None, "drops", 0)
        if count:
            drops[getattr(sink, "name", type(sink).__name__)] = int(count)
    return drops
