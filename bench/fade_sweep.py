"""Cited by docs/stability.md, "The fade".

The fade's length chosen from measurements: pop, flicker and error for several fade
lengths side by side, without threads. The built-in talking clip is stepped frame by
frame at 30 fps; every 60 frames (0.5 refreshes a second) a new texture arrives, the
face's crop from 12 frames earlier (a generator taking 0.4 s, passthrough); the flow
texture follows the face with the real ``FadingMotion`` (the clock is the frame's time)
and the real ``FrameProcessor`` pastes it; bench --motion's ``StabilityMeter`` takes pop
(mean over the change's frames), its peak (the largest of them), the input's own peak
over the same frames, and flicker, and its face error the error, over frames 60..N. Two
generators: the plain passthrough, and one whose textures alternate in tone (every other
one warmer and 12 grey levels brighter), standing in for a real generator's variation
from swap to swap.
Deterministic: the machine's load changes nothing but the run time.
Run: ``python -m bench.fade_sweep [N]`` (default 600 frames: 9 texture changes).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

from realtime.cli.motion_bench import face_error
from realtime.cli.stability_bench import StabilityMeter
from realtime.config import Settings
from realtime.faces.detect import make_detector
from realtime.frame.fade import FadingMotion
from realtime.frame.process import FrameProcessor
from realtime.frame.textures import Texture
from realtime.io.clip import source_portrait
from realtime.io.talking import TalkingClip
from realtime.session import PassthroughSwapper
from realtime.types import Face

FADES_MS = (0, 125, 250, 500, 1000)
EVERY, LATENCY, FPS = 60, 12, 30.0
TONE = np.array([4, 12, 22], np.int16)


def run(fade_ms: float, varied: bool, frames: list[np.ndarray], faces: list[Face],
        processor: FrameProcessor
        ) -> tuple[float | None, float | None, float | None, float | None, float]:
    """pop, pop_peak, pop_input_peak, flicker and the mean face error of one run."""
    now = [0.0]
    motion = FadingMotion(fade_ms / 1000.0, clock=lambda: now[0])
    meter = StabilityMeter(people=1)
    texture: Texture | None = None
    errors = []
    for k, (image, face) in enumerate(zip(frames, faces, strict=True)):
        now[0] = k / FPS
        meter.measuring = k >= EVERY
        meter.begin_frame(image)
        aligned = processor.align(image, [face])[0]
        if k >= LATENCY and (k - LATENCY) % EVERY == 0:
            source = processor.align(frames[k - LATENCY], [faces[k - LATENCY]])[0].crop
            crop = source
            if varied and ((k - LATENCY) // EVERY) % 2:
                crop = np.clip(source.astype(np.int16) + TONE, 0, 255).astype(np.uint8)
            texture = Texture(crop, "p", k - LATENCY, 1, source)
        if texture is None:
            continue
        shown = motion.follow(1, texture, aligned, mode="flow")
        out = processor.composite(image, [aligned], [shown])
        weight = motion.fade_weight(1)
        changed = meter.measuring and texture.frame_index == k - LATENCY
        meter.faces(image, out, [(np.asarray(aligned.matrix), aligned.size, None)], 0.08,
                    [(1, changed, weight is not None)])
        if meter.measuring:
            error = face_error(out, image, np.asarray(aligned.matrix), aligned.size, 0.08)
            if error is not None:
                errors.append(error)
    result = meter.result()
    return result.pop, result.pop_peak, result.pop_input_peak, result.flicker, \
        float(np.mean(errors))


def _figure(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def main(count: int = 600) -> None:
    detector = make_detector("retinaface", Path(tempfile.mkdtemp()))
    photo = source_portrait()
    clip = TalkingClip(photo, detector.detect(photo)[0].landmarks, 640, 480)
    frames = [clip.render(k) for k in range(count)]
    faces = [Face(1, max(detector.detect(f), key=lambda d: d.area)) for f in frames]
    processor = FrameProcessor(PassthroughSwapper(), None,  # type: ignore[arg-type]
                               Settings(color_match=False, mask="box"))
    print(f"talking clip, {count} frames at 30 fps, a texture every {EVERY} frames "
          f"({LATENCY} frames old), flow texture")
    print(f"{'generator':>12} {'fade ms':>7} {'pop':>6} {'peak':>6} {'input':>6} "
          f"{'flicker':>7} {'error':>6}")
    for varied in (False, True):
        for fade in FADES_MS:
            pop, peak, floor, flicker, error = run(fade, varied, frames, faces, processor)
            print(f"{'tone varies' if varied else 'passthrough':>12} {fade:>7} "
                  f"{_figure(pop):>6} {_figure(peak):>6} {_figure(floor):>6} "
                  f"{'-' if flicker is None else f'{flicker:.2f}':>7} {error:>6.2f}")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:2]))
