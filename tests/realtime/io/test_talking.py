"""The talking clip: deterministic frames whose mouth, eyes and brows move."""

from __future__ import annotations

import numpy as np
import pytest

from realtime.io.clip import source_portrait
from realtime.io.talking import TalkingClip, blink, brow_raise, jaw_opening, talking_source

# five points of source_portrait()'s face (found once with the embedded RetinaFace)
POINTS = np.array([[143.0, 190.0], [222.0, 186.0], [186.0, 235.0], [150.0, 283.0],
                   [220.0, 280.0]])


@pytest.fixture(scope="module")
def clip() -> TalkingClip:
    return TalkingClip(source_portrait(), POINTS, 320, 240, fps=30.0)


def test_the_motions_come_and_go() -> None:
    ts = np.arange(0, 6, 1 / 30)
    jaw = [jaw_opening(t) for t in ts]
    assert max(jaw) > 0.8 and min(jaw) == 0.0 and jaw_opening(3.0) == 0.0  # a pause
    assert max(blink(t) for t in ts) > 0.9 and blink(0.0) == 0.0
    assert max(brow_raise(t) for t in ts) > 0.9


def test_frames_are_deterministic_and_the_mouth_moves(clip: TalkingClip) -> None:
    closed = int(np.argmin([jaw_opening(i / 30) + 0.0 for i in range(30, 60)])) + 30
    opened = int(np.argmax([jaw_opening(i / 30) for i in range(0, 60)]))
    assert np.array_equal(clip.render(opened), clip.render(opened + clip.length))
    mouth = clip.points[3:5].mean(axis=0).round().astype(int)
    x, y = mouth
    box = (slice(y - 6, y + 14), slice(x - 10, x + 10))
    a = clip.render(opened)[box].astype(float)
    b = clip.render(closed)[box].astype(float)
    assert a.mean() < b.mean() - 10  # the open mouth is darker
    far = (slice(0, 20), slice(0, 20))
    assert np.abs(clip.render(opened)[far].astype(float) - clip.render(closed)[far]).mean() < 8


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="BGR uint8"):
        TalkingClip(np.zeros((50, 50), np.uint8), POINTS)
    with pytest.raises(ValueError, match="expected a face"):
        TalkingClip(source_portrait(), np.zeros((5, 2)))
    with pytest.raises(ValueError, match="at least 64"):
        TalkingClip(source_portrait(), POINTS, 32, 32)


def test_the_source_is_paced_and_stops(clip: TalkingClip) -> None:
    source = talking_source(clip, fps=100.0)
    source.open()
    frames = [source.read() for _ in range(3)]
    assert [f.index for f in frames if f is not None] == [0, 1, 2]
    assert frames[2] is not None and frames[2].image.shape == (240, 320, 3)
    slow = talking_source(clip, fps=0.5)
    slow.open()
    assert slow.read() is not None
    slow.close()  # the next frame is 2 s away: a closed source returns at once, no frame
    assert slow.read() is None


def test_a_group_photo_as_it_is_with_one_person_talking() -> None:
    """fit=False keeps the photo as the frame; head_radius keeps the head's motion to the
    talker's neighbourhood, so the far corner of the frame never changes."""
    from realtime.io.talking import group_photo

    photo = group_photo()
    assert photo.shape == (480, 640, 3)
    talker = POINTS * 0.5 + np.array([240.0, 180.0])  # any face-sized five points
    clip = TalkingClip(photo, talker, 640, 480, fit=False, head_radius=2.0)
    moved = clip.render(30)  # 1 s in: the head has drifted and turned
    still = (slice(0, 60), slice(0, 60))
    assert np.array_equal(moved[still], photo[still])
    near = (slice(150, 260), slice(260, 380))
    assert np.abs(moved[near].astype(int) - photo[near]).mean() > 1.0
    whole = TalkingClip(photo, talker, 640, 480, fit=False)  # the whole frame moves
    assert not np.array_equal(whole.render(30)[still], photo[still])
    with pytest.raises(ValueError, match="must be 320×240"):
        TalkingClip(photo, talker, 320, 240, fit=False)
