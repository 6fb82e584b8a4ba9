"""Cited by docs/stability.md, "The bound on any order".

How much any refresh order can gain on the clip of ``bench.refresh_order_sim`` (three
people of t1.jpg, the middle one talking, the others still). An order only decides how
old each face's texture is; so this measures the error of a texture as a function of its
age alone, ``e(a)``, and derives what each order's schedule makes of it:

- each face's texture of age ``a`` frames: the passthrough texture (the face's crop at
  frame ``k − a``) shown at frame ``k`` with the real ``TextureMotion`` (flow, then
  static) and pasted by the real ``FrameProcessor``; the error is bench --motion's (mean
  |shown − current| inside the paste), averaged over every frame ``k`` of the clip's loop
  (the clip repeats every ``TALK_SECONDS``, so one loop holds every phase);
- with a swap job taking ``G`` frames and three faces, the ``stalest`` order refreshes
  each face every 3 jobs: its texture's age runs from ``G`` to ``4G`` (the crop is taken
  when the job starts);
- the best any order can do within the wait bound (``WAIT_BOUND`` × 3 jobs): the talker
  served 4 jobs of every 6, the two still faces once each, spread evenly: the talker's
  ages run ``G..2G`` and ``G..3G`` in turn;
- the oracle that refreshes the talker on every job and the still faces never (no
  bound): its ages run ``G..2G``.

A still face's error does not depend on its texture's age (printed, at ``G`` and ``4G``),
so the mean error over the three faces is the still faces' error plus the talker's, and
the ratios below are exact for these schedules up to the phase sampling of one loop.
Deterministic. Run: ``python -m bench.refresh_order_bound [G ...]`` (frames a job takes;
defaults 12, 30 and 60: 0.4, 1 and 2 s a face at 30 fps).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import numpy as np

from bench.refresh_order_sim import group_scene
from realtime.cli.motion_bench import face_error
from realtime.frame.motion import TextureMotion
from realtime.frame.process import FrameProcessor
from realtime.frame.refresh import WAIT_BOUND
from realtime.frame.textures import Texture
from realtime.types import Face

AGE_STEP = 3  # frames between two ages measured
FRAME_STEP = 2  # frames of the loop between two measured phases


def errors_by_age(frames: Sequence[np.ndarray], face: Face, processor: FrameProcessor,
                  ages: Sequence[int], texture: str) -> dict[int, float]:
    """``e(a)`` of one face: the mean error of its texture of age ``a`` frames over the
    loop's phases (``frames``: one loop of the clip)."""
    aligned = [processor.align(image, [face])[0] for image in frames]
    motion = TextureMotion()
    out: dict[int, float] = {}
    for age in ages:
        errors = []
        for k in range(0, len(frames), FRAME_STEP):
            then = aligned[(k - age) % len(frames)]
            shown = motion.follow(face.track_id, Texture(then.crop, "p", k - age,
                                                         face.track_id, then.crop),
                                  aligned[k], mode=texture)
            pasted = processor.composite(frames[k], [aligned[k]], [shown])
            error = face_error(pasted, frames[k], np.asarray(aligned[k].matrix),
                               aligned[k].size, 0.08)
            if error is not None:
                errors.append(error)
        out[age] = float(np.mean(errors))
    return out


def mean_over(curve: dict[int, float], start: int, stop: int) -> float:
    """The mean of ``e(a)`` over the measured ages in ``[start, stop)``."""
    inside = [e for a, e in curve.items() if start <= a < stop]
    if not inside:
        raise ValueError(f"no age measured in [{start}, {stop})")
    return float(np.mean(inside))


def schedule_errors(curve: dict[int, float], generator_frames: int) -> dict[str, float]:
    """The talker's mean error under each schedule for a job of ``generator_frames``."""
    g = generator_frames
    short, long = mean_over(curve, g, 2 * g), mean_over(curve, g, 3 * g)
    return {
        "stalest": mean_over(curve, g, 4 * g),
        # intervals of G and 2G in turn: ages G..2G for G frames, G..3G for 2G frames
        "bounded": (g * short + 2 * g * long) / (3 * g),
        "oracle": short,
    }


def main(generators: Sequence[int] = (12, 30, 60)) -> None:
    if WAIT_BOUND != 2.0:
        raise SystemExit(f"the bounded schedule here is WAIT_BOUND 2's; it is {WAIT_BOUND}")
    clip, faces, processor = group_scene()
    frames = [clip.render(k) for k in range(clip.length)]  # one loop: every phase
    talker, still = faces[1], [faces[0], faces[2]]
    longest = 4 * max(generators)
    ages = list(range(AGE_STEP, longest + 1, AGE_STEP))
    print(f"{len(faces)} faces, the middle one talking; texture ages {ages[0]}..{ages[-1]} "
          f"frames every {AGE_STEP}, each over the {clip.length}-frame loop every "
          f"{FRAME_STEP} frames")
    for texture in ("flow", "static"):
        curve = errors_by_age(frames, talker, processor, ages, texture)
        floors = []
        for face in still:
            at = errors_by_age(frames, face, processor, [min(generators), longest], texture)
            floors.append(float(np.mean(list(at.values()))))
            print(f"{texture:>6} still face {face.track_id}: error at age "
                  + ", ".join(f"{a}: {e:.2f}" for a, e in at.items()))
        print(f"{texture:>6} talker e(a), every 15 frames: "
              + ", ".join(f"{a}: {e:.2f}" for a, e in curve.items() if a % 15 == 0))
        for g in generators:
            talker_error = schedule_errors(curve, g)
            mean = {k: (sum(floors) + e) / 3.0 for k, e in talker_error.items()}
            print(f"{texture:>6} G {g:>3} frames: talker stalest {talker_error['stalest']:.2f}, "
                  f"bounded {talker_error['bounded']:.2f}, oracle {talker_error['oracle']:.2f}; "
                  f"mean ÷ stalest: bounded {mean['bounded'] / mean['stalest']:.2f}, "
                  f"oracle {mean['oracle'] / mean['stalest']:.2f}")


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or (12, 30, 60))
