"""Face enhancement (GFPGAN 1.4) of swapped crops, on the FFHQ-aligned 512 view.

A swapped crop (S×S, the swapper's template) is warped onto the FFHQ 512 template by the
similarity between the swapper's template and FFHQ's (for SimSwap 224 its frontal pose
template; SimSwap 512 already is FFHQ 512), enhanced, and warped back into the swapper's
template at ``k·S`` pixels (``k = round(512 / S)``: 448 for SimSwap 224, 512 for inswapper
128), so the higher resolution reaches the paste. ``blend`` mixes the enhanced face with the
(upsampled) swap. The result is pasted exactly like a swap crop, with the same mask: the
composite scales the crop's matrix by ``k`` (``scale_matrix``) and resizes the mask.

Conventions (GFPGANer.enhance): input RGB ``(x/255 − 0.5)/0.5``; output in [-1, 1] →
``(y + 1)/2 · 255``, rounded, BGR.

On a device (``enhance_torch``, the device frame processor's path) the same warps run by
``composite_torch.sample_affine`` (OpenCV's fixed-point bilinear convention) and the engine
by ``run_torch``: the crops never leave the device. ``LazyEnhancer`` opens the enhancer on a
background thread (an ONNX export and an engine build can take minutes): frames are swapped
without it until it is ready.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from realtime.types import ValueTypeError

if TYPE_CHECKING:
    from engines.base import Engine
    from realtime.frame.enhance_precision import PrecisionCheck

log = logging.getLogger(__name__)

ENHANCE_MODES: tuple[str, ...] = ("off", "gfpgan")
# LazyEnhancer.status: not asked for yet, being opened (export, build), usable, unusable
STATUSES: tuple[str, ...] = ("idle", "preparing", "ready", "failed")
ENHANCER_MODELS: dict[str, str] = {"gfpgan": "gfpgan-1.4"}
SIZE = 512


def upscale_factor(crop_size: int) -> int:
    """How many times larger the enhanced crop is than the swap crop."""
    return max(1, round(SIZE / crop_size))


def scale_matrix(matrix: np.ndarray, factor: float) -> np.ndarray:
    """A frame → crop matrix for the same crop resampled ``factor`` times larger (pixel
    centres at integers: ``x' = factor·(x + 0.5) − 0.5``)."""
    out = np.asarray(matrix, dtype=np.float64) * factor
    out[:, 2] += (factor - 1.0) / 2.0
    return out


def to_ffhq(family: str) -> np.ndarray:
    """Swap-crop pixels → FFHQ 512 pixels (float64 (2, 3))."""
    from realtime.faces.align import FFHQ_512_TEMPLATE, estimate_similarity, family_templates

    templates = family_templates(family)
    template = templates[len(templates) // 2]  # SimSwap 224: the frontal one
    return estimate_similarity(template, FFHQ_512_TEMPLATE.astype(np.float64))


def _compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """``outer ∘ inner`` for (2, 3) affines."""
    full = np.vstack([inner, [0.0, 0.0, 1.0]])
    return np.asarray(outer @ full, dtype=np.float64)


class FaceEnhancer:
    """GFPGAN on an engine: ``enhance(crops, family, blend)`` → larger enhanced crops."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.backend = engine.backend
        if len(engine.inputs) != 1 or len(engine.outputs) < 1:
            raise ValueTypeError("enhancer engine: expected one input and one output")
        spec = engine.inputs[0]
        if tuple(spec.shape[1:]) != (3, SIZE, SIZE):
            raise ValueTypeError(f"enhancer input: expected [N, 3, {SIZE}, {SIZE}], got "
                                 f"{spec.shape}")
        self._input = spec
        self._output = engine.outputs[0].name
        self._batched = not (isinstance(spec.shape[0], int) and spec.shape[0] > 0)
        self.last_ms: float | None = None
        # FP16 against FP32 on real faces at open (realtime.frame.enhance_precision)
        self.precision_check: PrecisionCheck | None = None

    def prepare(self, faces: Sequence[np.ndarray]) -> np.ndarray:
        """BGR uint8 512 crops → [N, 3, 512, 512] RGB in [-1, 1]."""
        stack = np.stack(faces)[..., ::-1].astype(np.float32)
        batch = (stack / np.float32(127.5) - np.float32(1.0)).transpose(0, 3, 1, 2)
        return np.ascontiguousarray(batch, dtype=np.dtype(self._input.dtype))

    def forward_enhance(self, batch: np.ndarray) -> np.ndarray:
        if self._batched:
            out = self.engine.run({self._input.name: batch})[self._output]
            return np.asarray(out)
        parts = [np.asarray(self.engine.run({self._input.name: batch[i : i + 1]})[self._output])
                 for i in range(batch.shape[0])]
        return np.concatenate(parts, axis=0)

    @staticmethod
    def decode(out: np.ndarray) -> list[np.ndarray]:
        """[N, 3, 512, 512] in [-1, 1] → BGR uint8 crops (NaN → 0)."""
        values = np.nan_to_num(np.asarray(out, dtype=np.float32), nan=0.0).clip(-1.0, 1.0)
        pixels = ((values + 1.0) * 127.5 + 0.5).astype(np.uint8)
        return [np.ascontiguousarray(p.transpose(1, 2, 0)[:, :, ::-1]) for p in pixels]

    def enhance(self, crops: Sequence[np.ndarray], family: str, blend: float) -> list[np.ndarray]:
        """Each swapped crop (S×S BGR) → its enhanced version at ``k·S`` (see module doc)."""
        if not crops:
            return []
        import time

        size = crops[0].shape[0]
        factor = upscale_factor(size)
        big = size * factor
        forward = to_ffhq(family)
        from realtime.faces.align import invert_affine

        back = scale_matrix(invert_affine(forward), factor)  # FFHQ 512 → big crop
        up = scale_matrix(np.array([[1.0, 0, 0], [0, 1.0, 0]]), factor)
        views = [cv2.warpAffine(c, forward, (SIZE, SIZE), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REFLECT) for c in crops]
        t0 = time.perf_counter()
        enhanced = self.decode(self.forward_enhance(self.prepare(views)))
        self.last_ms = (time.perf_counter() - t0) * 1000.0
        out = []
        for crop, face in zip(crops, enhanced, strict=True):
            sharp = cv2.warpAffine(face, back, (big, big), flags=cv2.INTER_AREA
                                   if factor == 1 else cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_REPLICATE)
            if blend >= 1.0:
                out.append(sharp)
                continue
            base = cv2.warpAffine(crop, up, (big, big), flags=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_REPLICATE)
            out.append(cv2.addWeighted(sharp, float(blend), base, 1.0 - float(blend), 0.0))
        return out

    # ------------------------------------------------------------------ on the device
    @property
    def on_device(self) -> bool:
        """Whether the engine takes device tensors (``run_torch``): then ``enhance_torch``
        keeps the whole call on the device."""
        return callable(getattr(self.engine, "run_torch", None))

    def forward_enhance_torch(self, batch: Any) -> Any:
        run_torch = self.engine.run_torch  # type: ignore[attr-defined]
        if self._batched:
            return run_torch({self._input.name: batch})[self._output].float()
        # TensorRT returns its bound output buffer, rewritten by the next call: each row is
        # copied out before the next row runs.
        import torch

        return torch.cat([run_torch({self._input.name: batch[i : i + 1]})[self._output]
                          .to(torch.float32, copy=True) for i in range(int(batch.shape[0]))])

    def enhance_torch(self, crops: Sequence[Any], family: str, blend: float) -> list[Any]:
        """``enhance`` on device tensors (uint8 (S, S, 3) BGR in, uint8 (k·S, k·S, 3) BGR
        out, on the crops' device) through ``run_torch``: no host round trip. The warps use
        the same fixed-point bilinear sampling as OpenCV (``composite_torch.sample_affine``)
        and every uint8 rounding of the host path happens at the same place, so on the CPU
        device the result equals ``enhance`` within one grey level per resampling."""
        if not crops:
            return []
        import time

        import torch

        from realtime.faces.align import invert_affine
        from realtime.frame.composite_torch import sample_affine

        size = int(crops[0].shape[0])
        factor = upscale_factor(size)
        big = size * factor
        forward = to_ffhq(family)
        back = scale_matrix(invert_affine(forward), factor)
        up = scale_matrix(np.array([[1.0, 0, 0], [0, 1.0, 0]]), factor)
        sources = [c.permute(2, 0, 1) for c in crops]  # (3, S, S) BGR
        views = torch.stack([_round_uint8(sample_affine(c, invert_affine(forward),
                                                         (SIZE, SIZE), border="reflect"))
                             for c in sources])
        dtype = getattr(torch, self._input.dtype)
        batch = (views.flip(1) / 127.5 - 1.0).to(dtype).contiguous()  # RGB in [-1, 1]
        t0 = time.perf_counter()
        out = self.forward_enhance_torch(batch)
        self.last_ms = (time.perf_counter() - t0) * 1000.0  # launch time on CUDA
        values = torch.nan_to_num(out, nan=0.0).clamp(-1.0, 1.0)
        faces = torch.floor((values + 1.0) * 127.5 + 0.5).flip(1)  # BGR, as decode's uint8
        result = []
        for crop, face in zip(sources, faces, strict=True):
            sharp = _round_uint8(sample_affine(face, invert_affine(back), (big, big)))
            if blend < 1.0:
                base = _round_uint8(sample_affine(crop, invert_affine(up), (big, big)))
                # cv2.addWeighted: rounded to nearest (ties to even), saturated
                sharp = torch.round(sharp * float(blend) + base * (1.0 - float(blend)))
            result.append(sharp.clamp(0, 255).to(torch.uint8).permute(1, 2, 0).contiguous())
        return result

    def close(self) -> None:
        self.engine.close()


def _round_uint8(values: Any) -> Any:
    """Round half up and saturate, as OpenCV stores a float warp result in uint8."""
    return (values + 0.5).floor().clamp(0, 255)


def enhance_crops_torch(crops: list[Any], family: str, settings: Any,
                        enhancer: LazyEnhancer | None) -> list[Any]:
    """``process.enhance_crops`` for device crops: on the device when the enhancer's engine
    takes tensors, else through the host (one download and upload per face). Returns the
    crops unchanged while the enhancer is still being prepared."""
    if settings.enhance == "off" or enhancer is None or not crops:
        return crops
    opened = enhancer.get()
    if opened is None:  # preparing, or not installed (logged once)
        return crops
    if opened.on_device:
        return opened.enhance_torch(crops, family, settings.enhance_blend)
    import torch

    device = crops[0].device
    host = opened.enhance([c.cpu().numpy() for c in crops], family, settings.enhance_blend)
    return [torch.from_numpy(np.ascontiguousarray(c)).to(device) for c in host]


class LazyEnhancer:
    """Opens the enhancer on a background thread the first time it is wanted, so neither
    the frame thread nor the swap worker ever waits on an ONNX export or an engine build:
    ``get`` never blocks; it returns None while the enhancer is being prepared (the swap goes
    on without enhancement) and the enhancer from the first call after it is ready.
    When it cannot be opened (the model is not installed) the reason is logged once,
    ``error`` says why and ``get`` returns None from then on.

    ``status`` is one of ``STATUSES``; ``status_text`` is the line a window shows
    ("preparing the enhancer…"); ``on_status(status)`` is called on each change, from the
    thread that made it (a Qt window re-posts it to its own thread)."""

    def __init__(self, opener: Callable[[], FaceEnhancer], *,
                 on_status: Callable[[str], None] | None = None) -> None:
        self._opener = opener
        self._enhancer: FaceEnhancer | None = None
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._status = "idle"
        self.on_status = on_status
        self.error: str | None = None

    @classmethod
    def of(cls, enhancer: FaceEnhancer) -> LazyEnhancer:
        """An enhancer opened already (the files CLI opens it up front to fail early)."""
        lazy = cls(lambda: enhancer)
        lazy._enhancer = enhancer
        lazy._status = "ready"
        lazy._done.set()
        return lazy

    @property
    def status(self) -> str:
        return self._status

    @property
    def status_text(self) -> str:
        if self._status == "preparing":
            return "preparing the enhancer…"
        if self._status == "failed":
            return f"enhancer unavailable: {self.error}"
        if self._status == "ready" and self._enhancer is not None:
            return f"enhancer on {self._enhancer.backend}"
        return ""

    def _set_status(self, status: str) -> None:
        self._status = status
        callback = self.on_status
        if callback is not None:
            try:
                callback(status)
            except Exception:  # a window's callback must not kill the opener thread
                log.exception("enhancer status callback failed")

    def start(self) -> None:
        """Begin opening on a background thread (once; a no-op afterwards)."""
        with self._lock:
            if self._status != "idle" or self._closed:
                return
            self._thread = threading.Thread(target=self._open, name="enhancer-open",
                                            daemon=True)
            self._set_status("preparing")
            self._thread.start()

    def _open(self) -> None:
        from realtime.frame.streams import own_stream

        try:
            with own_stream(load=True):  # its build and warm-up: not on the default stream
                opened: FaceEnhancer | None = self._opener()
        except Exception as exc:  # ModelMissing, NoEngineAvailable, export errors
            opened = None
            self.error = f"{type(exc).__name__}: {exc}"
            log.warning("face enhancer unavailable, swapping without it: %s", self.error)
        with self._lock:
            if self._closed and opened is not None:
                opened.close()  # closed while it was being prepared
                opened = None
            self._enhancer = opened
        self._set_status("ready" if opened is not None else "failed")
        self._done.set()

    def get(self) -> FaceEnhancer | None:
        """The enhancer when it is ready, else None (and the opening begins): never waits."""
        if self._enhancer is None and self._status == "idle":
            self.start()
        return self._enhancer

    def wait(self, timeout: float | None = None) -> FaceEnhancer | None:
        """Start opening and wait for the outcome (for ``bench``, which must not time a
        run without it); None when it failed or ``timeout`` passed."""
        self.start()
        self._done.wait(timeout)
        return self._enhancer

    def close(self) -> None:
        with self._lock:
            self._closed = True
            enhancer, self._enhancer = self._enhancer, None
            if self._status != "preparing":
                self._done.set()  # nothing will arrive: ``wait`` returns at once
        if enhancer is not None:
            enhancer.close()


def load_enhancer(mode: str, models_dir: Path, *, engine: str = "auto",
                  threads: int | None = None) -> FaceEnhancer:
    """The enhancer for ``mode`` (``gfpgan``), exporting its checkpoint to ONNX on first
    use; ``engines.models.ModelMissing`` with the commands to run when it is absent."""
    from engines.registry import open_engine
    from export.onnx import ensure_onnx
    from realtime.frame.enhance_precision import open_checked

    if mode not in ENHANCER_MODELS:
        raise ValueError(f"enhance: expected one of {', '.join(ENHANCER_MODELS)}, got {mode!r}")
    path = ensure_onnx(Path(models_dir), ENHANCER_MODELS[mode])
    cache = Path(models_dir) / "engines"
    opened, check = open_checked(lambda precision: open_engine(
        path, engine, cache_dir=cache, threads=threads, precision=precision))
    enhancer = FaceEnhancer(opened)
    enhancer.precision_check = check
    log.info("enhancer %s on %s", mode, enhancer.backend)
    return enhancer


def lazy_enhancer(models_dir: Path, *, engine: str = "auto", threads: int | None = None,
                  on_status: Callable[[str], None] | None = None) -> LazyEnhancer:
    return LazyEnhancer(lambda: load_enhancer("gfpgan", models_dir, engine=engine,
                                              threads=threads), on_status=on_status)
