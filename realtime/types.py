"""Value types passed between stages.

Every type is a frozen dataclass that checks shape, dtype and meaning in
``__post_init__`` so a wrong array fails at the boundary, not three stages later.
Images are BGR ``uint8`` HxWx3 (OpenCV order) unless a field says otherwise;
coordinates are pixels of the full frame unless a field says "crop".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


class ValueTypeError(ValueError):
    """An array handed across a stage boundary does not have the promised form."""


def check_image(name: str, image: Any) -> None:
    """Raise unless ``image`` is a BGR uint8 array of shape (H, W, 3)."""
    if not isinstance(image, np.ndarray):
        raise ValueTypeError(f"{name}: expected numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueTypeError(
            f"{name}: expected uint8 (H, W, 3) BGR, got {image.dtype} {image.shape}"
        )


def check_array(name: str, value: Any, shape: tuple[int, ...]) -> None:
    """Raise unless ``value`` is a float numpy array of exactly ``shape``."""
    if not isinstance(value, np.ndarray):
        raise ValueTypeError(f"{name}: expected numpy array, got {type(value).__name__}")
    # dtype kind "f" is exactly np.floating's subtypes, without issubdtype's cost (this
    # runs for every face at every stage boundary)
    if value.shape != shape or value.dtype.kind != "f":
        raise ValueTypeError(f"{name}: expected float {shape}, got {value.dtype} {value.shape}")


@dataclass(frozen=True)
class Frame:
    """One captured image. ``captured_ns`` is ``time.monotonic_ns()`` at capture."""

    index: int
    captured_ns: int
    image: np.ndarray  # BGR uint8 (H, W, 3)

    def __post_init__(self) -> None:
        check_image("Frame.image", self.image)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)."""
        return int(self.image.shape[1]), int(self.image.shape[0])


@dataclass(frozen=True)
class Detection:
    """A detected face in frame pixel coordinates.

    ``box`` is float32 (4,) x1, y1, x2, y2; ``landmarks`` is float32 (5, 2) in SCRFD
    order: left eye, right eye, nose tip, left mouth corner, right mouth corner
    (image-left first).
    """

    box: np.ndarray
    score: float
    landmarks: np.ndarray

    def __post_init__(self) -> None:
        check_array("Detection.box", self.box, (4,))
        check_array("Detection.landmarks", self.landmarks, (5, 2))

    @property
    def width(self) -> float:
        return float(self.box[2] - self.box[0])

    @property
    def height(self) -> float:
        return float(self.box[3] - self.box[1])

    @property
    def area(self) -> float:
        return max(self.width, 0.0) * max(self.height, 0.0)


@dataclass(frozen=True)
class Face:
    """A detection that the tracker has given a stable identity (``track_id``)."""

    track_id: int
    detection: Detection

    @property
    def box(self) -> np.ndarray:
        return self.detection.box

    @property
    def landmarks(self) -> np.ndarray:
        return self.detection.landmarks


@dataclass(frozen=True)
class SourceFace:
    """A source identity: one or more photos of one person reduced to vectors.

    ``embeddings`` maps a model family (``"simswap-224"``, ``"simswap-512"``,
    ``"inswapper-128"``) to its L2-normalised float32 (512,) identity vector.
    ``thumbnail`` is a small BGR uint8 crop of the face for galleries.
    """

    name: str
    paths: tuple[str, ...]
    embeddings: dict[str, np.ndarray] = field(default_factory=dict)
    thumbnail: np.ndarray | None = None

    def __post_init__(self) -> None:
        for family, vector in self.embeddings.items():
            check_array(f"SourceFace.embeddings[{family!r}]", vector, (512,))
        if self.thumbnail is not None:
            check_image("SourceFace.thumbnail", self.thumbnail)


@dataclass(frozen=True)
class AlignedFace:
    """A face warped onto a model's template.

    ``crop`` is BGR uint8 (size, size, 3); ``matrix`` is the float64 (2, 3) affine
    that maps frame pixels to crop pixels (``cv2.warpAffine(frame, matrix, (size, size))``
    produces ``crop``).
    """

    crop: np.ndarray
    matrix: np.ndarray
    size: int

    def __post_init__(self) -> None:
        check_image("AlignedFace.crop", self.crop)
        if self.crop.shape[:2] != (self.size, self.size):
            raise ValueTypeError(
                f"AlignedFace.crop: expected ({self.size}, {self.size}, 3), got {self.crop.shape}"
            )
        check_array("AlignedFace.matrix", self.matrix, (2, 3))


@dataclass(frozen=True)
class StageTimings:
    """Milliseconds spent in each stage for one frame (only the stages that ran)."""

    ms: dict[str, float] = field(default_factory=dict)

    def total(self) -> float:
        return float(sum(self.ms.values()))


@dataclass(frozen=True)
class SwapResult:
    """The processed output of one frame.

    ``image`` is the composited BGR uint8 frame (same size as ``frame.image``);
    ``faces`` are the faces that were found (swapped or not); ``swapped`` says
    whether any face texture was pasted.
    """

    frame: Frame
    image: np.ndarray
    faces: tuple[Face, ...]
    timings: StageTimings
    swapped: bool
    source_name: str | None = None

    def __post_init__(self) -> None:
        check_image("SwapResult.image", self.image)
        if self.image.shape != self.frame.image.shape:
            raise ValueTypeError(
                f"SwapResult.image: expected {self.frame.image.shape}, got {self.image.shape}"
            )
