"""Face detectors side by side on a held-out set: recall, false positives, landmark error
(NME) overall and at ±40° tilt, and milliseconds per 640×360 and 1280×720 frame.

Used by ``swapcam bench --detectors`` and ``bench/bench_detect.py``.

Held-out set: real photos × variants. The photos: insightface's t1.jpg (six people) and its
aligned Tom_Hanks crop on a grey canvas (both ship with the runtime install), plus
scikit-image's astronaut and matplotlib's Grace Hopper when those are installed, plus any
folder of the user's own. Variants: original, rotated ±20° and ±40° (canvas grown so no face
is cut), shrunk so faces are ~50 px wide, lit from below (a vertical gain ramp), Gaussian
noise σ = 12, letterboxed into 640×360 and 1280×720.

Ground truth: faces and five points are found once on each *original* photo by reference
detectors searching it at full size, and carried through each variant's known transform.
The reference points are the mean of those available among dlib's 68-point model reduced
to five and FaceMesh's (each then is half of the reference; ``Comparison.reference`` says
which were used, since NME favours a detector that is part of it). A detection matches a
face when its box holds the face's two eyes and nose; unmatched detections are false
positives. NME = mean point error / inter-ocular distance.
"""

from __future__ import annotations

import importlib.util
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from realtime.types import Detection

Detect = Callable[[np.ndarray], list[Detection]]

VARIANTS: tuple[str, ...] = ("original", "rot+20", "rot-20", "rot+40", "rot-40", "small",
                             "light_below", "noise", "letterbox640", "letterbox1280")
TILT40 = ("rot+40", "rot-40")
TIMING_SIZES: tuple[tuple[int, int], ...] = ((640, 360), (1280, 720))
REFERENCE_WIDTH = 1600  # the reference detectors search the original at full size
BACKGROUND = (110, 110, 110)


class EvalError(ValueError):
    """The held-out set cannot be built (no photos, an unreadable file, no reference)."""


@dataclass
class Sample:
    name: str
    variant: str
    image: np.ndarray
    points: list[np.ndarray]  # ground-truth five points per face


# ---------------------------------------------------------------- photos


def _insightface_images() -> Path:
    spec = importlib.util.find_spec("insightface")
    if spec is None or spec.origin is None:
        raise EvalError("insightface is not installed: the held-out set starts from its t1.jpg")
    return Path(spec.origin).parent / "data" / "images"


def _read(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise EvalError(f"{path}: not an image OpenCV can read")
    return image


def package_photos() -> dict[str, np.ndarray]:
    """The real photos available offline: t1.jpg and Tom_Hanks (runtime install), the
    astronaut and Grace Hopper (when scikit-image / matplotlib are installed)."""
    folder = _insightface_images()
    photos = {"t1": _read(folder / "t1.jpg")}
    hanks = _read(folder / "Tom_Hanks_54745.png")
    canvas = np.full((420, 420, 3), 120, np.uint8)
    canvas[100:324, 100:324] = cv2.resize(hanks, (224, 224), interpolation=cv2.INTER_CUBIC)
    photos["tom_hanks"] = canvas
    if importlib.util.find_spec("skimage") is not None:
        from skimage import data

        photos["astronaut"] = np.ascontiguousarray(data.astronaut()[:, :, ::-1])
    if importlib.util.find_spec("matplotlib") is not None:
        from matplotlib import cbook

        path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
        photos["grace_hopper"] = _read(Path(str(path)))
    return photos


def folder_photos(folder: Path) -> dict[str, np.ndarray]:
    """Every image in ``folder`` (sorted by name), keyed by file stem."""
    suffixes = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
    files = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in suffixes)
    if not files:
        raise EvalError(f"{folder}: no photos in it (.jpg, .jpeg, .png, .bmp, .webp)")
    return {p.stem: _read(p) for p in files}


# ---------------------------------------------------------------- variants


def _rotate(image: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    h, w = image.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    cos, sin = abs(m[0, 0]), abs(m[0, 1])
    nw, nh = int(h * sin + w * cos), int(h * cos + w * sin)
    m[0, 2] += nw / 2 - w / 2
    m[1, 2] += nh / 2 - h / 2
    return cv2.warpAffine(image, m, (nw, nh), borderValue=BACKGROUND), m


def letterbox_into(image: np.ndarray, factor: float, size: tuple[int, int] | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """``image`` scaled by ``factor`` (centred on a black ``size`` canvas when given);
    returns it and the 2×3 transform from the original's pixels."""
    h, w = image.shape[:2]
    small = cv2.resize(image, (max(1, round(w * factor)), max(1, round(h * factor))),
                       interpolation=cv2.INTER_AREA)
    m = np.array([[factor, 0, 0], [0, factor, 0]], np.float64)
    if size is None:
        return small, m
    cw, ch = size
    canvas = np.zeros((ch, cw, 3), np.uint8)
    x0, y0 = (cw - small.shape[1]) // 2, (ch - small.shape[0]) // 2
    canvas[y0:y0 + small.shape[0], x0:x0 + small.shape[1]] = small
    m[:, 2] = (x0, y0)
    return canvas, m


def variants(image: np.ndarray, iod: float, names: Iterable[str] = VARIANTS
             ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Variant name → (image, 2×3 transform from the original's pixels). ``iod``: the
    smallest inter-ocular distance in the photo (sizes the ``small`` variant)."""
    wanted = list(names)
    unknown = [n for n in wanted if n not in VARIANTS]
    if unknown:
        raise EvalError(f"unknown variants {unknown}; expected some of {', '.join(VARIANTS)}")
    identity = np.array([[1, 0, 0], [0, 1, 0]], np.float64)
    h, w = image.shape[:2]
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name in wanted:
        if name == "original":
            out[name] = (image, identity)
        elif name.startswith("rot"):
            out[name] = _rotate(image, float(name[3:]))
        elif name == "small":
            # a face is about 2.2 inter-ocular distances wide: aim at 50 px faces
            out[name] = letterbox_into(image, min(1.0, 50 / (2.2 * iod)))
        elif name == "light_below":
            ramp = np.linspace(0.35, 1.25, h, dtype=np.float32)[:, None, None]
            lit = np.clip(image.astype(np.float32) * ramp, 0, 255).astype(np.uint8)
            out[name] = (lit, identity)
        elif name == "noise":
            rng = np.random.default_rng(12)
            noisy = image.astype(np.float32) + rng.normal(0, 12, image.shape)
            out[name] = (np.clip(noisy, 0, 255).astype(np.uint8), identity)
        else:  # letterbox640 / letterbox1280
            cw, ch = (640, 360) if name == "letterbox640" else (1280, 720)
            out[name] = letterbox_into(image, min(cw / w, ch / h), (cw, ch))
    return out


# ---------------------------------------------------------------- ground truth


def reference_points(photos: dict[str, np.ndarray], references: list[Detect]
                     ) -> dict[str, list[np.ndarray]]:
    """Five points per face on each original: the first reference's faces, each averaged
    with the nearest face of every other reference (within 0.3 inter-ocular distances)."""
    if not references:
        raise EvalError("no reference detector")
    refs: dict[str, list[np.ndarray]] = {}
    for name, image in photos.items():
        found = [d.landmarks.astype(np.float64) for d in references[0](image)]
        others = [[d.landmarks.astype(np.float64) for d in ref(image)]
                  for ref in references[1:]]
        merged = []
        for pts in found:
            iod = float(np.linalg.norm(pts[0] - pts[1]))
            group = [pts]
            for faces in others:
                near = [o for o in faces if np.linalg.norm(o - pts, axis=1).mean() < 0.3 * iod]
                if near:
                    group.append(near[0])
            merged.append(np.mean(group, axis=0))
        if not merged:
            raise EvalError(f"photo {name!r}: the reference detector finds no face in it")
        refs[name] = merged
    return refs


def build_set(photos: dict[str, np.ndarray], refs: dict[str, list[np.ndarray]],
              names: Iterable[str] = VARIANTS) -> list[Sample]:
    wanted = list(names)
    samples = []
    for name, image in photos.items():
        iod = min(float(np.linalg.norm(p[0] - p[1])) for p in refs[name])
        for variant, (frame, m) in variants(image, iod, wanted).items():
            moved = [p @ m[:, :2].T + m[:, 2] for p in refs[name]]
            samples.append(Sample(name, variant, frame, moved))
    return samples


# ---------------------------------------------------------------- scoring


def _holds(box: np.ndarray, points: np.ndarray) -> bool:
    key = points[[0, 1, 2]]
    return bool(((key[:, 0] >= box[0]) & (key[:, 0] <= box[2])
                 & (key[:, 1] >= box[1]) & (key[:, 1] <= box[3])).all())


@dataclass
class Score:
    faces: int = 0
    found: int = 0
    false_pos: int = 0
    errors: list[float] = field(default_factory=list)
    tilt40: list[float] = field(default_factory=list)

    @property
    def nme(self) -> float:
        return float(np.mean(self.errors)) if self.errors else float("nan")

    @property
    def nme_tilt40(self) -> float:
        return float(np.mean(self.tilt40)) if self.tilt40 else float("nan")


def evaluate(detect: Detect, samples: list[Sample], progress: Callable[[], None] | None = None
             ) -> Score:
    score = Score()
    for sample in samples:
        dets = list(detect(sample.image))
        used: set[int] = set()
        for truth in sample.points:
            score.faces += 1
            match = next((i for i, d in enumerate(dets) if i not in used
                          and _holds(d.box, truth)), None)
            if match is None:
                continue
            used.add(match)
            score.found += 1
            iod = float(np.linalg.norm(truth[0] - truth[1]))
            nme = float(np.linalg.norm(dets[match].landmarks - truth, axis=1).mean()) / iod
            score.errors.append(nme)
            if sample.variant in TILT40:
                score.tilt40.append(nme)
        score.false_pos += len(dets) - len(used)
        if progress is not None:
            progress()
    return score


def timing_frames(photo: np.ndarray) -> dict[tuple[int, int], np.ndarray]:
    """``photo`` letterboxed into each timing size (the frame a camera would give)."""
    h, w = photo.shape[:2]
    return {size: letterbox_into(photo, min(size[0] / w, size[1] / h), size)[0]
            for size in TIMING_SIZES}


def median_ms(detect: Detect, frame: np.ndarray, repeats: int) -> float:
    """Median wall time of ``detect(frame)`` after one warm-up call."""
    detect(frame)
    times = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        detect(frame)
        times.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(times)


@dataclass
class Row:
    """One detector's line of the comparison; ``missing`` says why it did not run."""

    label: str
    score: Score | None = None
    ms: dict[str, float] = field(default_factory=dict)
    missing: str | None = None

    def as_dict(self) -> dict[str, object]:
        if self.score is None:
            return {"detector": self.label, "missing": self.missing}
        return {"detector": self.label, "faces": self.score.faces, "found": self.score.found,
                "false_positives": self.score.false_pos,
                "recall": self.score.found / max(1, self.score.faces),
                "nme": self.score.nme, "nme_tilt40": self.score.nme_tilt40,
                "ms": self.ms}


def compare(detectors: dict[str, Detect | str], samples: list[Sample],
            frames: dict[tuple[int, int], np.ndarray], *, repeats: int,
            progress: Callable[[], None] | None = None) -> list[Row]:
    """Score and time each detector; a string instead of a detector is the reason it is
    absent (reported as such)."""
    rows = []
    for label, detect in detectors.items():
        if isinstance(detect, str):
            rows.append(Row(label, missing=detect))
            continue
        score = evaluate(detect, samples, progress)
        ms = {f"{w}x{h}": median_ms(detect, frame, repeats)
              for (w, h), frame in frames.items()}
        rows.append(Row(label, score, ms))
    return rows


def format_rows(rows: list[Row]) -> str:
    """A markdown table (the README's format)."""
    total = next((r.score.faces for r in rows if r.score is not None), 0)
    sizes = next((list(r.ms) for r in rows if r.ms), [f"{w}x{h}" for w, h in TIMING_SIZES])
    lines = [f"| detector | found /{total} | recall | false pos. | NME all / ±40° | "
             + " | ".join(f"ms {s.replace('x', '×')}" for s in sizes) + " |",
             "|---|---|---|---|---|" + "---|" * len(sizes)]
    for row in rows:
        if row.score is None:
            lines.append(f"| {row.label} | {row.missing} |" + " |" * (3 + len(sizes)))
            continue
        s = row.score
        lines.append(f"| {row.label} | {s.found} | {s.found / max(1, s.faces):.3f} | "
                     f"{s.false_pos} | {s.nme:.3f} / {s.nme_tilt40:.3f} | "
                     + " | ".join(f"{row.ms[k]:.1f}" for k in sizes) + " |")
    return "\n".join(lines)


# ---------------------------------------------------------------- the contenders


@dataclass
class Contenders:
    detectors: dict[str, Detect | str]  # label → detector, or why it is absent
    references: list[Detect]
    reference: str                       # which detectors the ground truth comes from


def build_contenders(models_dir: Path, *, engine: str = "auto", threads: int | None = None,
                     detect_width: int = 640, mesh_tflite: Path | None = None,
                     work_dir: Path | None = None) -> Contenders:
    """dlib (legacy), SCRFD, RetinaFace alone and RetinaFace + FaceMesh, each at the
    live search width, plus the reference detectors (full-size search). Absent ones carry
    the command that installs them. ``mesh_tflite``: a FaceMesh file to use instead of
    the models folder's (converted in ``work_dir``)."""
    import shutil

    from engines.models import FACE_MESH_SHA256, model_status, require_model
    from engines.registry import open_engine
    from realtime.faces.detect import (
        DERIVED_DIR,
        DLIB_HINT,
        DlibDetector,
        ScrfdDetector,
        dlib_available,
    )
    from realtime.faces.mesh import FaceMesh, MeshRefinedDetector, mesh_onnx_path
    from realtime.faces.retinaface import RetinaFaceDetector, embedded_onnx_path

    models_dir = Path(models_dir)
    detectors: dict[str, Detect | str] = {}
    label = f"dlib HOG + 68 pt (legacy, {detect_width} px)"
    dlib_ref: Detect | None = None
    if dlib_available():
        detectors[label] = DlibDetector(detect_width=detect_width).detect
        dlib_ref = DlibDetector(detect_width=REFERENCE_WIDTH).detect
    else:
        detectors[label] = f"not installed: {DLIB_HINT}"
    if model_status(models_dir, "scrfd-10g") in ("present", "verified"):
        scrfd = ScrfdDetector(open_engine(require_model(models_dir, "scrfd-10g"), engine,
                                          threads=threads))
        detectors["SCRFD-10GF (640 px input)"] = scrfd.detect
    else:
        detectors["SCRFD-10GF"] = "not installed: models download scrfd-10g"
    retina_engine = open_engine(embedded_onnx_path(models_dir / DERIVED_DIR), engine,
                                threads=threads)
    retina = RetinaFaceDetector(retina_engine, detect_width=detect_width)
    detectors[f"RetinaFace ({detect_width} px)"] = retina.detect
    mesh_label = f"RetinaFace + FaceMesh ({detect_width} px, default with face-mesh)"
    mesh: FaceMesh | None = None
    if mesh_tflite is not None:
        if work_dir is None:
            raise EvalError("a FaceMesh file given by path needs a work folder to convert in")
        local = Path(work_dir) / "face_landmark.tflite"
        shutil.copyfile(mesh_tflite, local)
        from engines.fileio import sha256_file

        if sha256_file(local) != FACE_MESH_SHA256:
            raise EvalError(f"{mesh_tflite}: not MediaPipe's face_landmark.tflite "
                            f"(sha256 differs from the pinned {FACE_MESH_SHA256})")
        mesh = FaceMesh(open_engine(mesh_onnx_path(local), engine, threads=threads))
    elif model_status(models_dir, "face-mesh") != "missing":
        path = mesh_onnx_path(require_model(models_dir, "face-mesh"))
        mesh = FaceMesh(open_engine(path, engine, threads=threads))
    if mesh is not None:
        detectors[mesh_label] = MeshRefinedDetector(retina, mesh).detect
    else:
        detectors[mesh_label] = ("face-mesh not installed: models download face-mesh "
                                 "(or models import face_landmark.tflite)")
    wide = RetinaFaceDetector(retina_engine, detect_width=REFERENCE_WIDTH)
    references: list[Detect] = []
    names = []
    if mesh is not None:
        references.append(MeshRefinedDetector(wide, mesh).detect)
        names.append("FaceMesh")
    if dlib_ref is not None:
        references.append(dlib_ref)
        names.append("dlib 68→5")
    if not references:
        references.append(wide.detect)
        names.append("RetinaFace alone (neither FaceMesh nor dlib installed: NME favours "
                     "RetinaFace)")
    elif len(references) == 1:
        names[0] += " only (NME favours it)"
    reference = "mean of " + " and ".join(names) if len(names) > 1 else names[0]
    return Contenders(detectors, references, reference)
