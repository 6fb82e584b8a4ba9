"""The bank of source identities: photos → identity vectors, cached on disk.

One identity per ``add`` call: several photos given together are one person, their
vectors averaged and re-normalised. A folder gives one identity per image. Vectors are
computed per model family and cached under ``cache_dir`` keyed by the image's sha256,
the model family, the encoder's weights (``IdentityEncoder.model_key``) and the
detector, so a second start does no detection or encoding at all.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from engines.fileio import sha256_file, write_atomic
from realtime.types import SourceFace

if TYPE_CHECKING:
    from realtime.faces.detect import FaceDetector
    from realtime.faces.identity import IdentityEncoder

log = logging.getLogger(__name__)

IMAGE_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
THUMBNAIL_SIZE = 96


class SourceImageError(ValueError):
    """A source photo cannot be used: missing, unreadable, or not an image."""


class NoFaceError(SourceImageError):
    """No face was found in a source photo (the message names the file)."""


@dataclass(frozen=True)
class _FoundFace:
    """The face chosen in one photo: where it is, and how many there were."""

    box: tuple[float, float, float, float]
    landmarks: np.ndarray  # float32 (5, 2)
    count: int


def read_image(path: Path, what: str = "source photo") -> np.ndarray:
    """BGR uint8 image from ``path``; ``SourceImageError`` naming the file otherwise."""
    import cv2

    if not path.exists():
        raise SourceImageError(f"{what} {path}: no such file")
    if not path.is_file():
        raise SourceImageError(f"{what} {path}: expected an image file, got a folder")
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise SourceImageError(
            f"{what} {path}: expected an image ({', '.join(IMAGE_SUFFIXES)}), "
            f"got {path.suffix or 'no extension'}"
        )
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError as exc:
        raise SourceImageError(f"{what} {path}: cannot read ({exc})") from exc
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise SourceImageError(f"{what} {path}: not a readable image (corrupt or empty)")
    return np.ascontiguousarray(image)


def image_folder(folder: Path) -> list[Path]:
    """The image files directly inside ``folder``, sorted by name."""
    if not folder.is_dir():
        raise SourceImageError(f"source folder {folder}: not a folder")
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def make_thumbnail(
    image: np.ndarray, box: Sequence[float], size: int = THUMBNAIL_SIZE
) -> np.ndarray:
    """A square BGR crop around ``box`` (with some margin) scaled to ``size``."""
    import cv2

    x0, y0, x1, y1 = (float(v) for v in box)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    half = max(x1 - x0, y1 - y0) * 0.75
    h, w = image.shape[:2]
    left, top = max(int(cx - half), 0), max(int(cy - half), 0)
    right, bottom = min(int(cx + half), w), min(int(cy + half), h)
    if right <= left or bottom <= top:
        left, top, right, bottom = 0, 0, w, h
    crop = image[top:bottom, left:right]
    return np.ascontiguousarray(cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA))


class SourceBank:
    """Source identities for the swap.

    ``encoder_for(family)`` returns the ``IdentityEncoder`` of a model family (the
    caller decides how to load and share them). ``families`` are computed for every
    added source; ``ensure_family`` adds one later (model switch). Warnings about
    photos (several faces, skipped files) are logged and kept in ``last_warnings``
    so a UI can show them.
    """

    def __init__(
        self,
        encoder_for: Callable[[str], IdentityEncoder],
        detector: FaceDetector,
        cache_dir: Path,
        *,
        families: Sequence[str] = ("simswap-224",),
    ) -> None:
        self._encoder_for = encoder_for
        self._detector = detector
        self.cache_dir = Path(cache_dir)
        self.families: tuple[str, ...] = tuple(families)
        self._sources: list[SourceFace] = []
        self._images: dict[str, np.ndarray] = {}  # sha → image, only while encoding
        self.last_warnings: tuple[str, ...] = ()

    @property
    def sources(self) -> tuple[SourceFace, ...]:
        return tuple(self._sources)

    def __len__(self) -> int:
        return len(self._sources)

    def __getitem__(self, index: int) -> SourceFace:
        return self._sources[index]

    # -- editing ---------------------------------------------------------------

    def add(self, paths: Sequence[Path], name: str | None = None) -> SourceFace:
        """One identity from one or more photos of the same person."""
        if not paths:
            raise SourceImageError("no source photos given")
        warnings: list[str] = []
        source = self._build([Path(p) for p in paths], name, warnings)
        self._sources.append(source)
        self._set_warnings(warnings)
        return source

    def add_folder(self, folder: Path, *, skip: Collection[str | Path] = ()) -> list[SourceFace]:
        """One identity per image in ``folder`` but those in ``skip`` (photos the user
        removed); photos that fail are skipped with a warning."""
        folder = Path(folder)
        unwanted = {str(Path(p)) for p in skip}
        files = [p for p in image_folder(folder) if str(p) not in unwanted]
        if not files:
            raise SourceImageError(
                f"source folder {folder}: expected image files ({', '.join(IMAGE_SUFFIXES)}), "
                "found none"
            )
        added: list[SourceFace] = []
        warnings: list[str] = []
        for path in files:
            try:
                source = self._build([path], None, warnings)
            except SourceImageError as exc:
                warnings.append(f"skipped {exc}")
                continue
            self._sources.append(source)
            added.append(source)
        self._set_warnings(warnings)
        if not added:
            raise NoFaceError(
                f"source folder {folder}: no usable face in any of {len(files)} images"
            )
        return added

    def remove(self, index: int) -> SourceFace:
        return self._sources.pop(index)

    def rename(self, index: int, name: str) -> SourceFace:
        source = replace(self._sources[index], name=name)
        self._sources[index] = source
        return source

    def ensure_family(self, family: str) -> None:
        """Compute ``family``'s vectors for every source that lacks them."""
        if family not in self.families:
            self.families = (*self.families, family)
        for i, source in enumerate(self._sources):
            if family not in source.embeddings:
                try:
                    vector = self._identity([Path(p) for p in source.paths], family)
                finally:
                    self._images.clear()
                self._sources[i] = replace(
                    source, embeddings={**source.embeddings, family: vector}
                )

    def vector(self, index: int, family: str) -> np.ndarray:
        """The (512,) identity vector of source ``index`` for ``family``."""
        if family not in self._sources[index].embeddings:
            self.ensure_family(family)
        return self._sources[index].embeddings[family]

    # -- internals -------------------------------------------------------------

    def _set_warnings(self, warnings: list[str]) -> None:
        self.last_warnings = tuple(warnings)
        for message in warnings:
            log.warning("%s", message)

    def _build(self, paths: list[Path], name: str | None, warnings: list[str]) -> SourceFace:
        shas = [self._checked_sha(p) for p in paths]
        try:
            faces = [self._face(p, sha, warnings) for p, sha in zip(paths, shas, strict=True)]
            embeddings = {f: self._identity(paths, f, shas=shas) for f in self.families}
            thumbnail = make_thumbnail(self._image(paths[0], shas[0]), faces[0].box)
        finally:
            self._images.clear()  # decoded photos are only needed while encoding
        return SourceFace(
            name=name or paths[0].stem,
            paths=tuple(str(p) for p in paths),
            embeddings=embeddings,
            thumbnail=thumbnail,
        )

    def _checked_sha(self, path: Path) -> str:
        read_image(path)  # fail early with a clear message, even when cached
        return sha256_file(path)

    def _image(self, path: Path, sha: str) -> np.ndarray:
        if sha not in self._images:
            self._images[sha] = read_image(path)
        return self._images[sha]

    def _face(self, path: Path, sha: str, warnings: list[str]) -> _FoundFace:
        """The largest face in ``path`` (cached by sha + detector)."""
        cache = self.cache_dir / "faces" / f"{sha}-{self._detector.name}.json"
        found: _FoundFace | None = None
        if cache.exists():
            try:
                data = json.loads(cache.read_text())
                found = _FoundFace(
                    box=tuple(float(v) for v in data["box"]),  # type: ignore[arg-type]
                    landmarks=np.asarray(data["landmarks"], dtype=np.float32).reshape(5, 2),
                    count=int(data["count"]),
                )
            except (OSError, ValueError, KeyError, TypeError):
                log.debug("ignoring unreadable face cache %s", cache)
        if found is None:
            detections = self._detector.detect(self._image(path, sha))
            if not detections:
                raise NoFaceError(f"source photo {path}: no face found")
            best = max(detections, key=lambda d: d.area)
            found = _FoundFace(
                box=tuple(float(v) for v in best.box),  # type: ignore[arg-type]
                landmarks=np.asarray(best.landmarks, dtype=np.float32),
                count=len(detections),
            )
            payload = {
                "box": list(found.box),
                "landmarks": found.landmarks.tolist(),
                "count": found.count,
            }
            write_atomic(cache, json.dumps(payload).encode())
        if found.count > 1:
            warnings.append(
                f"source photo {path}: {found.count} faces found, using the largest"
            )
        return found

    def _identity(
        self,
        paths: list[Path],
        family: str,
        *,
        shas: list[str] | None = None,
    ) -> np.ndarray:
        """Average of the photos' vectors for ``family``, re-normalised."""
        from realtime.faces.identity import l2_normalize

        encoder = self._encoder_for(family)
        if shas is None:
            shas = [self._checked_sha(p) for p in paths]
        vectors = []
        for path, sha in zip(paths, shas, strict=True):
            key = hashlib.sha256(
                f"{sha}|{family}|{encoder.model_key}|{self._detector.name}".encode()
            ).hexdigest()
            cache = self.cache_dir / "vectors" / f"{key}.npy"
            vector: np.ndarray | None = None
            if cache.exists():
                try:
                    vector = np.load(cache, allow_pickle=False).astype(np.float32)
                    if vector.shape != (512,):
                        vector = None
                except (OSError, ValueError):
                    vector = None
            if vector is None:
                face = self._face(path, sha, [])
                vector = encoder.embed(self._image(path, sha), face.landmarks)
                buffer = _npy_bytes(vector)
                write_atomic(cache, buffer)
            vectors.append(vector)
        return l2_normalize(np.mean(np.stack(vectors), axis=0))


def _npy_bytes(vector: np.ndarray) -> bytes:
    import io

    out = io.BytesIO()
    np.save(out, np.asarray(vector, dtype=np.float32), allow_pickle=False)
    return out.getvalue()
