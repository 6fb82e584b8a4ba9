"""Cited by docs/performance.md, "Expression between swaps".

Talking videos for ``bench --motion --input``: the talking-clip animation applied to
other real face photos (scikit-image's astronaut, matplotlib's Grace Hopper; dev extras),
written as 6 s MJPG videos at 30 fps, and ``group.avi``: a real group photo (t1.jpg's
three faces, ``realtime.io.talking.group_photo``) where the middle person talks and the
others keep still (``bench --motion``'s refresh-order runs use the same clip, made in
memory; see docs/stability.md). They are synthetic animations of real photos, not
recordings of people talking.
Run: ``python -m bench.talking_videos OUT_DIR``, then
``python main.py bench --motion --input OUT_DIR/astronaut.avi``."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from realtime.faces.detect import make_detector
from realtime.io.talking import TalkingClip, group_photo


def photos() -> dict[str, np.ndarray]:
    from matplotlib import cbook
    from skimage import data

    hopper = cv2.imread(str(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))
    return {"astronaut": cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR),
            "grace_hopper": hopper}


def main(out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    detector = make_detector("retinaface", Path(tempfile.mkdtemp()))
    for name, photo in photos().items():
        face = max(detector.detect(photo), key=lambda d: d.area)
        clip = TalkingClip(photo, face.landmarks, 640, 480, fps=30.0)
        write(clip, out_dir / f"{name}.avi")
    group = group_photo()
    faces = sorted(detector.detect(group), key=lambda d: float(d.box[0]))
    talker = faces[len(faces) // 2]  # the middle one of three
    write(TalkingClip(group, talker.landmarks, group.shape[1], group.shape[0], fit=False,
                      head_radius=2.0), out_dir / "group.avi")


def write(clip: TalkingClip, path: Path) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), clip.fps,
                             (clip.width, clip.height))
    for i in range(clip.length):
        writer.write(clip.render(i))
    writer.release()
    print(f"wrote {path} ({clip.length} frames)")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "talking-videos"))
