"""``swapcam doctor`` on this machine and with faked pieces."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engines import doctor

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> subprocess.CompletedProcess[str]:
    models = tmp_path_factory.mktemp("models")
    return subprocess.run([sys.executable, "main.py", "--models-dir", str(models), "doctor"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_doctor_exits_zero_and_reports_each_section(
        report: subprocess.CompletedProcess[str]) -> None:
    assert report.returncode == 0, report.stderr
    out = report.stdout
    for label in ("OS", "Python", "CPU", "GPU / driver", "torch", "TensorRT", "ONNX Runtime"):
        assert f"  {label} " in out, label
    import onnxruntime
    import torch

    assert torch.__version__ in out and onnxruntime.__version__ in out
    assert "CPUExecutionProvider" in out
    for name in ("simswap-224", "inswapper-128", "scrfd-10g"):
        assert f"  {name} " in out and "missing" in out


def test_doctor_names_every_backend_with_reason_and_fix(
        report: subprocess.CompletedProcess[str]) -> None:
    from engines.registry import backend_status

    lines = {line.split()[0]: line for line in report.stdout.splitlines()
             if line.startswith("  ") and line.split()[0] in doctor.BACKENDS}
    assert set(lines) == set(doctor.BACKENDS)
    for name, reason in backend_status().items():
        if reason is None:
            assert lines[name].rstrip().endswith("usable") and "unusable" not in lines[name]
        else:
            assert "unusable:" in lines[name]
            assert doctor.HINTS[name] in lines[name], lines[name]
    if backend_status()["tensorrt"] is not None:  # this machine: no TensorRT, no GPU
        assert "pip install --extra-index-url https://pypi.nvidia.com tensorrt-cu12" in \
            lines["tensorrt"]
        assert "pip uninstall onnxruntime && pip install onnxruntime-gpu" in \
            lines["onnxruntime-cuda"]


def test_json_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = argparse.Namespace(models_dir=tmp_path, verbose=False, json=True)
    assert doctor.run(args) == 0
    data = json.loads(capsys.readouterr().out)
    system = next(v for k, v in data.items() if k == "System")
    assert system["Python"].startswith(sys.version.split()[0])
    engines = next(v for k, v in data.items() if k.startswith("Engines"))
    assert set(engines) == set(doctor.BACKENDS)


def test_gpu_line_from_nvidia_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\necho 'NVIDIA GeForce RTX 4090, 550.54.14, 24564 MiB'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(doctor, "_gpu_cuda_python", lambda: None)
    assert doctor._gpu() == "NVIDIA GeForce RTX 4090, 550.54.14, 24564 MiB (via nvidia-smi)"
    fake.write_text("#!/bin/sh\necho 'NVIDIA-SMI has failed' >&2\nexit 9\n")
    assert "nvidia-smi failed" in doctor._gpu()


def test_failing_probes_become_lines_not_crashes(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    def boom() -> dict[str, str | None]:
        raise RuntimeError("registry exploded")

    monkeypatch.setattr(doctor, "backend_status", boom)
    monkeypatch.setattr(doctor, "_torch", lambda: 1 / 0)
    sections = doctor.collect(tmp_path)
    rows = {label: value for rows in sections.values() for label, value in rows}
    assert rows["torch"].startswith("unknown (ZeroDivisionError")
    assert all("registry exploded" in rows[name] for name in doctor.BACKENDS)
    assert "tensorrt" in doctor.format_report(sections)


def test_hint_added_when_the_reason_lacks_it() -> None:
    assert doctor._with_hint("tensorrt", "no GPU").endswith(
        "(fix: pip install --extra-index-url https://pypi.nvidia.com tensorrt-cu12)")
    already = f"missing ({doctor.HINTS['onnxruntime-cuda']})"
    assert doctor._with_hint("onnxruntime-cuda", already) == already


def test_local_status_matches_the_registry_here() -> None:
    from engines.registry import backend_status

    local = doctor._local_backend_status()
    assert set(local) == set(backend_status())
    assert {k: v is None for k, v in local.items()} == \
        {k: v is None for k, v in backend_status().items()}


def test_doctor_says_why_tensorrt_is_unusable_on_a_gpu_machine(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A GPU that torch sees, TensorRT installed, but TensorRT cannot initialise CUDA
    (driver too old for it): doctor names the failure instead of calling TensorRT usable."""
    import torch

    from tests import fake_tensorrt as fake

    monkeypatch.setitem(sys.modules, "tensorrt",
                        fake.fake_tensorrt(rec=fake.Recorder(init_fails=True)))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    sections = doctor.collect(tmp_path)
    system = dict(sections["System"])
    assert "could not initialise CUDA" in system["TensorRT"] and "nullptr" in system["TensorRT"]
    engines = dict(next(rows for title, rows in sections.items() if title.startswith("Engines")))
    assert engines["tensorrt"].startswith("unusable:")
    assert "could not initialise CUDA" in engines["tensorrt"] and "driver" in engines["tensorrt"]


def test_doctor_estimates_each_installed_engines_device_memory(tmp_path: Path) -> None:
    """Issue 25: the weights (halved for FP16) and the I/O at the model's batch profile's
    max (the swapper: 8 faces a launch), per engine, before any build."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    folder = tmp_path / "inswapper-128"
    folder.mkdir()
    weight = numpy_helper.from_array(np.zeros((1024, 1024), np.float32), "w")  # 4 MiB
    graph = helper.make_graph(
        [helper.make_node("Identity", ["target"], ["output"])], "g",
        [helper.make_tensor_value_info("target", TensorProto.FLOAT, ["N", 3, 128, 128]),
         helper.make_tensor_value_info("source", TensorProto.FLOAT, ["N", 512])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 3, 128, 128])],
        [weight])
    onnx.save(helper.make_model(graph), str(folder / "inswapper_128.onnx"))
    sections = doctor.collect(tmp_path)
    rows = dict(next(v for k, v in sections.items() if k.startswith("Device memory")))
    row_bytes = (2 * 3 * 128 * 128 + 512) * 4
    assert rows["inswapper-128"].startswith(
        f"≈ 2 MB weights (fp16) + {round(row_bytes * 8 / 2**20)} MB I/O per thread at batch 8")


def test_max_batch_follows_the_memory_per_row() -> None:
    from engines.tensorrt import MAX_BATCH, max_batch_for

    assert max_batch_for(Path("m/inswapper-128/inswapper_128.onnx")) == 8
    assert max_batch_for(Path("m/face-parsing/79999_iter.onnx")) == 4
    assert max_batch_for(Path("m/gfpgan-1.4/GFPGANv1.4.onnx")) == 2
    assert max_batch_for(Path("m/scrfd-10g/det_10g.onnx")) == 1
    assert max_batch_for(Path("elsewhere/unknown.onnx")) == MAX_BATCH
