"""The per-frame face work kept on one torch device (the GPU path of ``FrameProcessor``).

Same public surface and same results as ``realtime.frame.process.FrameProcessor`` (within one
grey level on the CPU device), but the frame is uploaded once, the alignment warp, the
generator input, the swap (``engine.run_torch``), the decode, the mask, the colour match
and the paste all run on the device, and the composited frame is downloaded once.

Between the pipeline's calls the data stays on the device: ``align`` returns
``DeviceAlignedFace`` (crop as a device tensor, matrix as numpy, which the tracker and the
region maths need on the host) and ``swap_crops`` returns device crops, which the async
path keeps as textures and pastes later with a newer frame's matrices (warped on the
device by the flow texture, :mod:`realtime.frame.motion`). ``composite``
reuses the tensor that ``align`` uploaded for the same numpy frame. With a face parser
(and the mask setting not box), ``swap_crops`` returns ``MaskedCrop``s whose parsing
masks were made on the device too (``FaceParser.masks_torch``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
import torch

from realtime.config import Settings
from realtime.frame.composite_torch import paste_face_torch, warp_face_torch
from realtime.frame.enhance import enhance_crops_torch, scale_matrix
from realtime.frame.memory_guard import BatchCap
from realtime.frame.motion_torch import upload
from realtime.frame.process import (
    MaskedCrop,
    identity_vector,
    row_vectors,
    split_masked,
    timed_stages,
)
from realtime.types import AlignedFace, Face, SourceFace, ValueTypeError, check_image

if TYPE_CHECKING:
    from realtime.faces.identity import IdentityEncoder
    from realtime.frame.enhance import LazyEnhancer
    from realtime.frame.parsing import FaceParser
    from realtime.frame.swap import FaceSwapper

# Distinct identities whose device vectors are kept (a live session switches between a
# handful; the bound only stops a long session with many sources from growing forever).
_VECTOR_CACHE = 16


@runtime_checkable
class TorchRunnable(Protocol):
    """An engine that takes and returns torch tensors on its device."""

    def run_torch(self, feeds: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]: ...


@dataclass(frozen=True, eq=False)  # == on tensors is elementwise: compare by identity
class DeviceAlignedFace:
    """``AlignedFace`` with the crop left on the device: ``crop_t`` is uint8 (S, S, 3) BGR;
    ``matrix`` is the float64 (2, 3) frame → crop affine, on the host."""

    crop_t: torch.Tensor
    matrix: np.ndarray
    size: int


def engine_device(engine: object) -> torch.device | None:
    """The device an engine's ``run_torch`` works on: TorchEngine says so, TensorRT is CUDA."""
    device = getattr(engine, "device", None)
    if device is not None:
        return torch.device(device)
    if getattr(engine, "backend", None) == "tensorrt":
        return torch.device("cuda")
    return None


class TorchFrameProcessor:
    """Align → swap → composite for one frame on ``device``. Per-frame state is only the
    uploaded frame that ``align`` hands to ``composite``."""

    def __init__(self, swapper: FaceSwapper, encoder: IdentityEncoder | None,
                 settings: Settings, *, device: str | torch.device | None = None,
                 parser: FaceParser | None = None,
                 enhancer: LazyEnhancer | None = None) -> None:
        engine = swapper.engine
        if not isinstance(engine, TorchRunnable):
            raise TypeError(
                f"TorchFrameProcessor needs an engine with run_torch (tensors in and out on "
                f"the device); {type(engine).__name__} (backend {engine.backend!r}) has none: "
                "use realtime.frame.process.FrameProcessor for it"
            )
        if encoder is not None and encoder.family != swapper.family:
            raise ValueTypeError(
                f"encoder family {encoder.family!r} does not match swapper {swapper.family!r}"
            )
        chosen = torch.device(device) if device is not None else engine_device(engine)
        if chosen is None:
            raise ValueTypeError(
                f"TorchFrameProcessor: cannot tell which device {type(engine).__name__} runs "
                "on; pass device="
            )
        self.device = chosen
        self.swapper = swapper
        self.encoder = encoder
        self.settings = settings
        self.parser = parser
        self.enhancer = enhancer
        self.parse_ms: float | None = None  # launch time of the last parse on CUDA
        self._engine = engine
        self._target_dtype = getattr(torch, swapper.target_spec.dtype)
        self._source_dtype = getattr(torch, swapper.source_spec.dtype)
        self._vectors: dict[tuple[int, bytes], torch.Tensor] = {}
        # The async swap worker calls swap_crops on its own thread.
        self._vectors_lock = threading.Lock()
        self._cuda = self.device.type == "cuda"
        # The last uploaded frame: (the numpy array it came from, its device tensor).
        self._frame: tuple[np.ndarray, torch.Tensor] | None = None
        self._staging: torch.Tensor | None = None
        self.batch_cap = BatchCap("face generator")  # its ``notice`` is for the window
        self._staged: torch.cuda.Event | None = None

    @property
    def family(self) -> str:
        return self.swapper.family

    @property
    def queues_on_device(self) -> bool:
        """Whether calls only queue CUDA work (their GPU time is read from events)."""
        return self._cuda

    @property
    def batch_swaps(self) -> bool:
        """On a GPU a batched generator swaps all faces in one launch for about the price
        of one: the async worker then takes every face per job (``pipeline``)."""
        return self._cuda and self.swapper.batched

    def update_settings(self, settings: Settings) -> None:
        """Composite options take effect from the next frame (one reference swap)."""
        self.settings = settings

    @property
    def uses_parser(self) -> bool:
        """Whether faces get the parsing mask now (a parser, and the setting not box)."""
        return self.parser is not None and self.settings.mask != "box"

    def identity_vector(self, source: SourceFace | np.ndarray) -> np.ndarray:
        return identity_vector(self.family, source)

    # ------------------------------------------------------------------ transfers
    def upload(self, image: np.ndarray) -> torch.Tensor:
        """Put ``image`` on the device (the frame's only upload) and remember it for
        ``composite``. On CUDA it goes through a reused pinned buffer so the copy is
        asynchronous; on the CPU the tensor shares the array's memory (never written)."""
        check_image("image", image)
        if not self._cuda:
            # from_numpy refuses negative strides (a [..., ::-1] view); copy only then.
            frame_t = torch.from_numpy(np.ascontiguousarray(image)).to(self.device)
        else:
            if self._staging is None or tuple(self._staging.shape) != image.shape:
                self._staging = torch.empty(image.shape, dtype=torch.uint8, pin_memory=True)
                self._staged = torch.cuda.Event()
            elif self._staged is not None:
                # The previous frame's copy may still be reading the pinned buffer.
                self._staged.synchronize()
            self._staging.numpy()[...] = image
            frame_t = self._staging.to(self.device, non_blocking=True)
            if self._staged is not None:
                self._staged.record()
        self._frame = (image, frame_t)
        return frame_t

    def _frame_tensor(self, image: np.ndarray) -> torch.Tensor:
        """The device copy of ``image``: the one ``align`` uploaded when it is the same
        array, else a fresh upload. Used once: a capture source may refill the same
        buffer with the next frame, which an identity check cannot see."""
        cached, self._frame = self._frame, None
        if cached is not None and cached[0] is image:
            return cached[1]
        return self.upload(image)

    @staticmethod
    def download(frame_t: torch.Tensor) -> np.ndarray:
        """The frame's only download (synchronises with the device)."""
        return np.ascontiguousarray(frame_t.cpu().numpy())

    def _crop_tensor(self, crop: torch.Tensor | np.ndarray) -> torch.Tensor:
        if isinstance(crop, np.ndarray):
            check_image("crop", crop)
            return torch.from_numpy(np.ascontiguousarray(crop)).to(self.device)
        return crop.to(self.device)

    # ------------------------------------------------------------------ stages
    def align(self, image: np.ndarray, faces: Sequence[Face]) -> list[DeviceAlignedFace]:
        from realtime.faces.align import CROP_SIZES, align_matrix

        frame_t = self.upload(image)
        size = int(CROP_SIZES[self.family])
        aligned = []
        for face in faces:
            if face.landmarks.shape != (5, 2):
                raise ValueTypeError(f"landmarks: expected (5, 2), got {face.landmarks.shape}")
            matrix = align_matrix(face.landmarks, self.family)
            aligned.append(DeviceAlignedFace(warp_face_torch(frame_t, matrix, size), matrix, size))
        return aligned

    def _source_vector(self, vector: np.ndarray) -> torch.Tensor:
        """(1, 512) identity on the device, uploaded once per distinct vector."""
        host = np.asarray(vector, dtype=np.float32).reshape(1, -1)
        if host.shape[1] != 512:
            raise ValueTypeError(f"identity: expected (512,), got {np.shape(vector)}")
        # per thread: each thread's stream owns its copy (no cross-stream read unordered)
        key = (threading.get_ident(), host.tobytes())
        with self._vectors_lock:
            cached = self._vectors.get(key)
            if cached is None:
                if len(self._vectors) >= _VECTOR_CACHE:
                    self._vectors.clear()
                cached = upload(host, self.device).to(self._source_dtype)
                self._vectors[key] = cached
        return cached

    def prepare_targets(self, crops: Sequence[torch.Tensor]) -> torch.Tensor:
        """Device crops (S, S, 3) BGR uint8 → [N, 3, S, S] RGB in [0, 1], as
        ``FaceSwapper.prepare_targets`` (no mean/std for SimSwap nor inswapper)."""
        size = self.swapper.crop_size
        for i, crop in enumerate(crops):
            if tuple(crop.shape) != (size, size, 3) or crop.dtype != torch.uint8:
                raise ValueTypeError(f"crop {i}: expected uint8 ({size}, {size}, 3) for "
                                     f"{self.family}, got {crop.dtype} {tuple(crop.shape)}")
        stack = torch.stack(list(crops))
        batch = stack.flip(-1).permute(0, 3, 1, 2).to(torch.float32) / 255.0
        return batch.to(self._target_dtype).contiguous()

    @staticmethod
    def decode_outputs(out: torch.Tensor) -> list[torch.Tensor]:
        """[N, 3, S, S] RGB in [0, 1] → N BGR uint8 (S, S, 3) device crops, rounded as
        ``FaceSwapper.decode_outputs`` (NaN → 0, +0.5, clip, truncate)."""
        if out.ndim != 4 or out.shape[1] != 3:
            raise ValueTypeError(f"swapper output: expected [N, 3, S, S], got {tuple(out.shape)}")
        values = torch.nan_to_num(out.to(torch.float32), nan=0.0)
        pixels = (values * 255.0 + 0.5).clamp(0, 255).to(torch.uint8)
        return [p.permute(1, 2, 0).flip(-1).contiguous() for p in pixels]

    def _run(self, target: torch.Tensor, source: torch.Tensor) -> list[torch.Tensor]:
        """The generator on all rows; fewer a call after an out-of-memory error."""
        return self.batch_cap.run(self._run_once, target, source)

    def _run_once(self, target: torch.Tensor, source: torch.Tensor) -> list[torch.Tensor]:
        swapper = self.swapper
        result = self._engine.run_torch(
            {swapper.target_spec.name: target, swapper.source_spec.name: source}
        )
        # Decoded at once: TensorRT's outputs are its bound buffers, rewritten by the
        # next call.
        return self.decode_outputs(result[swapper.output_name])

    def swap_crops(self, aligned: Sequence[DeviceAlignedFace | AlignedFace],
                   source: SourceFace | np.ndarray,
                   tracks: Sequence[int] | None = None) -> list[Any]:
        """All faces against one identity in one engine call when the model allows it;
        the swapped crops stay on the device: tensors, or ``MaskedCrop``s of tensors when
        the parsing mask is on. ``tracks`` is accepted for the protocol and unused: on
        the device the parse costs milliseconds, so every swap parses its crops."""
        self._source_vector(self.identity_vector(source))
        return self.swap_rows(aligned, [source] * len(aligned), tracks)

    def swap_rows(self, aligned: Sequence[DeviceAlignedFace | AlignedFace],
                  sources: Sequence[SourceFace | np.ndarray],
                  tracks: Sequence[int] | None = None) -> list[Any]:
        """``swap_crops`` with one source per face: one generator launch and one parser
        launch for all faces, whatever their identities (one identity vector per row,
        each uploaded once and cached)."""
        if len(sources) != len(aligned):
            raise ValueTypeError(f"expected one source per face, got {len(sources)} for "
                                 f"{len(aligned)} faces")
        rows = [self._source_vector(self.identity_vector(s)) for s in sources]
        if not aligned:
            return []
        crops = [a.crop_t if isinstance(a, DeviceAlignedFace) else self._crop_tensor(a.crop)
                 for a in aligned]
        target = self.prepare_targets(crops)
        n = int(target.shape[0])
        if self.settings.identity_strength != 1.0 and self.encoder is not None:
            # the encoder runs on the host: all faces' crops in one download
            host = list(torch.stack(crops).cpu().numpy())
            steered = row_vectors(self.family, sources, host, self.settings.identity_strength,
                                  self.encoder)
            vectors = upload(steered, self.device).to(self._source_dtype)
        else:
            vectors = torch.cat(rows) if len(rows) > 1 else rows[0]
        if self.swapper.batched:
            out = self._run(target, vectors)
        else:
            out = []
            for i in range(n):
                out.extend(self._run(target[i : i + 1], vectors[i : i + 1]))
        # on the device when the enhancer's engine has run_torch (never waits on its build)
        out = enhance_crops_torch(out, self.family, self.settings, self.enhancer)
        if not self.uses_parser:
            return out
        assert self.parser is not None
        t0 = time.perf_counter()
        masks, found = self.parser.masks_torch(crops)
        # No face parsed: the box mask alone (as the official code), chosen on the device.
        masks = torch.where(found[:, None, None], masks, torch.ones_like(masks))
        self.parse_ms = (time.perf_counter() - t0) * 1000.0
        return [MaskedCrop(c, masks[i]) for i, c in enumerate(out)]

    def composite_tensor(self, frame_t: torch.Tensor,
                         aligned: Sequence[DeviceAlignedFace | AlignedFace],
                         swapped: Sequence[torch.Tensor | np.ndarray | MaskedCrop]
                         ) -> torch.Tensor:
        """A device copy of ``frame_t`` with each crop pasted inside its face region
        (and its parsed face, for ``MaskedCrop``s unless the mask setting is box)."""
        crops, masks = split_masked(aligned, swapped, self.settings.mask != "box")
        out_t = frame_t.clone()
        for face, crop, mask in zip(aligned, crops, masks, strict=True):
            if isinstance(mask, np.ndarray):
                mask = torch.from_numpy(mask).to(self.device)
            crop_t = self._crop_tensor(crop)
            matrix = face.matrix
            if int(crop_t.shape[0]) != face.size:  # an enhanced, larger crop
                matrix = scale_matrix(face.matrix, int(crop_t.shape[0]) / face.size)
                if mask is not None:
                    mask = torch.nn.functional.interpolate(
                        mask[None, None].float(), size=tuple(crop_t.shape[:2]),
                        mode="bilinear", align_corners=False)[0, 0]
            paste_face_torch(out_t, crop_t, matrix,
                             feather=self.settings.feather,
                             color_match=self.settings.color_match, face_mask=mask)
        return out_t

    def composite(self, image: np.ndarray, aligned: Sequence[DeviceAlignedFace | AlignedFace],
                  swapped: Sequence[torch.Tensor | np.ndarray | MaskedCrop]) -> np.ndarray:
        """A copy of ``image`` with each swapped crop pasted inside its face region."""
        check_image("image", image)
        out_t = self.composite_tensor(self._frame_tensor(image), aligned, swapped)
        return self.download(out_t)

    def process(
        self, image: np.ndarray, faces: Sequence[Face], source: SourceFace | np.ndarray
    ) -> tuple[np.ndarray, dict[str, float]]:
        """Swap ``faces`` in ``image`` with ``source``; returns (new image, stage ms).

        On CUDA the stages only queue work, so "align" and "swap" are launch times and
        "composite" includes waiting for the device (the download synchronises).
        """
        check_image("image", image)
        if not faces:
            return image.copy(), {}
        self.identity_vector(source)  # a missing identity fails before any device work
        return timed_stages(self, image, faces, source)
