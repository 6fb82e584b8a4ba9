"""Cited by docs/stability.md, "The fade".

The picture strip of a texture change: without the fade (top row) and with a
250 ms cross-fade (bottom row), eight consecutive frames of the built-in talking clip
at 30 fps, the flow texture on, the new texture arriving at the second frame.

The passthrough generator's textures are the target's own crops, so a change would
show only the flow's leftovers; to stand in for a real generator's variation from one
swap to the next (tone, lighting), the new texture is made warmer and 12 grey levels
brighter. The number under each tile is the mean change of the face region from the
previous output frame (0–255).
Run: ``python -m bench.fade_strip docs/fade_strip.png``."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from realtime.config import Settings
from realtime.faces.detect import make_detector
from realtime.frame.fade import FadingMotion
from realtime.frame.process import FrameProcessor
from realtime.frame.textures import Texture
from realtime.io.clip import source_portrait
from realtime.io.talking import TalkingClip
from realtime.session import PassthroughSwapper
from realtime.types import Face

OLD_AT, FIRST, NEW_AT, FRAMES = 10, 28, 29, 8  # frame indices (30 fps)


def main(out: Path) -> None:
    detector = make_detector("retinaface", Path(tempfile.mkdtemp()))
    photo = source_portrait()
    clip = TalkingClip(photo, detector.detect(photo)[0].landmarks, 640, 480)
    processor = FrameProcessor(PassthroughSwapper(), None,  # type: ignore[arg-type]
                               Settings(color_match=False, mask="box"))

    def aligned_at(index: int) -> tuple[np.ndarray, Face, object]:
        image = clip.render(index)
        face = Face(1, max(detector.detect(image), key=lambda d: d.area))
        return image, face, processor.align(image, [face])[0]

    _, _, old = aligned_at(OLD_AT)
    _, _, new = aligned_at(NEW_AT)
    varied = np.clip(new.crop.astype(np.int16) + np.array([4, 12, 22]), 0, 255).astype(np.uint8)
    textures = (Texture(old.crop, "p", OLD_AT, 1, old.crop),
                Texture(varied, "p", NEW_AT, 1, new.crop))
    _, first, _ = aligned_at(FIRST)
    x0, y0, x1, y1 = first.detection.box.astype(int)
    pad = int(0.25 * (x1 - x0))  # one window for every tile: the change shows
    box = (slice(max(y0 - pad, 0), y1 + pad), slice(max(x0 - pad, 0), x1 + pad))
    rows = []
    for fade_s in (0.0, 0.25):
        now = [0.0]
        motion = FadingMotion(fade_s, clock=lambda now=now: now[0])  # type: ignore[misc]
        tiles, previous = [], None
        for index in range(FIRST, FIRST + FRAMES):
            now[0] = index / clip.fps
            image, _, aligned = aligned_at(index)
            texture = textures[0] if index < NEW_AT else textures[1]
            shown = processor.composite(image, [aligned],
                                        [motion.follow(1, texture, aligned, mode="flow")])
            change = 0.0 if previous is None else float(
                cv2.absdiff(shown[box], previous[box]).mean())
            previous = shown
            tile = cv2.resize(shown[box], (160, int(160 * (box[0].stop - box[0].start)
                                                    / (box[1].stop - box[1].start))))
            label = f"{change:.1f}" if index > FIRST else ("fade 250 ms" if fade_s else
                                                            "no fade")
            cv2.putText(tile, label, (6, tile.shape[0] - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.55,
                        (255, 255, 255), 2)
            tiles.append(tile)
        rows.append(np.hstack(tiles))
    cv2.imwrite(str(out), np.vstack(rows), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(f"wrote {out}: frames {FIRST}..{FIRST + FRAMES - 1}, new texture from frame {NEW_AT}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/fade_strip.png"))
