"""The controller's face-map adapter: who each tracked face wears, and the preview's
badges (the meter's score and the assignment)."""

from __future__ import annotations

from collections.abc import Callable

from realtime.ui.runtime import Runtime


class FaceAssignments:
    """Reads and sets the face map of whatever ``runtime()`` returns now (None: nothing
    runs); thread-safe like the pipeline calls it makes."""

    def __init__(self, runtime: Callable[[], Runtime | None]) -> None:
        self._runtime = runtime

    def face_scores(self) -> dict[int, str]:
        """Track id → the meter's badge text (identity 0–100), for the preview only."""
        from realtime.faces.quality import meter_score

        runtime = self._runtime()
        quality = getattr(runtime.pipeline, "face_quality", None) if runtime else None
        if quality is None:
            return {}
        return {tid: f"ID {meter_score(q.identity)}" for tid, q in quality().items()}

    def assign_face(self, track_id: int, choice: str | None) -> bool:
        """The person on ``track_id`` wears ``choice``: a source name, ``ACTIVE_SOURCE`` or
        ``LEAVE_ALONE`` (None: forget the assignment). False when nothing runs that maps
        faces (the camera alone)."""
        runtime = self._runtime()
        assign = getattr(runtime.pipeline, "assign_face", None) if runtime else None
        if assign is None or (runtime is not None and runtime.preview_only):
            return False
        assign(track_id, choice)
        return True

    def face_assignments(self) -> dict[int, str]:
        """Track id → what the face wears by assignment (only assigned faces)."""
        runtime = self._runtime()
        assigned = getattr(runtime.pipeline, "face_assignments", None) if runtime else None
        return dict(assigned()) if assigned is not None else {}

    def face_badges(self) -> dict[int, str]:
        """Track id → the preview's badge: the meter's score and the face's assignment,
        e.g. ``"ID 63 · Alice"`` (the preview only: frames never carry it)."""
        from realtime.faces.mapping import ACTIVE_SOURCE, LEAVE_ALONE

        labels = {ACTIVE_SOURCE: "active source", LEAVE_ALONE: "left alone"}
        badges = self.face_scores()
        for tid, name in self.face_assignments().items():
            label = labels.get(name, name)
            badges[tid] = f"{badges[tid]} · {label}" if tid in badges else label
        return badges
