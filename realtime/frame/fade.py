"""Cross-fade at a texture change: no pop when a new swap lands.

When a track's texture is replaced, whatever differs between the old texture (carried
to now) and the new one (the generator's own variation from pose to pose, lighting)
would show at once. ``FadingMotion`` follows both textures to the current frame, each
warped by its own flow (``TextureMotion.follow``), and blends them, the new one's
weight rising linearly from one frame interval over ``fade_s`` seconds, per track. A
texture that arrives during a fade starts a new fade from the one being faded in.

Blending is the same kind as the textures: numpy on the host, device tensors (no host
wait) on the device processor; a ``MaskedCrop`` blends its crop and its mask. Two crops
of different sizes (an enhanced crop beside a plain one) or kinds are not blended: the
new one is shown.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

import cv2
import numpy as np

from realtime.frame.motion import TextureMotion
from realtime.frame.motion_torch import is_tensor
from realtime.frame.textures import Texture


@dataclass
class _Fade:
    shown: Texture  # the newest texture the track has shown
    previous: Texture | None = None  # the one fading out
    since: float = 0.0  # when ``shown`` first showed (clock seconds)
    last: float | None = None  # the track's previous frame (for the frame interval)
    interval: float = 1.0 / 30.0


class FadingMotion(TextureMotion):
    """``TextureMotion`` with a cross-fade at each texture change (``fade_s`` seconds, or
    a callable giving them; 0: none). ``clock`` gives the current time in seconds (one
    frame's faces see nearly the same time). ``fades`` counts the faded changes."""

    def __init__(self, fade_s: float | Callable[[], float] = 0.0, *,
                 clock: Callable[[], float] = time.monotonic, **kw: Any) -> None:
        super().__init__(**kw)
        self._fade_s = fade_s
        self.clock = clock
        self.fades = 0
        self._fades: dict[int, _Fade] = {}

    @property
    def fade_s(self) -> float:
        """The fade's length now (a callable given to the constructor is asked each time:
        the pipeline passes its settings' ``fade_ms``)."""
        return float(self._fade_s() if callable(self._fade_s) else self._fade_s)

    @fade_s.setter
    def fade_s(self, seconds: float) -> None:
        self._fade_s = seconds

    def reset(self) -> None:
        super().reset()
        self._fades.clear()

    def retain(self, live: Iterable[int]) -> None:
        keep = set(live)
        super().retain(keep)
        for track in [t for t in self._fades if t not in keep]:
            del self._fades[track]

    def fade_weight(self, track_id: int) -> float | None:
        """The new texture's weight in the track's last frame; None when not fading."""
        state = self._fades.get(track_id)
        if state is None or state.previous is None:
            return None
        return self._weight(state, self.clock())

    def _weight(self, state: _Fade, now: float) -> float:
        return min(1.0, (now - state.since + state.interval) / max(self.fade_s, 1e-9))

    def follow(self, track_id: int, texture: Texture, aligned_now: Any, **kw: Any) -> Any:
        now = self.clock()
        state = self._fades.get(track_id)
        if state is None:
            state = self._fades[track_id] = _Fade(texture, since=now)
        elif state.shown is not texture:
            fading = self.fade_s > 0 and not _same_texture(state.shown, texture)
            state.previous, state.shown, state.since = (
                state.shown if fading else None), texture, now
            self.fades += int(fading)
        if state.last is not None and now > state.last:
            state.interval = 0.7 * state.interval + 0.3 * min(now - state.last, 0.5)
        state.last = now
        new = super().follow(track_id, texture, aligned_now, **kw)
        if state.previous is None:
            return new
        weight = self._weight(state, now)
        if weight >= 1.0 or self.fade_s <= 0:
            state.previous = None
            return new
        old = super().follow(track_id, state.previous, aligned_now, outgoing=True, **kw)
        return cross_fade(old, new, weight)


def _same_texture(a: Texture, b: Texture) -> bool:
    return a.crop is b.crop


def cross_fade(old: Any, new: Any, weight: float) -> Any:
    """``(1 − weight) × old + weight × new`` for two crops of one kind and size (uint8
    arrays or tensors, or ``MaskedCrop``s of them, masks blended too); ``new`` when they
    cannot be blended."""
    old_crop, old_mask = getattr(old, "crop", old), getattr(old, "mask", None)
    new_crop, new_mask = getattr(new, "crop", new), getattr(new, "mask", None)
    if hasattr(old, "crop") != hasattr(new, "crop") or (old_mask is None) != (new_mask is None):
        return new
    crop = _blend(old_crop, new_crop, weight)
    if crop is None:
        return new
    if not hasattr(new, "crop"):
        return crop
    mask = None if new_mask is None else _blend(old_mask, new_mask, weight)
    if new_mask is not None and mask is None:
        return new
    return replace(new, crop=crop, mask=mask)


def _blend(old: Any, new: Any, weight: float) -> Any:
    if isinstance(old, np.ndarray) and isinstance(new, np.ndarray):
        if old.shape != new.shape or old.dtype != new.dtype:
            return None
        if new.dtype == np.uint8:  # OpenCV rounds
            return cv2.addWeighted(old, 1.0 - weight, new, weight, 0.0)
        return (old + weight * (new - old)).astype(new.dtype)
    if is_tensor(old) and is_tensor(new):
        if tuple(old.shape) != tuple(new.shape) or old.dtype != new.dtype \
                or old.device != new.device:
            return None
        import torch

        mixed = torch.lerp(old.float(), new.float(), weight)
        if new.dtype == torch.uint8:
            return (mixed + 0.5).clamp(0, 255).to(torch.uint8)
        return mixed.to(new.dtype)
    return None
