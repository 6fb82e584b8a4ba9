"""The model table and the models folder: what each file is, where it comes from, whether
it is intact.

Layout: ``<models_dir>/<name>/<official file name>``. None of the upstream projects publish
sha256 digests, so each file's hash is recorded in ``<models_dir>/hashes.json`` when it is
first downloaded or imported (trust on first use) and checked against that afterwards. A
file that no longer matches is "corrupt": it is never loaded, and a new download or import
replaces it atomically.

Cheap to import (no torch/onnx at module level): the CLI builds ``--help`` from it.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from engines.archive import UnsafeArchive, check_archive, extract_members, find_member
from engines.base import ModelFileError
from engines.download import (
    DownloadCancelled,
    DownloadError,
    InsecureURL,
    ProgressCallback,
    fetch,
)
from engines.fileio import sha256_file, write_atomic

log = logging.getLogger(__name__)

Status = Literal["present", "missing", "verified", "corrupt"]
HASHES_FILE = "hashes.json"
STAGING_DIR = ".downloads"

SIMSWAP_LICENCE = (
    "SimSwap weights (neuralchen/SimSwap) are licensed under Creative Commons "
    "Attribution-NonCommercial 4.0 International (CC BY-NC 4.0): non-commercial use only, "
    "with attribution. The authors ask that they not be used for illegal or unethical purposes."
)
SIMSWAP_LICENCE_URL = "https://github.com/neuralchen/SimSwap/blob/main/LICENSE"
INSIGHTFACE_LICENCE = (
    "InsightFace pretrained models (deepinsight/insightface) are available for "
    "non-commercial research purposes only."
)
INSIGHTFACE_LICENCE_URL = "https://github.com/deepinsight/insightface#license"
INSWAPPER_LICENCE = (
    "inswapper_128 was released by InsightFace for non-commercial research purposes only. "
    "InsightFace no longer distributes it; the download comes from a public mirror."
)

FACE_PARSING_LICENCE = (
    "The BiSeNet face parser (zllrunning/face-parsing.PyTorch, the one SimSwap links to) is "
    "MIT-licensed code; its 79999_iter.pth weights carry no separate licence and were trained "
    "on CelebAMask-HQ, whose images are for non-commercial research and education only. The "
    "author publishes them on Google Drive (file id 154JgKpzCPW82qINcVieuPH3fZ2e0P812) and "
    "SimSwap republishes the same file in its release 1.0; the download comes from SimSwap's "
    "release, with a public mirror as the fall-back."
)
FACE_PARSING_LICENCE_URL = "https://github.com/zllrunning/face-parsing.PyTorch/blob/master/LICENSE"

GFPGAN_LICENCE = (
    "GFPGAN (TencentARC/GFPGAN) code and its released GFPGANv1.4.pth weights are licensed "
    "under the Apache License 2.0 (the repository lists third-party parts under their own "
    "licences): commercial use allowed, keep the licence notice."
)
GFPGAN_LICENCE_URL = "https://github.com/TencentARC/GFPGAN/blob/master/LICENSE"

MEDIAPIPE_LICENCE = (
    "MediaPipe's FaceMesh model (google-ai-edge/mediapipe, face_landmark.tflite) is licensed "
    "under the Apache License 2.0: commercial use allowed, keep the licence notice."
)
MEDIAPIPE_LICENCE_URL = "https://github.com/google-ai-edge/mediapipe/blob/master/LICENSE"
# The FaceMesh file in MediaPipe's asset bucket, the one its solutions download.
FACE_MESH_SHA256 = "2efcb4f4de43c7614b80a3cc3e8a37354b3b3b40f75cce20f6f38f0f25d65493"

_SIMSWAP_1_0 = "https://github.com/neuralchen/SimSwap/releases/download/1.0/"
_BUFFALO_L = "https://github.com/deepinsight/insightface/releases/download/v0.7/buffalo_l.zip"


@dataclass(frozen=True)
class ModelFile:
    """One file of a model: its official name, where it sits inside the download (a path
    suffix of an archive entry, or None when the URL serves the file itself) and its sha256
    when upstream publishes one (None: trust on first use)."""

    name: str
    member: str | None = None
    sha256: str | None = None


@dataclass(frozen=True)
class ModelInfo:
    name: str
    title: str
    files: tuple[ModelFile, ...]
    urls: tuple[str, ...]  # mirrors, tried in order; each serves the same download
    licence: str
    licence_url: str
    # Approximate size of the model file, not of the archive: from parameter counts for the
    # SimSwap files (≈55 M float32 each), from mirrors' listings for insightface's files.
    size_mb: float
    kind: Literal["generator", "encoder", "swapper", "detector", "parser", "landmarks",
                  "enhancer"]
    licence_name: str = ""  # short form for tables

    @property
    def download_name(self) -> str:
        """The file name the URLs serve (an archive, or the model file itself)."""
        return self.urls[0].rsplit("/", 1)[-1]

    @property
    def is_archive(self) -> bool:
        return self.files[0].member is not None


MODELS: dict[str, ModelInfo] = {
    info.name: info
    for info in (
        ModelInfo(
            name="simswap-224",
            title="SimSwap 224 generator (official 'people' checkpoint)",
            files=(ModelFile("latest_net_G.pth", member="people/latest_net_G.pth"),),
            urls=(_SIMSWAP_1_0 + "checkpoints.zip",),
            licence=SIMSWAP_LICENCE, licence_url=SIMSWAP_LICENCE_URL,
            licence_name="CC BY-NC 4.0",
            size_mb=220.0, kind="generator",
        ),
        ModelInfo(
            name="simswap-512",
            title="SimSwap 512 generator (beta)",
            files=(ModelFile("550000_net_G.pth", member="512/550000_net_G.pth"),),
            urls=("https://github.com/neuralchen/SimSwap/releases/download/512_beta/512.zip",),
            licence=SIMSWAP_LICENCE, licence_url=SIMSWAP_LICENCE_URL,
            licence_name="CC BY-NC 4.0",
            size_mb=226.0, kind="generator",
        ),
        ModelInfo(
            name="arcface-simswap",
            title="SimSwap ArcFace identity encoder",
            files=(ModelFile("arcface_checkpoint.tar"),),
            urls=(_SIMSWAP_1_0 + "arcface_checkpoint.tar",),
            licence=SIMSWAP_LICENCE, licence_url=SIMSWAP_LICENCE_URL,
            licence_name="CC BY-NC 4.0",
            size_mb=220.0, kind="encoder",
        ),
        ModelInfo(
            name="inswapper-128",
            title="InsightFace inswapper_128 swapper",
            files=(ModelFile("inswapper_128.onnx"),),
            urls=(
                "https://huggingface.co/ezioruan/inswapper_128.onnx/resolve/main/"
                "inswapper_128.onnx",
                "https://huggingface.co/hacksider/deep-live-cam/resolve/main/inswapper_128.onnx",
            ),
            licence=INSWAPPER_LICENCE, licence_url=INSIGHTFACE_LICENCE_URL,
            licence_name="non-commercial research only",
            size_mb=554.0, kind="swapper",
        ),
        ModelInfo(
            name="arcface-w600k",
            title="InsightFace ArcFace R50 (WebFace600K, buffalo_l)",
            files=(ModelFile("w600k_r50.onnx", member="w600k_r50.onnx"),),
            urls=(_BUFFALO_L,),
            licence=INSIGHTFACE_LICENCE, licence_url=INSIGHTFACE_LICENCE_URL,
            licence_name="non-commercial research only",
            size_mb=174.0, kind="encoder",
        ),
        ModelInfo(
            name="scrfd-10g",
            title="InsightFace SCRFD-10GF face detector with keypoints (buffalo_l)",
            files=(ModelFile("det_10g.onnx", member="det_10g.onnx"),),
            urls=(_BUFFALO_L,),
            licence=INSIGHTFACE_LICENCE, licence_url=INSIGHTFACE_LICENCE_URL,
            licence_name="non-commercial research only",
            size_mb=17.0, kind="detector",
        ),
        ModelInfo(
            name="face-mesh",
            title="MediaPipe FaceMesh: 468 landmarks that refine the default detector's points",
            files=(ModelFile("face_landmark.tflite", sha256=FACE_MESH_SHA256),),
            urls=("https://storage.googleapis.com/mediapipe-assets/face_landmark.tflite",),
            licence=MEDIAPIPE_LICENCE, licence_url=MEDIAPIPE_LICENCE_URL,
            licence_name="Apache-2.0",
            size_mb=2.4, kind="landmarks",
        ),
        ModelInfo(
            name="face-parsing",
            title="BiSeNet face parser for SimSwap's mask (face-parsing.PyTorch 79999_iter)",
            files=(ModelFile("79999_iter.pth"),),
            # SimSwap's own release asset first (release 1.0, beside checkpoints.zip); the
            # Hugging Face mirror is the fall-back. The author's Google Drive serves large
            # files behind an HTML confirmation page.
            urls=(_SIMSWAP_1_0 + "79999_iter.pth",
                  "https://huggingface.co/ManyOtherFunctions/face-parse-bisent/resolve/main/"
                  "79999_iter.pth"),
            licence=FACE_PARSING_LICENCE, licence_url=FACE_PARSING_LICENCE_URL,
            licence_name="MIT code; weights: CelebAMask-HQ, non-commercial research",
            size_mb=53.3, kind="parser",
        ),
        ModelInfo(
            name="gfpgan-1.4",
            title="GFPGAN 1.4 face enhancer (GFPGANv1Clean, 512 px)",
            # no published sha256: recorded at the first download or import
            files=(ModelFile("GFPGANv1.4.pth"),),
            urls=("https://github.com/TencentARC/GFPGAN/releases/download/v1.3.0/"
                  "GFPGANv1.4.pth",),
            licence=GFPGAN_LICENCE, licence_url=GFPGAN_LICENCE_URL,
            licence_name="Apache-2.0",
            size_mb=348.6, kind="enhancer",
        ),
    )
}

# Path suffixes inside archives a user may import, most specific first; the first match per
# model wins. antelopev2's SCRFD is the same 10GF detector under another name; its
# glintr100.onnx is a different ArcFace (Glint360K R100), not the w600k that inswapper's
# emap expects, so it is not imported.
ARCHIVE_MEMBERS: tuple[tuple[str, str], ...] = (
    ("people/latest_net_G.pth", "simswap-224"),
    ("512/550000_net_G.pth", "simswap-512"),
    ("latest_net_G.pth", "simswap-224"),
    ("550000_net_G.pth", "simswap-512"),
    ("arcface_checkpoint.tar", "arcface-simswap"),
    ("inswapper_128.onnx", "inswapper-128"),
    ("w600k_r50.onnx", "arcface-w600k"),
    ("det_10g.onnx", "scrfd-10g"),
    ("scrfd_10g_bnkps.onnx", "scrfd-10g"),
    ("face_landmark.tflite", "face-mesh"),
    ("79999_iter.pth", "face-parsing"),
    ("GFPGANv1.4.pth", "gfpgan-1.4"),
)
# Official plain file names -> model.
FILE_NAMES: dict[str, str] = {
    suffix: model for suffix, model in ARCHIVE_MEMBERS if "/" not in suffix
}


class UnknownModel(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(f"unknown model {name!r}; expected one of {', '.join(MODELS)}")


class ModelMissing(ModelFileError):
    """A model is not installed (or is corrupt); the message gives the commands to fix it."""


class ModelCorrupt(ModelMissing):
    """A model file no longer matches its recorded or published sha256."""


class LicenceNotAccepted(ModelFileError):
    """The model's licence must be accepted before anything is downloaded."""


class ImportNotRecognised(ModelFileError):
    """``import_model`` could not tell which model a file is."""


def _info(name: str) -> ModelInfo:
    try:
        return MODELS[name]
    except KeyError:
        raise UnknownModel(name) from None


def model_path(models_dir: Path, name: str) -> Path:
    """Where the model's main file lives (it may not exist)."""
    info = _info(name)
    return Path(models_dir) / name / info.files[0].name


def licence_text(name: str) -> str:
    info = _info(name)
    return f"{info.title} ({name}):\n  {info.licence}\n  {info.licence_url}"


# -- hashes.json (trust on first use) ----------------------------------------------------

def _hashes_path(models_dir: Path) -> Path:
    return Path(models_dir) / HASHES_FILE


def _load_hashes(models_dir: Path) -> dict[str, dict[str, Any]]:
    path = _hashes_path(models_dir)
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        # A damaged record must not silently turn into "nothing to check against".
        raise ModelFileError(f"{path}: unreadable hash record ({exc}); fix or delete it "
                             "(deleting it re-trusts the files present)") from exc
    files = data.get("files", {}) if isinstance(data, dict) else {}
    return {key: value for key, value in files.items() if isinstance(value, dict)}


def _save_hashes(models_dir: Path, records: dict[str, dict[str, Any]]) -> None:
    # a unique temporary name inside write_atomic: the GUI may finish two downloads at once
    text = json.dumps({"version": 1, "files": records}, indent=2, sort_keys=True)
    write_atomic(_hashes_path(models_dir), text.encode("utf-8"))


def _key(name: str, file: ModelFile) -> str:
    return f"{name}/{file.name}"


def _record(models_dir: Path, name: str, file: ModelFile, digest: str, source: str) -> None:
    path = Path(models_dir) / name / file.name
    st = path.stat()
    records = _load_hashes(models_dir)
    records[_key(name, file)] = {
        "sha256": digest, "size": st.st_size, "mtime_ns": st.st_mtime_ns,
        "source": source, "recorded": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    _save_hashes(models_dir, records)


def _expected(records: dict[str, dict[str, Any]], name: str, file: ModelFile) -> str | None:
    if file.sha256 is not None:
        return file.sha256
    record = records.get(_key(name, file))
    return str(record["sha256"]) if record and "sha256" in record else None


# -- status and verification -------------------------------------------------------------

def _file_status(models_dir: Path, name: str, file: ModelFile, *, full: bool,
                 records: dict[str, dict[str, Any]]) -> tuple[Status, str | None, str | None]:
    """(status, expected, got) for one file; ``got`` only when it was hashed."""
    path = Path(models_dir) / name / file.name
    if not path.is_file():
        return "missing", None, None
    expected = _expected(records, name, file)
    if expected is None:
        return "present", None, None
    st = path.stat()
    record = records.get(_key(name, file), {})
    if record.get("size") is not None and record["size"] != st.st_size:
        return "corrupt", expected, f"a file of {st.st_size} bytes, recorded {record['size']}"
    unchanged = (record.get("sha256") == expected and record.get("mtime_ns") == st.st_mtime_ns)
    if unchanged and not full:
        # Hashed in full when recorded, and not rewritten since: skip re-reading ~0.5 GB.
        return "verified", expected, None
    got = sha256_file(path)
    if got != expected:
        return "corrupt", expected, got
    if record.get("sha256") != got or record.get("mtime_ns") != st.st_mtime_ns:
        # Remember this full hash so the next cheap check can skip it.
        _record(models_dir, name, file, got, str(record.get("source", "verified")))
    return "verified", expected, got


def _status(models_dir: Path, name: str, *, full: bool) -> tuple[Status, str]:
    info = _info(name)
    records = _load_hashes(models_dir)
    worst: Status = "verified"
    detail = ""
    rank = {"verified": 0, "present": 1, "missing": 2, "corrupt": 3}
    for file in info.files:
        status, expected, got = _file_status(models_dir, name, file, full=full,
                                             records=records)
        if rank[status] > rank[worst]:
            worst = status
            detail = (f"{file.name}: sha256 expected {expected}, got {got}"
                      if status == "corrupt" else file.name)
    return worst, detail


def model_status(models_dir: Path, name: str) -> Status:
    """missing / present (no hash to check against yet) / verified / corrupt.

    Re-hashes only files changed since they were last hashed; ``verify_model`` always does.
    """
    return _status(Path(models_dir), name, full=False)[0]


def verify_model(models_dir: Path, name: str) -> bool:
    """Hash every file of ``name`` in full; True when all match their published/recorded
    sha256. A present file without any record is trusted now and recorded."""
    models_dir = Path(models_dir)
    status, detail = _status(models_dir, name, full=True)
    if status == "present":
        _trust_present(models_dir, name, "verify (first use)")
        return True
    if status == "corrupt":
        log.warning("%s is corrupt: %s", name, detail)
    return status == "verified"


def _trust_present(models_dir: Path, name: str, source: str) -> None:
    info = _info(name)
    records = _load_hashes(models_dir)
    for file in info.files:
        path = models_dir / name / file.name
        if path.is_file() and _expected(records, name, file) is None:
            log.warning("no recorded sha256 for %s: trusting it now and recording its hash",
                        path)
            _record(models_dir, name, file, sha256_file(path), source)


def _commands(models_dir: Path, name: str) -> str:
    info = _info(name)
    prefix = "python main.py"
    from engines.paths import default_models_dir

    if Path(models_dir).resolve() != default_models_dir().resolve():
        prefix += f" --models-dir {models_dir}"
    return (f"  download it:  {prefix} models download {name}\n"
            f"  or import a copy you downloaded ({info.download_name} from "
            f"{info.urls[0]}):  {prefix} models import PATH")


def recorded_sha256(models_dir: Path, name: str) -> str:
    """The sha256 of ``name``'s main file as published or recorded (call after
    ``require_model``, which records a file seen for the first time)."""
    info = _info(name)
    expected = _expected(_load_hashes(Path(models_dir)), name, info.files[0])
    if expected is None:
        raise ModelMissing(f"model {name}: no sha256 recorded for {info.files[0].name}")
    return expected


def require_model(models_dir: Path, name: str) -> Path:
    """The model's verified main file, or ``ModelMissing`` saying how to get it."""
    models_dir = Path(models_dir)
    info = _info(name)
    status, detail = _status(models_dir, name, full=False)
    if status == "missing":
        raise ModelMissing(f"model {name} ({info.title}) is not installed: "
                           f"{models_dir / name / detail} does not exist.\n"
                           + _commands(models_dir, name))
    if status == "corrupt":
        raise ModelCorrupt(f"model {name} in {models_dir / name} is corrupt ({detail}); "
                           "it will not be loaded. Replace it:\n" + _commands(models_dir, name))
    if status == "present":
        _trust_present(models_dir, name, "first use")
    return model_path(models_dir, name)


# -- installing files ----------------------------------------------------------------------

def _validate_kind(path: Path, official_name: str) -> None:
    """Refuse a file that cannot be what its name says (truncated ONNX, HTML error page)."""
    if official_name.endswith(".onnx"):
        import onnx

        try:
            onnx.load(str(path), load_external_data=False)
        except Exception as exc:  # onnx raises DecodeError and friends
            raise ModelFileError(f"{path}: not a valid ONNX file for {official_name} "
                                 f"({type(exc).__name__}: {exc})") from exc
        return
    if official_name.endswith(".tflite"):
        with open(path, "rb") as handle:
            ident = handle.read(8)[4:8]
        if ident != b"TFL3":  # the flatbuffer file identifier of every TFLite model
            raise ModelFileError(f"{path}: not a TensorFlow Lite file for {official_name} "
                                 f"(identifier {ident!r})")
        return
    with open(path, "rb") as handle:
        head = handle.read(2)
    # torch.save writes a zip (torch ≥ 1.6) or a pickle stream (legacy: protocol ≥ 2).
    if not (zipfile.is_zipfile(path) or head[:1] == b"\x80"):
        raise ModelFileError(f"{path}: not a torch checkpoint for {official_name} "
                             f"(starts with {head!r})")


def validate_candidate(name: str, path: Path) -> None:
    """Load ``path`` the way model ``name`` will be used (export/validate.py holds one
    validator per model); raise ``ModelFileError`` when it does not load."""
    from export.validate import validate_model

    validate_model(name, path)


def _install(models_dir: Path, name: str, file: ModelFile, staged: Path, *, source: str,
             retrust: bool) -> None:
    """Move a staged file into place once its hash and kind check out.

    ``retrust``: an explicit import may replace a recorded (not a published) hash.
    """
    try:
        got = sha256_file(staged)
        records = _load_hashes(models_dir)
        expected = file.sha256 if retrust else _expected(records, name, file)
        if expected is not None and got != expected:
            which = "published" if file.sha256 else "recorded at first download/import"
            raise ModelCorrupt(f"{name}/{file.name} from {source}: sha256 expected {expected} "
                               f"({which}), got {got}; the file was not installed")
        _validate_kind(staged, file.name)
        if file is _info(name).files[0]:
            try:
                validate_candidate(name, staged)
            except ModelFileError as exc:
                installed = (models_dir / name / file.name).exists()
                kept = " (the installed one is kept)" if installed else ""
                # same type (UnsafePickleError stays one), with what happened to the file
                raise type(exc)(f"{name} from {source} was not installed{kept}: "
                                f"{exc}") from exc
    except BaseException:
        staged.unlink(missing_ok=True)
        raise
    final = models_dir / name / file.name
    final.parent.mkdir(parents=True, exist_ok=True)
    old = _expected(records, name, file)
    if old is not None and old != got:
        log.warning("%s: replacing recorded sha256 %s with %s (imported %s)", final, old, got,
                    source)
    os.replace(staged, final)
    _record(models_dir, name, file, got, source)
    log.info("installed %s (sha256 %s)", final, got)


def _staging(models_dir: Path) -> Path:
    folder = models_dir / STAGING_DIR
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def download_model(
    name: str,
    models_dir: Path,
    *,
    accept_licence: bool,
    progress: bool | ProgressCallback = True,
    base_url: str | None = None,
    cancel: threading.Event | None = None,
    force: bool = False,
) -> Path:
    """Download, verify and install ``name``; return its main file.

    ``accept_licence`` must be True (the CLI asks the user) or ``LicenceNotAccepted`` is
    raised before any network access. ``progress``: True for a terminal progress bar, or a
    ``callable(done_bytes, total_bytes)`` (the GUI's bar). ``base_url`` replaces the
    table's mirrors with ``<base_url>/<download name>``. ``cancel`` stops between chunks,
    keeping the partial file so the next call resumes. A model already verified is kept
    unless ``force``; a corrupt one is replaced.
    """
    models_dir = Path(models_dir)
    info = _info(name)
    if not accept_licence:
        raise LicenceNotAccepted(
            f"{name}: its licence must be accepted before downloading:\n"
            f"{licence_text(name)}\n"
            "Accept it with --accept-licence (or accept_licence=True).")
    status = model_status(models_dir, name)
    if status in ("verified", "present") and not force:
        log.info("%s is already installed (%s)", name, status)
        if status == "present":
            _trust_present(models_dir, name, "first use")
        return model_path(models_dir, name)
    log.info("downloading %s (licence accepted: %s)", name, info.licence_name)
    urls = ([base_url.rstrip("/") + "/" + info.download_name] if base_url else
            list(info.urls))
    staged = _staging(models_dir) / info.download_name
    on_progress = progress if callable(progress) else None
    errors: list[str] = []
    for url in urls:
        try:
            expected = None if info.is_archive else _expected(_load_hashes(models_dir), name,
                                                              info.files[0])
            fetch(url, staged, sha256=expected, progress=progress is True,
                  on_progress=on_progress, cancel=cancel)
            break
        except (DownloadCancelled, InsecureURL):
            raise
        except DownloadError as exc:
            errors.append(f"{url}: {exc}")
            log.warning("download from %s failed: %s", url, exc)
            if len(urls) == 1:
                raise
    else:
        raise DownloadError(f"could not download {name}:\n  " + "\n  ".join(errors))
    source = f"download {url}"
    try:
        if info.is_archive:
            # Models sharing this archive (buffalo_l: ArcFace and SCRFD) come along when
            # missing or corrupt: same licence, and it saves a second 280 MB download.
            _import_archive(staged, models_dir, {name: _member_suffixes(name)},
                            source=source, retrust=False)
            if model_status(models_dir, name) == "missing":
                raise ModelFileError(f"{url}: the archive holds no {info.files[0].member}")
            _install_siblings(staged, models_dir, name, source)
        else:
            _install(models_dir, name, info.files[0], staged, source=source, retrust=False)
    finally:
        staged.unlink(missing_ok=True)
    return model_path(models_dir, name)


def _install_siblings(archive: Path, models_dir: Path, name: str, source: str) -> None:
    """Models sharing ``name``'s archive (buffalo_l: ArcFace and SCRFD) come along when
    missing or corrupt: same licence, and it saves a second 280 MB download. Their failure
    does not fail the model that was asked for."""
    info = MODELS[name]
    for other in MODELS.values():
        if other.name == name or other.urls != info.urls:
            continue
        if model_status(models_dir, other.name) not in ("missing", "corrupt"):
            continue
        try:
            _import_archive(archive, models_dir, {other.name: _member_suffixes(other.name)},
                            source=source, retrust=False)
        except ModelFileError as exc:
            log.warning("could not install %s from the same archive: %s", other.name, exc)


def _member_suffixes(name: str) -> list[str]:
    return [suffix for suffix, model in ARCHIVE_MEMBERS if model == name]


def _import_archive(archive: Path, models_dir: Path, wanted: dict[str, list[str]], *,
                    source: str, retrust: bool) -> list[str]:
    """Extract each wanted model (first matching suffix) and install it; return names."""
    infos = check_archive(archive, models_dir)
    staging = _staging(models_dir)
    picks: dict[str, Path] = {}
    chosen: dict[str, str] = {}
    for model, suffixes in wanted.items():
        for suffix in suffixes:
            if find_member(infos, suffix) is not None:
                chosen[suffix] = model
                picks[suffix] = staging / f"{model}.extract"
                break
    written = extract_members(archive, picks)
    imported: list[str] = []
    try:
        for suffix, staged in written.items():
            model = chosen[suffix]
            _install(models_dir, model, MODELS[model].files[0], staged,
                     source=f"{source} ({suffix})", retrust=retrust)
            imported.append(model)
    finally:
        for staged in picks.values():
            staged.unlink(missing_ok=True)
    skipped = [info.filename for info in infos if info.filename.endswith("glintr100.onnx")]
    if skipped:
        log.info("%s: not importing %s (a Glint360K ArcFace; inswapper needs buffalo_l's "
                 "w600k_r50.onnx)", archive, ", ".join(skipped))
    return imported


def _pick_files(folder: Path) -> list[Path]:
    """Zips, plus per model the official file whose path best matches (a SimSwap tree may
    hold several ``latest_net_G.pth``: ``people/`` is the released one)."""
    zips: list[Path] = []
    best: dict[str, tuple[int, Path]] = {}
    for path in sorted(folder.rglob("*")):
        if not path.is_file():
            continue
        if path.suffix.lower() == ".zip":
            zips.append(path)
            continue
        model = FILE_NAMES.get(path.name)
        if model is None:
            continue
        tail = path.as_posix()
        rank = next(i for i, (suffix, m) in enumerate(ARCHIVE_MEMBERS)
                    if m == model and tail.endswith("/" + suffix))
        if model not in best or rank < best[model][0]:
            best[model] = (rank, path)
    return zips + [path for _rank, path in best.values()]


def import_model(src: Path, models_dir: Path, name: str | None = None) -> list[str]:
    """Install model files a user downloaded by hand; return the model names imported.

    ``src`` may be an official file (``latest_net_G.pth``, ``inswapper_128.onnx``, ...), an
    official archive (``checkpoints.zip``, ``512.zip``, ``buffalo_l.zip``,
    ``antelopev2.zip``, or any zip holding official file names) or a folder holding them.
    ``name`` forces the target model (a renamed file, or one model out of an archive).
    """
    src = Path(src)
    models_dir = Path(models_dir)
    if name is not None:
        _info(name)
    if not src.exists():
        raise FileNotFoundError(f"{src}: no such file or folder")
    source = f"import {src.resolve()}"
    if src.is_dir():
        imported: list[str] = []
        for path in _pick_files(src):
            try:
                for model in import_model(path, models_dir, name):
                    if model not in imported:
                        imported.append(model)
            except ImportNotRecognised:
                continue
        if not imported:
            raise ImportNotRecognised(f"{src}: no official model files found in this folder "
                                      f"(looked for {', '.join(FILE_NAMES)})")
        return imported
    is_checkpoint = src.name.endswith((".pth", ".tar"))
    if src.suffix.lower() == ".zip" or (zipfile.is_zipfile(src) and not is_checkpoint):
        # torch checkpoints are zips too: only a file not named like one is an archive.
        if name is not None:
            wanted = {name: _member_suffixes(name) or [MODELS[name].files[0].name]}
        else:
            wanted = {}
            for _suffix, model in ARCHIVE_MEMBERS:
                wanted.setdefault(model, _member_suffixes(model))
        imported = _import_archive(src, models_dir, wanted, source=source, retrust=True)
        if not imported:
            raise ImportNotRecognised(f"{src}: the archive holds none of the model files "
                                      f"{', '.join(FILE_NAMES)}")
        return imported
    target = name or FILE_NAMES.get(src.name)
    if target is None:
        raise ImportNotRecognised(
            f"{src}: not an official model file name (expected one of "
            f"{', '.join(FILE_NAMES)} or an archive); use --as NAME to say which model it is")
    staged = _staging(models_dir) / f"{target}.import"
    shutil.copyfile(src, staged)
    _install(models_dir, target, MODELS[target].files[0], staged, source=source, retrust=True)
    return [target]


def download_models(names: Iterable[str], models_dir: Path, *, accept_licence: bool,
                    progress: bool | Callable[[int, int], None] = True) -> list[Path]:
    """``download_model`` for each name, in order."""
    return [download_model(n, models_dir, accept_licence=accept_licence, progress=progress)
            for n in names]


__all__ = [
    "MODELS", "ImportNotRecognised", "LicenceNotAccepted", "ModelCorrupt", "ModelFile",
    "ModelInfo", "ModelMissing", "UnknownModel", "UnsafeArchive", "download_model",
    "import_model", "licence_text", "model_path", "model_status", "require_model",
    "verify_model",
]
