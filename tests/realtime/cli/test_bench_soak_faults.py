"""``bench --soak --faults``: each failure injected into a running live pipeline (the real
threads, slots, tracker, detector, recorder and virtual-camera sink; the generator replaced
by a copy so each test takes seconds), and what the user sees and how it recovers."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from realtime.cli.bench_soak import crop_photos, private_models, write_clip
from realtime.cli.bench_soak_faults import (
    FlakySource,
    GatedSink,
    NullCameraBackend,
    SoakRig,
    fault_bad_frame,
    fault_camera_lost,
    fault_disk_full,
    fault_model_damaged,
    fault_settings_read_only,
    fault_source_photo,
    fault_vcam_consumer_gone,
    frames_flow,
    mount_small_fs,
    playable_frames,
    sigterm_while_recording,
    unmount_small_fs,
    wait_until,
)
from realtime.config import Settings
from realtime.io.clip import ClipSource

pytestmark = pytest.mark.timeout(240)

OTHERS = {"wear-a": (200, 460, 0, 220)}
SPARE = {"spare": (90, 330, 215, 430)}


class VectorEncoder:
    """An identity encoder with the bank's surface: a vector from the photo's pixels
    under its landmarks (different photos, different vectors)."""

    model_key = "soak-test"

    def embed(self, image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        rng = np.random.default_rng(int(image.sum()) % 2**32)
        v = rng.standard_normal(512).astype(np.float32)
        return v / np.linalg.norm(v)


@pytest.fixture()
def rig_factory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    pipelines: list[Any] = []
    mounts: list[Path] = []

    def make(*, parser_models: Path | None = None, small: str | None = None) -> SoakRig:
        from realtime.faces.sources import SourceBank
        from realtime.frame.process import FrameProcessor
        from realtime.io.sinks import AI_LABEL, RecorderSink, VirtualCameraSink
        from realtime.pipeline import Pipeline
        from realtime.session import PassthroughSwapper, make_live_detector
        from realtime.settings_store import SettingsStore

        settings = Settings(faces="all", texture="flow", swap_mode="auto",
                            mask="parsing" if parser_models else "box")
        detector = make_live_detector(settings, tmp_path / "no-models", threads=1)
        parser = None
        if parser_models is not None:
            from realtime.frame.parsing import load_mask_parser

            parser = load_mask_parser("parsing", parser_models, threads=1)
        processor = FrameProcessor(PassthroughSwapper(), None, settings,  # type: ignore[arg-type]
                                   parser=parser)
        photos = tmp_path / "photos"
        wear = crop_photos(photos, OTHERS)
        spare = crop_photos(tmp_path / "spare", SPARE)["spare"]
        bank = SourceBank(lambda _f: VectorEncoder(), detector,  # type: ignore[arg-type,return-value]
                          tmp_path / "bank-cache", families=("simswap-224",))
        bank.add([wear["wear-a"]])
        source = FlakySource(ClipSource(640, 480, fps=15, faces=3))
        recorder = RecorderSink(tmp_path / "rec.mkv", 640, 480, 15)
        vcam = VirtualCameraSink(640, 480, 15, backend=NullCameraBackend.register(),
                                 label=AI_LABEL)
        sinks: list[Any] = [recorder, vcam]
        small_recorder, small_fs, gated = None, None, None
        if small is not None:
            folder = tmp_path / "small"
            if small == "tmpfs":
                if not mount_small_fs(folder, 8):
                    pytest.skip("cannot mount a tmpfs here (needs root)")
                mounts.append(folder)
                small_fs = folder
            folder.mkdir(exist_ok=True)
            small_recorder = RecorderSink(folder / "rec.mkv", 640, 480, 15)
            gated = GatedSink(small_recorder)
            sinks.append(gated)
        store = SettingsStore(tmp_path / "settings" / "settings.toml")
        store.path.parent.mkdir(parents=True)
        store.save(settings)
        pipeline = Pipeline(source, processor, detector, bank, sinks, settings)
        pipelines.append(pipeline)
        t0 = time.monotonic()
        rig = SoakRig(pipeline, source, bank, photos, spare, parser_models or tmp_path,
                      "face-parsing", recorder, small_recorder, small_fs, store, vcam,
                      lambda: time.monotonic() - t0, work_dir=tmp_path,
                      small_gate=gated.gate if small is not None else None)
        pipeline.start()
        assert frames_flow(rig, 10, 30.0) is not None, "the pipeline did not start"
        return rig

    yield make
    for pipeline in pipelines:
        pipeline.stop(timeout=3.0, raise_error=False)
        pipeline.wait_stopped()
    for folder in mounts:
        unmount_small_fs(folder)
    NullCameraBackend.gone.clear()
    NullCameraBackend.unregister()  # a later window in this worker must not open it


def test_camera_lost_for_five_seconds_comes_back_by_itself(rig_factory: Any) -> None:
    rig = rig_factory()
    record = fault_camera_lost(rig)
    assert record.ok and record.recovered_s is not None and record.recovered_s < 5.0
    assert "reconnecting" in record.message
    assert rig.pipeline.error is None and rig.pipeline.stats().source_state == "running"


@pytest.mark.parametrize("mapped", [False, True])
def test_photo_deleted_and_another_added_while_live(rig_factory: Any, mapped: bool) -> None:
    rig = rig_factory()
    if mapped:  # every face is a mapped person's: none wears the active identity
        from realtime.faces.mapping import FaceMap

        rig.pipeline.face_map = FaceMap(unassigned="leave")
    assert frames_flow(rig, 20) is not None
    record = fault_source_photo(rig)
    assert record.ok, record.message
    assert not any(rig.photos_dir.glob("wear-a.png"))  # deleted on disk...
    names = [s.name for s in rig.bank.sources]
    assert names[0] == "wear-a" and len(names) == 2  # ...its identity kept in memory
    seen: list[str | None] = []

    def worn() -> bool:
        seen.append(rig.pipeline.stats().source_name)
        return seen[-1] == names[1]
    assert wait_until(worn, 10.0) is not None, seen[-20:]  # the new one worn
    assert ("to the person on track" in record.message) == mapped


@pytest.fixture(scope="module")
def parsing_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from export.random_models import populate_models_dir

    folder = tmp_path_factory.mktemp("parsing-models")
    populate_models_dir(folder, ("face-parsing",))
    return folder


def test_model_damaged_on_disk_is_refused_while_the_running_engine_works(
        rig_factory: Any, parsing_models: Path, tmp_path: Path) -> None:
    from engines.models import MODELS, model_status

    own = private_models(parsing_models, tmp_path / "own", "face-parsing")
    assert (own / "face-parsing").is_dir() and not (own / "face-parsing").is_symlink()
    rig = rig_factory(parser_models=own)
    path = own / "face-parsing" / MODELS["face-parsing"].files[0].name
    before = path.read_bytes()
    record = fault_model_damaged(rig)
    assert record.ok, record.message
    assert "refuses it" in record.message and "keeps swapping" in record.message
    assert path.read_bytes() == before  # put back
    assert model_status(own, "face-parsing") in ("verified", "present")
    assert (parsing_models / "face-parsing" / path.name).read_bytes() == before


@pytest.mark.parametrize("how", ["tmpfs", "prlimit"])
def test_disk_full_stops_recording_with_a_message_and_the_file_plays(
        rig_factory: Any, how: str) -> None:
    if how == "prlimit" and not sys.platform.startswith("linux"):
        pytest.skip("prlimit on another process is Linux's")
    rig = rig_factory(small=how)
    time.sleep(1.0)
    assert not rig.small_recorder.path.exists() or rig.small_recorder.stats().frames_sent == 0
    record = fault_disk_full(rig)  # opens the gate: records, then the disk fills
    assert record.ok, record.message
    assert rig.small_recorder.error is not None
    if how == "tmpfs":
        assert "No space left on device" in str(rig.small_recorder.error)
    assert playable_frames(rig.small_recorder.path) > 10
    assert rig.recorder.error is None and rig.pipeline.error is None  # the other goes on


def test_settings_read_only_warns_and_the_session_goes_on(rig_factory: Any) -> None:
    rig = rig_factory()
    record = fault_settings_read_only(rig)
    assert record.ok, record.message
    assert "warning shown" in record.message and "could not save settings" in record.message
    assert os.access(rig.settings_store.path, os.W_OK)  # writable again
    assert rig.settings_store.load().settings.detect_every == rig.pipeline.settings.detect_every


def test_virtual_camera_consumer_gone_and_back(rig_factory: Any) -> None:
    rig = rig_factory()
    record = fault_vcam_consumer_gone(rig)
    assert record.ok, record.message
    assert "consumer gone" in record.message and "reopening" in record.message
    assert rig.vcam.problem is None and rig.vcam.error is None  # sending again
    assert rig.pipeline.error is None


def test_bad_frames_from_the_source_do_not_end_the_session(rig_factory: Any) -> None:
    rig = rig_factory()
    record = fault_bad_frame(rig)
    assert record.ok, record.message
    assert rig.source.bad_delivered == ["size", "grey", "dtype"]
    assert rig.pipeline.error is None


def test_sigterm_while_recording_leaves_a_file_that_plays(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clip = write_clip(tmp_path / "clip.mp4")
    out = tmp_path / "live.mkv"
    main = Path(__file__).resolve().parents[3] / "main.py"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # the child inherits it
    command = [sys.executable, str(main), "live", "--no-window", "--camera", str(clip),
               "--model", "passthrough", "--record", str(out), "--seconds", "120"]
    result = sigterm_while_recording(command, out, record_s=3.0)
    assert result.ok, result.message
    assert playable_frames(out) >= 3 * 10  # about the seconds recorded, at the clip's rate
    assert result.seconds is not None and result.seconds < 20  # it ended, not killed
    # a graceful stop, as Ctrl-C: the pipeline stopped and the recorder closed (exit 0, not
    # -15 from the signal's default action), and the session said so
    assert result.exit_code == 0, result.message
    assert "stopping (SIGTERM)" in out.with_suffix(".log").read_text(errors="replace")
