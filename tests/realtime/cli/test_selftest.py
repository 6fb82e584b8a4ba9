"""``main.py selftest`` run for real on the CPU engines: the JSON's exact shape, a mismatched
engine flagged, and host waits counted per thread (with the CUDA double)."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import main
from realtime.cli.host_waits import HostWaits
from realtime.cli.selftest_models import MIN_PSNR_DB, compare, mismatch
from tests import fake_cuda

ENGINE_KEYS = {"name", "usable", "reason", "models"}
MODEL_KEYS = {"model", "batch", "max_abs", "psnr_db", "ms_p50", "ms_p95"}
PIPELINE_KEYS = {"engine", "swap_mode", "fps_in", "fps_out", "drops", "latency_p95_ms",
                 "host_waits_per_frame", "device_peak_mb"}


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def _run(tmp_path: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    out = tmp_path / "selftest.json"
    code = main.main(["--models-dir", str(tmp_path / "models"), "selftest",
                      "--model", "inswapper-128", "--repeats", "2", "--json", str(out), *extra])
    return code, json.loads(out.read_text())


def test_selftest_runs_on_the_cpu_and_writes_the_documented_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    code, report = _run(tmp_path, "--engine", "onnxruntime-cpu", "--engine", "tensorrt",
                        "--roles", "generator,encoder,detector", "--seconds", "1.5",
                        "--warmup", "1")
    text = capsys.readouterr().out
    assert code == 0, text
    assert set(report) == {"engines", "pipeline", "machine"}
    cpu, trt = report["engines"]
    assert set(cpu) == ENGINE_KEYS and set(trt) == ENGINE_KEYS
    assert trt["usable"] is False and "TensorRT" in trt["reason"] and trt["models"] == []
    assert cpu["usable"] is True and cpu["reason"] is None
    rows = cpu["models"]
    assert all(set(r) == MODEL_KEYS for r in rows)
    # the look-alike inswapper and w600k take a fixed batch of 1; RetinaFace both batches
    assert [(r["model"], r["batch"]) for r in rows] == [
        ("inswapper-128", 1), ("arcface-w600k", 1), ("retinaface", 1), ("retinaface", 4)]
    for r in rows:  # the reference itself: identical outputs
        assert r["max_abs"] == 0.0 and r["psnr_db"] is None
        assert 0 < r["ms_p50"] <= r["ms_p95"]
    assert [p["swap_mode"] for p in report["pipeline"]] == ["sync", "async"]
    for p in report["pipeline"]:
        assert set(p) == PIPELINE_KEYS and p["engine"] == "onnxruntime-cpu"
        assert p["fps_in"] > 10 and p["fps_out"] > 0 and p["latency_p95_ms"] > 0
        assert isinstance(p["drops"], dict)
        assert p["device_peak_mb"] is None  # no CUDA here
        assert set(p["host_waits_per_frame"]) >= {"process", "swap", "detect"}
        assert all(v == 0 for v in p["host_waits_per_frame"].values())
    assert report["machine"]["gpu"] is None and report["machine"]["cpus"] >= 1
    assert report["machine"]["models"]["random_weights"] is True
    assert "tensorrt" in text and "not usable" in text and "MISMATCH" not in text


class Skewed:
    """An engine double for a backend under test: ONNX Runtime's outputs, visibly off."""

    def __init__(self, inner: Any, backend: str) -> None:
        self.inner = inner
        self.backend = backend
        self.inputs = inner.inputs
        self.outputs = inner.outputs

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = self.inner.run(feeds)
        return {k: np.asarray(v) * 1.3 + 0.05 for k, v in out.items()}

    def close(self) -> None:
        self.inner.close()


def test_a_mismatched_engine_output_is_flagged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    import engines.registry as registry

    real_open = registry.open_engine
    real_status = registry.backend_status

    def open_engine(path: Path, preference: str = "auto", **kwargs: Any) -> Any:
        if preference == "openvino":
            return Skewed(real_open(path, "onnxruntime-cpu"), "openvino")
        return real_open(path, preference, **kwargs)

    monkeypatch.setattr(registry, "open_engine", open_engine)
    monkeypatch.setattr(registry, "backend_status", lambda: {**real_status(), "openvino": None})
    code, report = _run(tmp_path, "--engine", "onnxruntime-cpu", "--engine", "openvino",
                        "--roles", "generator,encoder", "--seconds", "0")
    text = capsys.readouterr().out
    assert code == 1, text
    cpu, skewed = report["engines"]
    assert not any(mismatch(r) for r in cpu["models"])
    assert skewed["models"] and all(mismatch(r) for r in skewed["models"])
    assert all(r["psnr_db"] < MIN_PSNR_DB and r["max_abs"] > 0.05 for r in skewed["models"])
    assert text.count("MISMATCH") == len(skewed["models"]) and report["pipeline"] == []


def test_compare_flags_nan_and_names_identical_outputs() -> None:
    ref = {"out": np.linspace(0, 1, 100, dtype=np.float32)}
    assert compare(ref, ref) == (0.0, None)
    bad = {"out": ref["out"].copy()}
    bad["out"][3] = np.nan
    assert compare(ref, bad) == (None, None)
    assert mismatch({"max_abs": None, "psnr_db": None})
    close = {"out": ref["out"] + np.float32(1e-4)}
    max_abs, psnr = compare(ref, close)
    assert max_abs == pytest.approx(1e-4, rel=1e-2) and psnr == pytest.approx(80.0, abs=0.1)
    assert not mismatch({"max_abs": max_abs, "psnr_db": psnr})


def test_bad_roles_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main.main(["--models-dir", str(tmp_path), "selftest", "--roles", "generator,gpu"])
    assert code == 1 and "--roles: expected a comma-separated subset" in capsys.readouterr().err


def test_host_waits_are_counted_per_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_cuda.install(monkeypatch)

    def process() -> None:
        event = torch.cuda.Event()
        event.record()
        event.synchronize()
        torch.cuda.current_stream().synchronize()

    def swap() -> None:
        torch.cuda.synchronize()

    with HostWaits() as waits:
        for name, fn in (("swapcam-process", process), ("swapcam-swap", swap)):
            thread = threading.Thread(target=fn, name=name)
            thread.start()
            thread.join()
        torch.zeros(3).cpu()  # a host tensor: no wait
    assert dict(waits.counts) == {"process": 2, "swap": 1}
    assert waits.per_frame(("capture", "process", "swap"), 2) == {
        "capture": 0.0, "process": 1.0, "swap": 0.5}
    # uninstalled on exit: no more counting
    torch.cuda.synchronize()
    assert sum(waits.counts.values()) == 3


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(),
                    reason="needs a CUDA GPU (torch.cuda.is_available() is False)")
def test_a_device_engine_is_timed_with_cuda_events() -> None:
    from engines.base import TensorSpec
    from engines.torch import TorchEngine
    from realtime.cli.selftest_models import time_engine

    spec = (TensorSpec("x", ("N", 3, 64, 64), "float32"),)
    engine = TorchEngine(torch.nn.Conv2d(3, 3, 3, padding=1), spec, spec, device="cuda")
    times = time_engine(engine, {"x": np.zeros((4, 3, 64, 64), np.float32)}, 5)
    assert len(times) == 5 and all(0 < t < 1000 for t in times)
