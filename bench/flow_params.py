"""Cited by docs/performance.md, "Expression between swaps".

How the flow texture's parameters trade error for cost, side by side in one run.

Method: three talking clips (the built-in one, and the same animation on scikit-image's
astronaut and matplotlib's Grace Hopper; dev extras), 6 s at 30 fps, every frame
detected with the embedded RetinaFace. A texture is taken every 2 s (the passthrough
generator: the target's own aligned crop); every third frame of the next 2 s is shown
with the static texture and with the flow texture through the real composite, and the
error is the mean |shown − current| inside the paste (weight > 0.5), as ``bench
--motion`` measures it, without threads or timing noise. Cost: CPU time of
``TextureMotion.follow`` per face, OpenCV on one thread (median).
Run: ``python -m bench.flow_params``.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from bench.talking_videos import photos
from realtime.cli.motion_bench import face_error
from realtime.config import Settings
from realtime.faces.detect import make_detector
from realtime.frame import motion
from realtime.frame.process import FrameProcessor
from realtime.frame.textures import Texture
from realtime.io.clip import source_portrait
from realtime.io.talking import TalkingClip
from realtime.session import PassthroughSwapper
from realtime.types import Face

# (flow size, residual scale, forward-backward scale); the first is today's default
VARIANTS = [(motion.FLOW_SIZE, motion.RESIDUAL_SCALE, motion.FB_SCALE),
            (128, 60.0, 3.0), (96, 60.0, 3.0), (112, 28.0, 1.5), (112, 1e9, 1e9)]


def clips() -> dict[str, tuple[list[np.ndarray], list[Face | None]]]:
    detector = make_detector("retinaface", Path(tempfile.mkdtemp()))
    out = {}
    for name, photo in {"built-in": source_portrait(), **photos()}.items():
        found = max(detector.detect(photo), key=lambda d: d.area)
        clip = TalkingClip(photo, found.landmarks, 640, 480)
        frames = [clip.render(i) for i in range(clip.length)]
        faces: list[Face | None] = []
        for frame in frames:
            seen = detector.detect(frame)
            faces.append(Face(1, max(seen, key=lambda d: d.area)) if seen else None)
        out[name] = (frames, faces)
    return out


def evaluate(data: dict[str, tuple[list[np.ndarray], list[Face | None]]],
             processor: FrameProcessor, size: int) -> tuple[dict[str, tuple[float, float]],
                                                            float]:
    errors: dict[str, tuple[float, float]] = {}
    costs: list[float] = []
    for name, (frames, faces) in data.items():
        static, flow = [], []
        for k in range(0, len(frames), 60):
            ref_face = faces[k]
            if ref_face is None:
                continue
            ref = processor.align(frames[k], [ref_face])[0]
            texture = Texture(ref.crop, "passthrough", k, 1, ref.crop)
            follower = motion.TextureMotion(size=size)
            for j in range(k + 2, min(k + 60, len(frames)), 3):
                face = faces[j]
                if face is None:
                    continue
                now = processor.align(frames[j], [face])[0]
                t0 = time.process_time()
                crop = follower.follow(1, texture, now, mode="flow")
                costs.append((time.process_time() - t0) * 1000.0)
                for shown_crop, sink in ((texture.crop, static), (crop, flow)):
                    shown = processor.composite(frames[j], [now], [shown_crop])
                    error = face_error(shown, frames[j], now.matrix, now.size, 0.08)
                    if error is not None:
                        sink.append(error)
        errors[name] = (float(np.mean(static)), float(np.mean(flow)))
    return errors, float(np.median(costs))


def main() -> None:
    cv2.setNumThreads(1)
    processor = FrameProcessor(PassthroughSwapper(), None,  # type: ignore[arg-type]
                               Settings(color_match=False, mask="box"))
    data = clips()
    print("static / flow error (flow ÷ static) per clip; ms per face (one core, CPU time)")
    for size, residual, fb in VARIANTS:
        motion.RESIDUAL_SCALE, motion.FB_SCALE = residual, fb
        errors, cost = evaluate(data, processor, size)
        cells = "  ".join(f"{n} {s:.1f}/{f:.1f} ({f / s:.2f})" for n, (s, f) in errors.items())
        print(f"size {size:>3} residual {residual:>5.0f} fb {fb:>4.1f}: {cells}  {cost:.2f} ms")


if __name__ == "__main__":
    main()
