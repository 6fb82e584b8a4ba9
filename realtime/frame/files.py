"""Swapping photos and video frames (``swap``): each frame detected on its own, then the
same face plan as live (:func:`realtime.faces.plan.plan_faces`), one engine call per
identity worn.

Detections carry no identity from one frame to the next, so the face map (``--map``
entries and ``--faces match:REF``) recognises every face of every frame afresh.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from realtime.faces.mapping import NO_MAP
from realtime.faces.plan import plan_faces
from realtime.types import Face, SourceFace

if TYPE_CHECKING:
    from realtime.faces.detect import FaceDetector
    from realtime.faces.mapping import FaceMap
    from realtime.frame.process import FaceProcessor


def make_frame_swapper(
    processor: FaceProcessor,
    detector: FaceDetector,
    *,
    active: SourceFace | None,
    sources: Sequence[SourceFace],
    faces_mode: str,
    face_map: FaceMap | None = None,
) -> Callable[[np.ndarray], tuple[np.ndarray, int]]:
    """``frame → (swapped frame, number of faces swapped)``. ``active`` is what faces
    nobody assigned wear (None: only mapped people are swapped)."""
    encoder = processor.encoder

    def swap_frame(image: np.ndarray) -> tuple[np.ndarray, int]:
        faces = [Face(track_id=i, detection=d) for i, d in enumerate(detector.detect(image))]
        view = NO_MAP
        if face_map is not None and face_map.active:
            face_map.forget_tracks(())
            face_map.identify(image, [(f.track_id, f.landmarks) for f in faces], encoder)
            view = face_map.view(f.track_id for f in faces)
        plan = plan_faces(faces, mode=faces_mode, max_faces=max(len(faces), 1), active=active,
                          sources=sources, face_map=view)
        groups: dict[str, tuple[SourceFace, list[Face]]] = {}
        for face, source in zip(plan.faces, plan.sources, strict=True):
            groups.setdefault(source.name, (source, []))[1].append(face)
        out = image
        for source, group in groups.values():  # one engine call per identity
            out, _ = processor.process(out, group, source)
        return out if groups else image.copy(), len(plan.faces)

    return swap_frame
