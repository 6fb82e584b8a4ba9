"""Expression at frame rate: a swapped texture that follows the target's own motion.

When the swapper is slower than the camera, each frame pastes the newest swapped crop
(the texture) with the frame's own transform. The transform follows the head; it cannot
follow the mouth, the eyes or the brows, so between two swaps the face would be a still
picture. Here, for each face, dense optical flow in aligned-crop space runs from the
target crop the texture was swapped from to the face's current aligned crop, and the
texture is warped with it before the paste.

The flow is computed on small grey crops (``FLOW_SIZE``) with OpenCV's DIS optical flow,
in both directions: where the two disagree (forward-backward check), where the warped
reference does not look like the current crop (photometric residual: new content, such
as teeth when the mouth opens), and near the crop's edges, the warp blends smoothly back
to the plain texture. The flow is per track: a texture is only warped with the motion of
the face it was swapped from, and a new texture resets it.

The device processor's crops and textures stay on the device and the warp runs there
(:mod:`realtime.frame.motion_torch`); the flow's grey crops are made on the host from the
frame and each face's matrix (``frame_greys``; the texture's reference by the swap worker
from its job's frame), so the flow texture reads nothing back from the device.

``live_mouth`` takes the current frame's inner mouth (a soft ellipse from the mouth
corners) over the texture: a warp cannot create what was hidden.

Conventions: a flow ``f`` is (H, W, 2) float32 in crop pixels with
``current(x) ≈ reference(x + f(x))``; warping samples the texture at ``x + f(x)``.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from realtime.frame.motion_torch import (
    host_grey,
    is_tensor,
    motion_tensors,
    take_live_mouth_torch,
    warp_texture_torch,
)
from realtime.frame.streams import adopt, tensors_of
from realtime.frame.textures import Texture, TextureStore

if TYPE_CHECKING:
    from realtime.faces.plan import FacePlan

TEXTURE_MODES: tuple[str, ...] = ("auto", "static", "flow")
# Side of the grey crops the flow runs on, and DIS's finest pyramid level (1: half of it),
# and the forward-backward disagreement (flow px at FLOW_SIZE) and photometric residual
# (grey levels) at which the warp's weight has fallen to exp(-1). Chosen on three talking
# clips side by side (bench/flow_params.py): 112 px with these scales gave 0.32–0.34 of
# the static texture's error for ~2.6 ms per face on one loaded core; 128 px 0.30–0.32 for
# ~3.3 ms; stricter scales (1.5 px, 28 levels) fell back too often (0.36–0.40).
FLOW_SIZE = 112
FINEST_SCALE = 1
FB_SCALE = 3.0
RESIDUAL_SCALE = 60.0
# Share of the crop side over which the weight ramps up from the crop's edges.
EDGE_RAMP = 0.08
# Side of the grey crops the static texture's misfit is measured on (no flow there: the
# plain difference between the texture's source crop and the current crop).
MISFIT_SIZE = 32


def texture_mode_in_effect(setting: str, *, asynchronous: bool) -> str:
    """``"static"`` or ``"flow"`` for a ``Settings.texture`` value: ``auto`` is flow when
    the swap runs asynchronously (slower than the camera), static otherwise."""
    if setting not in TEXTURE_MODES:
        raise ValueError(f"texture: expected one of {TEXTURE_MODES}, got {setting!r}")
    if setting == "auto":
        return "flow" if asynchronous else "static"
    return setting


@dataclass(frozen=True)
class Motion:
    """A flow at crop size (H, W, 2) float32 and the warp's weight (H, W) float32 in
    [0, 1] (0: keep the plain texture there). ``unexplained``: the mean grey-level
    difference between the current crop and the reference as the warp shows it (warped
    where the weight is high, plain elsewhere), away from the edges: how badly the shown
    texture fits the face now (the error-driven refresh order reads it)."""

    flow: np.ndarray
    weight: np.ndarray
    unexplained: float = 0.0


_local = threading.local()


def _dis() -> Any:
    """One DIS instance per thread (OpenCV's algorithms keep state between calls)."""
    dis = getattr(_local, "dis", None)
    if dis is None:
        dis = cv2.DISOpticalFlow.create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
        dis.setFinestScale(FINEST_SCALE)
        _local.dis = dis
    return dis


def flow_grey(bgr: np.ndarray, size: int = FLOW_SIZE) -> np.ndarray:
    """The small grey crop the flow runs on (from a BGR or an already grey crop)."""
    grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY) if bgr.ndim == 3 else bgr
    return cv2.resize(grey, (size, size), interpolation=cv2.INTER_AREA)


def frame_greys(image: np.ndarray, aligned: Sequence[Any],
                size: int = FLOW_SIZE) -> list[np.ndarray]:
    """Each aligned face's flow grey made on the host from ``image`` (BGR) and the face's
    matrix: the same crop as the host ``align`` (``faces.align.warp_face``'s warp), so the
    device path's flow equals the host path's, with nothing read from the device."""
    greys = []
    for face in aligned:
        side = int(face.size)
        crop = cv2.warpAffine(image, np.asarray(face.matrix, np.float64), (side, side),
                              flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                              borderValue=0)
        greys.append(flow_grey(crop, size))
    return greys


@functools.lru_cache(maxsize=8)
def sample_grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates (xs, ys), float32 (h, w); shared, read-only."""
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    xs.setflags(write=False)
    ys.setflags(write=False)
    return xs, ys


def estimate_motion(reference: np.ndarray, current: np.ndarray, crop_size: int, *,
                    both_ways: bool = True) -> Motion | None:
    """The motion from ``reference`` to ``current`` (small grey crops of equal size),
    scaled to a ``crop_size`` crop; None when the flow is not finite. ``both_ways=False``
    skips the backward flow and its forward-backward check (half the DIS work): the
    weight then rests on the photometric residual alone (a texture fading out)."""
    if reference.shape != current.shape or reference.ndim != 2 or reference.size == 0:
        return None
    dis = _dis()
    forward = dis.calc(current, reference, None)  # current(x) ≈ reference(x + forward)
    backward = dis.calc(reference, current, None) if both_ways else None
    if forward is None or not np.isfinite(forward).all() or (both_ways and (
            backward is None or not np.isfinite(backward).all())):
        return None
    h, w = current.shape
    xs, ys = sample_grid(h, w)
    map_x, map_y = xs + forward[..., 0], ys + forward[..., 1]
    disagreement: np.ndarray | float = 0.0
    if backward is not None:
        back = cv2.remap(backward, map_x, map_y, cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE)
        # |forward + back|², as two planes added (numpy's sum over a last axis of 2 is
        # ~10× slower at this size; the same float32 result, bit for bit)
        squared = np.square(forward + back)
        disagreement = squared[..., 0] + squared[..., 1]
    warped_ref = cv2.remap(reference, map_x, map_y, cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REPLICATE)
    residual = cv2.GaussianBlur(cv2.absdiff(warped_ref, current).astype(np.float32), (5, 5), 0)
    reliable = np.exp(-disagreement / FB_SCALE**2 - (residual / RESIDUAL_SCALE) ** 2)
    ramp = edge_ramp(h)
    weight = cv2.GaussianBlur((reliable * ramp).astype(np.float32), (5, 5), 0)
    shown = weight * warped_ref + (1.0 - weight) * reference
    unexplained = float((np.abs(shown - current) * ramp).sum() / max(float(ramp.sum()), 1.0))
    scale = crop_size / float(w)
    flow = cv2.resize(forward, (crop_size, crop_size), interpolation=cv2.INTER_LINEAR) * scale
    weight = cv2.resize(weight, (crop_size, crop_size), interpolation=cv2.INTER_LINEAR)
    return Motion(flow.astype(np.float32), np.clip(weight, 0.0, 1.0).astype(np.float32),
                  unexplained)


def plain_misfit(reference: np.ndarray, current: np.ndarray) -> float:
    """How badly a texture shown as it is fits the face now: the mean grey-level
    difference between its source crop and the current crop (small greys of one size),
    away from the edges (the flow's ``Motion.unexplained`` without a warp)."""
    if reference.shape != current.shape or reference.ndim != 2 or reference.size == 0:
        raise ValueError(f"plain_misfit: two grey crops of one size expected, got "
                         f"{reference.shape} and {current.shape}")
    ramp = edge_ramp(reference.shape[0])
    diff = cv2.absdiff(reference, current).astype(np.float32)
    return float((diff * ramp).sum() / max(float(ramp.sum()), 1.0))


@functools.lru_cache(maxsize=8)
def edge_ramp(size: int, ramp: float = EDGE_RAMP) -> np.ndarray:
    """(size, size) float32: 0 at the crop's border, 1 from ``ramp`` × size inwards."""
    d = np.minimum(np.arange(size), np.arange(size)[::-1]).astype(np.float32) + 0.5
    r = np.clip(d / max(ramp * size, 1.0), 0.0, 1.0)
    out = np.minimum.outer(r, r)
    out.setflags(write=False)
    return out


def warp_texture(texture: np.ndarray, motion: Motion) -> np.ndarray:
    """``texture`` sampled at ``x + flow(x)`` where the motion is reliable, the plain
    texture elsewhere (blended by ``motion.weight``). uint8 in, uint8 out; float32
    (H, W) masks are warped the same way and stay float32."""
    h, w = texture.shape[:2]
    if motion.flow.shape[:2] != (h, w):
        raise ValueError(f"warp_texture: flow {motion.flow.shape[:2]} does not match the "
                         f"texture {(h, w)}")
    xs, ys = sample_grid(h, w)
    warped = cv2.remap(texture, xs + motion.flow[..., 0], ys + motion.flow[..., 1],
                       cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    # weight × warped + (1 − weight) × plain, in one pass (OpenCV rounds uint8)
    return cv2.blendLinear(warped, texture, motion.weight, 1.0 - motion.weight)


def mouth_weight(size: int, mouth_corners: np.ndarray) -> np.ndarray:
    """(size, size) float32 in [0, 1]: a soft ellipse over the inner mouth between the two
    mouth corners (crop pixels), reaching below them where an open jaw takes the mouth."""
    left, right = np.asarray(mouth_corners, np.float64).reshape(2, 2)
    width = float(np.hypot(*(right - left)))
    weight = np.zeros((size, size), np.float32)
    if not np.isfinite(width) or width < 2.0:
        return weight
    angle = float(np.degrees(np.arctan2(right[1] - left[1], right[0] - left[0])))
    centre = (left + right) / 2.0 + np.array([0.0, 0.12 * width])
    axes = (max(1, round(0.42 * width)), max(1, round(0.32 * width)))
    cv2.ellipse(weight, (round(centre[0]), round(centre[1])), axes, angle, 0, 360, 1.0, -1)
    blur = int(0.25 * width) | 1
    return cv2.GaussianBlur(weight, (blur, blur), 0)


def take_live_mouth(texture: np.ndarray, current: np.ndarray,
                    mouth_corners: np.ndarray) -> np.ndarray:
    """``texture`` with the current crop's inner mouth blended in (soft edge)."""
    w = mouth_weight(texture.shape[0], mouth_corners)[..., None]
    out = texture.astype(np.float32) + w * (current.astype(np.float32) - texture)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


class TextureMotion:
    """Per track: the small grey reference of the texture it shows, and the warp.

    Used by the process thread only. ``fallbacks`` counts frames whose flow could not be
    used (not finite, or no crops to run it on): they show the plain texture.
    ``unexplained``: per track, the texture last followed and its ``Motion.unexplained``
    (with the static texture, its ``plain_misfit``, measured only while
    ``measure_static`` says so: the error refresh order asks for it). Two references are
    kept per track: a cross-fade follows the old texture and the new one in the same
    frame."""

    def __init__(self, size: int = FLOW_SIZE, *,
                 measure_static: bool | Callable[[], bool] = False) -> None:
        self.size = size
        self._measure_static = measure_static
        self._refs: dict[int, list[tuple[Texture, np.ndarray]]] = {}
        self._plain_refs: dict[int, tuple[Texture, np.ndarray]] = {}
        self.unexplained: dict[int, tuple[Texture, float]] = {}
        self.fallbacks = 0

    def measures_static(self) -> bool:
        """Whether the static texture's misfit is measured now."""
        wanted = self._measure_static
        return bool(wanted() if callable(wanted) else wanted)

    def reset(self) -> None:
        self._refs.clear()
        self._plain_refs.clear()
        self.unexplained.clear()

    def retain(self, live: Iterable[int]) -> None:
        keep = set(live)
        for store in (self._refs, self._plain_refs, self.unexplained):
            for track in [t for t in store if t not in keep]:
                del store[track]

    def follow(self, track_id: int, texture: Texture, aligned_now: Any, *, mode: str,
               live_mouth: bool = False, landmarks: np.ndarray | None = None,
               current_grey: np.ndarray | None = None, outgoing: bool = False) -> Any:
        """What to paste for ``track_id`` this frame: ``texture.crop`` as it is (static),
        or warped with the face's motion since the texture was swapped (flow), with the
        live mouth when asked. Same kind as ``texture.crop`` (array or ``MaskedCrop``, on
        the host or, for the device processor, as device tensors). ``current_grey``: the
        current crop's grey image when the caller has it (downloaded with the frame's
        other faces). ``outgoing``: the texture fading out in a cross-fade: its flow one
        way only and its misfit not recorded (the refresh order reads the shown one's)."""
        if mode == "static" and self.measures_static() and not outgoing:
            self._plain_misfit(track_id, texture, aligned_now, current_grey)
        if mode == "static" and not live_mouth:
            return texture.crop
        current = _current_crop(aligned_now)
        crop, mask, masked = _split(texture.crop)
        own = texture.track_id == track_id and texture.target is not None
        on_host = isinstance(current, np.ndarray) and isinstance(crop, np.ndarray)
        on_device = is_tensor(current) and is_tensor(crop)
        if not own or not (on_host or on_device) or crop.shape[:2] != current.shape[:2]:
            # another person's texture (a face new to the tracker): never warp one
            # person's texture with another person's motion; an enhanced (larger) crop
            return texture.crop
        if mode == "flow":
            motion = self._motion(track_id, texture, current, current_grey, outgoing)
            if motion is None:
                self.fallbacks += 1
            elif on_host:
                crop = warp_texture(crop, motion)
                if isinstance(mask, np.ndarray):
                    mask = warp_texture(mask, motion)
            else:
                flow, weight = motion_tensors(motion.flow, motion.weight, crop.device)
                crop = warp_texture_torch(crop, flow, weight)
                if is_tensor(mask):
                    mask = warp_texture_torch(mask, flow, weight)
        if live_mouth and landmarks is not None:
            matrix = np.asarray(aligned_now.matrix, np.float64)
            points = np.asarray(landmarks, np.float64) @ matrix[:, :2].T + matrix[:, 2]
            if on_host:
                crop = take_live_mouth(crop, current, points[3:5])
            else:
                crop = take_live_mouth_torch(crop, current,
                                             mouth_weight(int(crop.shape[0]), points[3:5]))
        return _join(texture.crop, crop, mask) if masked else crop

    def _motion(self, track_id: int, texture: Texture, current: Any,
                current_grey: np.ndarray | None, outgoing: bool = False) -> Motion | None:
        refs = self._refs.setdefault(track_id, [])
        cached = next((r for r in refs if r[0] is texture), None)
        if cached is None:
            assert texture.target is not None
            # once per texture: the worker's host grey (else a device target's download)
            grey = texture.grey if texture.grey is not None else _host_image(texture.target)
            cached = (texture, flow_grey(grey, self.size))
            refs[:] = [*refs[-1:], cached]  # a new texture resets the track's flow
        now = current_grey if current_grey is not None else _host_image(current)
        motion = estimate_motion(cached[1], flow_grey(now, self.size), int(current.shape[0]),
                                 both_ways=not outgoing)
        if motion is not None and not outgoing:
            self.unexplained[track_id] = (texture, motion.unexplained)
        return motion


    def _plain_misfit(self, track_id: int, texture: Texture, aligned_now: Any,
                      current_grey: np.ndarray | None) -> None:
        """The static texture's misfit for the refresh order, from host images only (a
        device crop is measured from the host grey made for it; never a download)."""
        current = current_grey if current_grey is not None else _current_crop(aligned_now)
        if texture.track_id != track_id or not isinstance(current, np.ndarray):
            return
        cached = self._plain_refs.get(track_id)
        if cached is None or cached[0] is not texture:
            source = texture.grey if texture.grey is not None else texture.target
            if not isinstance(source, np.ndarray):
                return
            cached = self._plain_refs[track_id] = (texture, flow_grey(source, MISFIT_SIZE))
        self.unexplained[track_id] = (texture, plain_misfit(cached[1],
                                                            flow_grey(current, MISFIT_SIZE)))


def _current_crop(aligned: Any) -> Any:
    """The aligned crop: ``AlignedFace.crop`` on the host, ``DeviceAlignedFace.crop_t``."""
    crop = getattr(aligned, "crop", None)
    return crop if crop is not None else getattr(aligned, "crop_t", None)


def _host_image(crop: Any) -> np.ndarray:
    """A host crop as it is; a device crop as its grey image (downloaded)."""
    return crop if isinstance(crop, np.ndarray) else host_grey(crop)


def textures_for_frame(store: TextureStore, motion: TextureMotion, plan: FacePlan,
                       aligned: Sequence[Any], *, mapped: bool, mode: str,
                       live_mouth: bool, image: np.ndarray | None = None
                       ) -> tuple[list[tuple[Any, Any]], set[str]]:
    """Between two swaps: each planned face's newest texture (see
    ``TextureStore.for_face``) as ``mode`` shows it, paired with the face's current
    aligned crop; and the names of the sources shown. ``image``: the frame the faces were
    aligned in (the device path's flow greys are made from it on the host). A texture
    another thread wrote is read only after its event (a device-side wait)."""
    pairs: list[tuple[Any, Any]] = []
    names: set[str] = set()
    textures = [store.for_face(face.track_id, src.name, mapped)
                for face, src in zip(plan.faces, plan.sources, strict=True)]
    # the faces the flow will warp (or whose static texture's misfit is measured): their
    # own texture, with the crop it was swapped from
    measured = mode == "flow" or (mode == "static" and motion.measures_static())
    warped = [measured and t is not None and t.track_id == face.track_id
              and t.target is not None for face, t in zip(plan.faces, textures, strict=True)]
    greys = _host_greys(image, aligned, warped)
    for face, now, texture, grey in zip(plan.faces, aligned, textures, greys, strict=True):
        if texture is None:
            continue
        adopt(texture.ready, tensors_of([texture.crop]))
        pairs.append((now, motion.follow(face.track_id, texture, now, mode=mode,
                                         live_mouth=live_mouth, landmarks=face.landmarks,
                                         current_grey=grey)))
        names.add(texture.source_name)
    return pairs, names


def _host_greys(image: np.ndarray | None, aligned: Sequence[Any],
                wanted: Sequence[bool]) -> list[np.ndarray | None]:
    """The wanted device crops' flow greys, made on the host from ``image`` (None for
    the others, for every face on the host path, whose crops are on the host already, and
    without ``image``)."""
    greys: list[np.ndarray | None] = [None] * len(aligned)
    chosen = [i for i, want in enumerate(wanted) if want and is_tensor(_current_crop(aligned[i]))]
    if image is None or not chosen:
        return greys
    for i, grey in zip(chosen, frame_greys(image, [aligned[i] for i in chosen]), strict=True):
        greys[i] = grey
    return greys


def _split(item: Any) -> tuple[Any, Any, bool]:
    crop = getattr(item, "crop", None)
    if crop is not None and hasattr(item, "mask"):
        return crop, item.mask, True
    return item, None, False


def _join(original: Any, crop: Any, mask: Any) -> Any:
    from dataclasses import replace

    return replace(original, crop=crop, mask=mask)
