"""Cited by docs/using.md, "Expression between swaps".

The picture strip docs/motion_strip.png: the current frame · the static texture · the flow
texture · flow with the live mouth, at the same instant, on the built-in talking clip with
the passthrough generator (the texture is the target's own crop from 1.4 s earlier, so a
perfect result is the current frame itself).
Run: ``python -m bench.motion_strip docs/motion_strip.png``."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from realtime.config import Settings
from realtime.faces.detect import make_detector
from realtime.frame.motion import TextureMotion
from realtime.frame.process import FrameProcessor
from realtime.frame.textures import Texture
from realtime.io.clip import source_portrait
from realtime.io.talking import TalkingClip, jaw_opening
from realtime.session import PassthroughSwapper
from realtime.types import Face

SWAPPED_AT = 0.55  # seconds into the clip: mouth nearly closed


def main(out: Path) -> None:
    detector = make_detector("retinaface", Path(tempfile.mkdtemp()))
    photo = source_portrait()
    clip = TalkingClip(photo, detector.detect(photo)[0].landmarks, 640, 480)
    swapped_at = round(SWAPPED_AT * clip.fps)
    later = range(swapped_at + 20, swapped_at + 60)
    now = max(later, key=lambda i: jaw_opening(i / clip.fps))  # mouth wide open
    settings = Settings(color_match=False, mask="box")
    processor = FrameProcessor(PassthroughSwapper(), None, settings)  # type: ignore[arg-type]

    def face_of(image: np.ndarray) -> Face:
        return Face(1, max(detector.detect(image), key=lambda d: d.area))

    before, current = clip.render(swapped_at), clip.render(now)
    old = processor.align(before, [face_of(before)])[0]
    texture = Texture(old.crop, "passthrough", swapped_at, 1, old.crop)
    face = face_of(current)
    aligned = processor.align(current, [face])[0]
    static = processor.composite(current, [aligned], [texture.crop])
    flow_crop = TextureMotion().follow(1, texture, aligned, mode="flow")
    flow = processor.composite(current, [aligned], [flow_crop])
    mouth_crop = TextureMotion().follow(1, texture, aligned, mode="flow", live_mouth=True,
                                        landmarks=face.landmarks)
    mouth = processor.composite(current, [aligned], [mouth_crop])
    x0, y0, x1, y1 = face.detection.box.astype(int)
    pad = int(0.35 * (x1 - x0))
    box = (slice(max(y0 - pad, 0), y1 + pad), slice(max(x0 - pad, 0), x1 + pad))
    tiles = []
    for image, label in ((current, "current frame"), (static, "static texture"),
                         (flow, "flow texture"), (mouth, "flow + live mouth")):
        tile = cv2.resize(image[box], (300, int(300 * (box[0].stop - box[0].start)
                                                 / (box[1].stop - box[1].start))))
        cv2.putText(tile, label, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2)
        tiles.append(tile)
    cv2.imwrite(str(out), np.hstack(tiles))
    print(f"wrote {out}: texture from frame {swapped_at}, shown at frame {now} "
          f"({(now - swapped_at) / clip.fps:.1f} s later)")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/motion_strip.png"))
