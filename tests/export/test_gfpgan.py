"""GFPGAN 1.4 (export/gfpgan.py): the official forward on golden numbers, strict and safe
loading, the model table, ONNX export checked against torch."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

import main
from engines.base import ModelFileError
from engines.fileio import sha256_file
from engines.models import MODELS, import_model, model_path
from export.gfpgan import (
    NUM_LATENT,
    NUM_NOISE,
    GFPGANv1Clean,
    load_gfpgan,
    noise_size,
)
from export.onnx import ExportReport
from export.simswap import CheckpointError
from tests.golden import make_gfpgan_golden as maker
from tests.golden import reference


@pytest.fixture(scope="module")
def net(gfpgan_checkpoint: Path) -> GFPGANv1Clean:
    return load_gfpgan(gfpgan_checkpoint)


def test_layout_is_the_official_one() -> None:
    model = GFPGANv1Clean()
    state = model.state_dict()
    assert sum(p.numel() for p in model.parameters()) == 86_444_252  # GFPGANv1.4.pth
    assert state["stylegan_decoder.noises.noise14"].shape == (1, 1, 512, 512)
    assert [noise_size(i) for i in range(NUM_NOISE)][:5] == [4, 8, 8, 16, 16]
    assert state["final_linear.weight"].shape == (NUM_LATENT * 512, 256 * 16)
    # sft_half: the SFT maps cover half of the decoder's channels at each level
    assert state["condition_scale.0.2.weight"].shape[0] == 256
    assert state["stylegan_decoder.style_convs.0.modulated_conv.weight"].shape == (
        1, 512, 512, 3, 3)
    assert "stylegan_decoder.style_mlp.15.weight" in state  # 8 MLP layers after the norm


@pytest.mark.slow
def test_matches_the_official_forward_on_golden_numbers(net: GFPGANv1Clean) -> None:
    """Golden numbers made once by TencentARC's own GFPGANv1Clean (make_gfpgan_golden.py)
    on these seeded weights and the astronaut photo, stored noise."""
    golden = np.load(reference.golden_path("gfpgan_v14"), allow_pickle=False)
    assert str(golden["weights_sha256"]) == reference.state_digest(net.state_dict())
    x = maker.golden_input()
    assert str(golden["input_sha256"]) == reference.sha256_array(x)
    with torch.inference_mode():
        out = net(torch.from_numpy(x), randomize_noise=False).numpy()
    got = maker.summarise(out)
    for key in ("grid", "patch", "channel_mean", "channel_std"):
        diff = float(np.abs(got[key] - golden[key]).max())
        assert diff < 2e-4, f"{key}: max abs diff {diff:.2e} against the official forward"


def _save(path: Path, obj: object) -> Path:
    torch.save(obj, path)
    return path


def test_bad_checkpoints_are_refused_before_anything_is_replaced(
    gfpgan_checkpoint: Path, tmp_path: Path,
) -> None:  # fmt: skip
    models = tmp_path / "models"
    # the official file name is enough (no --as)
    assert import_model(gfpgan_checkpoint, models) == ["gfpgan-1.4"]
    installed = model_path(models, "gfpgan-1.4")
    before = sha256_file(installed)
    state = torch.load(gfpgan_checkpoint, map_location="cpu", weights_only=True)["params_ema"]
    other = dict(state)
    other["final_conv.weight"] = torch.zeros(128, 256, 3, 3)
    del other["toRGB.6.bias"]

    class Exploit:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            import os

            return (os.system, ("echo owned > /dev/null",))

    truncated = tmp_path / "cut" / "GFPGANv1.4.pth"
    truncated.parent.mkdir()
    truncated.write_bytes(gfpgan_checkpoint.read_bytes()[: 4 << 20])
    malicious = tmp_path / "evil" / "GFPGANv1.4.pth"
    malicious.parent.mkdir()
    malicious.write_bytes(b"\x80\x02" + pickle.dumps({"params_ema": Exploit()}, protocol=2)[2:])
    cases = {
        "wrong shapes: final_conv.weight": _save(tmp_path / "shapes.pth", {"params_ema": other}),
        "params_ema": _save(tmp_path / "nokey.pth", {"weights": {}}),
        "not a readable torch state_dict": truncated,
        "weights_only": malicious,
    }
    for message, path in cases.items():
        with pytest.raises(CheckpointError, match=message):
            load_gfpgan(path)
        with pytest.raises(ModelFileError):
            import_model(path, models, "gfpgan-1.4")
        assert sha256_file(installed) == before, message
    assert "missing keys: toRGB.6.bias" in _error(tmp_path / "shapes.pth")
    assert zipfile.is_zipfile(installed)


def _error(path: Path) -> str:
    try:
        load_gfpgan(path)
    except CheckpointError as exc:
        return str(exc)
    raise AssertionError("accepted")


def test_the_model_table_names_the_official_release() -> None:
    info = MODELS["gfpgan-1.4"]
    assert info.urls == ("https://github.com/TencentARC/GFPGAN/releases/download/v1.3.0/"
                         "GFPGANv1.4.pth",)
    assert info.licence_name == "Apache-2.0" and "Apache License 2.0" in info.licence
    assert info.files[0].name == "GFPGANv1.4.pth" and info.files[0].sha256 is None
    assert info.kind == "enhancer"


@pytest.mark.slow
def test_export_onnx_matches_torch(gfpgan_export: ExportReport) -> None:
    """The export ``ensure_onnx`` makes (the same ``export_onnx`` the CLI runs)."""
    import onnx

    report = gfpgan_export
    assert report.model == "gfpgan-1.4" and report.max_abs_diff <= report.tolerance
    graph = onnx.load(str(report.output), load_external_data=False).graph
    assert [i.name for i in graph.input] == ["input"] and graph.output[0].name == "output"
    dims = graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param and [d.dim_value for d in dims[1:]] == [3, 512, 512]
    # no random op: the stored noise is a constant of the graph
    assert not any(n.op_type.startswith("Random") for n in graph.node)
    assert report.ops.get("Clip", 0) >= 1  # the output clamp to [-1, 1]


def test_export_cli_takes_the_model_and_refuses_a_bad_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    bad = tmp_path / "GFPGANv1.4.pth"
    bad.write_bytes(b"PK\x03\x04 truncated")
    rc = main.main(["export", "onnx", "--model", "gfpgan-1.4", "--weights", str(bad),
                    "--output", str(tmp_path / "g.onnx")])
    assert rc == 1 and "not a readable torch state_dict" in capsys.readouterr().err
    assert not (tmp_path / "g.onnx").exists()
