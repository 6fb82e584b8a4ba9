"""Cited by docs/stability.md, "Refresh where the face changes".

The refresh orders side by side without threads: the clip where one of three people of
t1.jpg talks (``realtime.io.talking.group_photo``; the talker's head moves too, the
others keep still) stepped frame by frame at 30 fps, one swap job at a time taking
``G`` frames per face (the passthrough generator: the texture is the face's crop at the
frame the job started), faces picked by the real ``RefreshPlanner`` from the real flow
texture's misfit (the static texture's plain misfit), shown with the real
``TextureMotion`` and pasted by the real ``FrameProcessor``; the flow texture, then the
static one. The error per face is bench --motion's (mean |shown − current|
inside the paste), over frames 60..N. Deterministic: the machine's load changes nothing
but the run time, which the threaded ``bench --motion`` run cannot promise on a busy CPU.

``--light``: the same clip with the light on the right-hand (still) face slowly rising and
falling (``DriftingLight``): a texture there keeps ageing the longer it is shown, where the
talker's stops ageing after about a second (``bench.refresh_order_bound``).

Run: ``python -m bench.refresh_order_sim [G] [N] [--light]`` (defaults 12 frames, 360
frames).
"""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from realtime.cli.motion_bench import face_error
from realtime.config import Settings
from realtime.faces.detect import make_detector
from realtime.frame.motion import TextureMotion
from realtime.frame.process import FrameProcessor
from realtime.frame.refresh import RefreshPlanner
from realtime.frame.textures import Texture, TextureStore
from realtime.io.talking import TalkingClip, group_photo
from realtime.session import PassthroughSwapper
from realtime.types import Face

# The drifting light: its share of the face's brightness, and the time it takes to rise,
# fall and come back (a cloud passing, a lamp's auto-exposure): 15 % over 10 s changes the
# face by up to ~4 grey levels in 0.4 s and ~15 in 1.6 s.
LIGHT_SWING = 0.15
LIGHT_PERIOD_S = 10.0


class DriftingLight:
    """``clip``'s frames with the light on the face in ``box`` (x0, y0, x1, y1) rising and
    falling by ``LIGHT_SWING`` over ``LIGHT_PERIOD_S``, soft-edged around the face."""

    def __init__(self, clip: TalkingClip, box: np.ndarray, fps: float = 30.0) -> None:
        self.clip, self.fps = clip, fps
        h, w = clip.height, clip.width
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        x0, y0, x1, y1 = (float(v) for v in box)
        cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0), (y1 - y0)
        self.weight = np.exp(-(((xs - cx) / rx) ** 2 + ((ys - cy) / ry) ** 2) * 2.0)[..., None]

    def render(self, index: int) -> np.ndarray:
        gain = LIGHT_SWING * math.sin(2 * math.pi * index / (self.fps * LIGHT_PERIOD_S))
        lit = self.clip.render(index).astype(np.float32) * (1.0 + gain * self.weight)
        return cv2.convertScaleAbs(lit)  # rounded and saturated to uint8


def run(order: str, texture: str, clip: Any, faces: list[Face],
        processor: FrameProcessor, generator_frames: int,
        frames: int) -> tuple[dict[int, float], dict[int, int]]:
    store, planner = TextureStore(), RefreshPlanner()
    motion = TextureMotion(measure_static=order == "error")
    ids = [f.track_id for f in faces]
    job: tuple[int, int, np.ndarray, int] | None = None  # (done at, track, crop, frame)
    errors: dict[int, list[float]] = {t: [] for t in ids}
    served = dict.fromkeys(ids, 0)
    for k in range(frames):
        image = clip.render(k)
        aligned = processor.align(image, faces)
        if job is not None and k >= job[0]:
            _, track, crop, started = job
            store.put(track, Texture(crop, "p", started, track, crop))
            served[track] += 1
            job = None
        shown = [(f.track_id, a, motion.follow(f.track_id, t, a, mode=texture))
                 for f, a in zip(faces, aligned, strict=True)
                 if (t := store.get(f.track_id)) is not None]
        if job is None:  # picked after this frame's textures were followed (and measured)
            i = planner.pick_in_order(store, ids, ["p"] * len(ids), aligned,
                                      motion.unexplained, order)
            job = (k + generator_frames, ids[i], aligned[i].crop.copy(), k)
        if not shown or k < 60:
            continue
        out = processor.composite(image, [a for _, a, _ in shown], [c for _, _, c in shown])
        for track, a, _ in shown:
            error = face_error(out, image, np.asarray(a.matrix), a.size, 0.08)
            if error is not None:
                errors[track].append(error)
    return {t: float(np.mean(e)) for t, e in errors.items() if e}, served


def group_scene() -> tuple[TalkingClip, list[Face], FrameProcessor]:
    """t1.jpg's three faces, left to right, the middle one talking; a host processor that
    pastes crops as they are (box mask, no colour match)."""
    detector = make_detector("retinaface", Path(tempfile.mkdtemp()))
    photo = group_photo()
    found = sorted(detector.detect(photo), key=lambda d: float(d.box[0]))
    clip = TalkingClip(photo, found[1].landmarks, photo.shape[1], photo.shape[0], fit=False,
                       head_radius=2.0)
    faces = [Face(i + 1, d) for i, d in enumerate(found)]
    processor = FrameProcessor(PassthroughSwapper(), None,  # type: ignore[arg-type]
                               Settings(color_match=False, mask="box"))
    return clip, faces, processor


def main(generator_frames: int = 12, frames: int = 360, light: bool = False) -> None:
    talking, faces, processor = group_scene()
    clip: Any = DriftingLight(talking, faces[2].box) if light else talking
    print(f"{len(faces)} faces, the middle one talking"
          f"{', the light on the right one drifting' if light else ''}; a swap job takes "
          f"{generator_frames} frames per face at 30 fps; errors over frames 60..{frames - 1}")
    for texture in ("flow", "static"):
        means = {}
        for order in ("stalest", "error"):
            errors, served = run(order, texture, clip, faces, processor, generator_frames,
                                 frames)
            means[order] = float(np.mean(list(errors.values())))
            print(f"{texture:>6} {order:>7}: error per face (left to right) "
                  f"[{', '.join(f'{e:.2f}' for e in errors.values())}] "
                  f"mean {means[order]:.3f}; "
                  f"refreshes [{', '.join(str(n) for n in served.values())}]")
        print(f"{texture:>6} error ÷ stalest: {means['error'] / means['stalest']:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="The refresh orders side by side, frame by frame.")
    parser.add_argument("generator_frames", type=int, nargs="?", default=12)
    parser.add_argument("frames", type=int, nargs="?", default=360)
    parser.add_argument("--light", action="store_true", help="the right face's light drifts")
    args = parser.parse_args()
    main(args.generator_frames, args.frames, light=args.light)
