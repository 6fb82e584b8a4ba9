"""``swapcam models ...`` through main.py's dispatcher, against a local server."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

import main
from engines import models
from tests.engines import FileServer, tiny_onnx_bytes

# Stand-in bytes: the load check is replaced by a recorder (see tests/conftest.py).
pytestmark = pytest.mark.usefixtures("unchecked_model_loads")

INSWAPPER = tiny_onnx_bytes(3.0)


def swapcam(models_dir: Path, *argv: str) -> int:
    return main.main(["--models-dir", str(models_dir), "models", *argv])


def test_help_works(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["models", "--help"], ["models", "download", "--help"],
                 ["models", "import", "--help"]):
        with pytest.raises(SystemExit) as info:
            main.main(argv)
        assert info.value.code == 0
    out = capsys.readouterr().out
    assert "--accept-licence" in out and "--as NAME" in out


def test_list_shows_status_size_and_licence(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "inswapper_128.onnx"
    src.write_bytes(INSWAPPER)
    models.import_model(src, tmp_path / "m")
    assert swapcam(tmp_path / "m", "list") == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {line.split()[0]: line for line in lines[2:]}
    assert set(rows) == set(models.MODELS)
    assert "verified" in rows["inswapper-128"]
    assert "missing" in rows["simswap-224"] and "CC BY-NC 4.0" in rows["simswap-224"]
    assert "~220 MB" in rows["arcface-simswap"]


def test_download_needs_the_licence_accepted(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # not a TTY: no prompt possible
    with FileServer({"/inswapper_128.onnx": INSWAPPER}) as server:
        code = swapcam(tmp_path, "download", "inswapper-128", "--base-url", server.base_url)
        assert server.seen == []
    assert code == 1
    captured = capsys.readouterr()
    assert "non-commercial" in captured.out  # the licence was shown
    assert "licence not accepted" in captured.err


def test_interactive_prompt_accepts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stdin", Tty("y\n"))
    with FileServer({"/inswapper_128.onnx": INSWAPPER}) as server:
        assert swapcam(tmp_path, "download", "inswapper-128", "--base-url",
                       server.base_url) == 0
    assert models.model_status(tmp_path, "inswapper-128") == "verified"
    monkeypatch.setattr("sys.stdin", Tty("n\n"))
    assert swapcam(tmp_path, "download", "scrfd-10g", "--base-url", "https://x.invalid") == 1


def test_download_import_verify(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    models_dir = tmp_path / "m"
    with FileServer({"/inswapper_128.onnx": INSWAPPER}) as server:
        assert swapcam(models_dir, "download", "inswapper-128", "--accept-licence",
                       "--base-url", server.base_url) == 0
    assert "inswapper-128: verified" in capsys.readouterr().out
    det = tmp_path / "my_detector.onnx"
    det.write_bytes(tiny_onnx_bytes(1.0))
    assert swapcam(models_dir, "import", str(det), "--as", "scrfd-10g") == 0
    assert "scrfd-10g: imported" in capsys.readouterr().out
    assert swapcam(models_dir, "verify") == 0
    out = capsys.readouterr().out
    assert "inswapper-128: verified" in out and "scrfd-10g: verified" in out
    models.model_path(models_dir, "scrfd-10g").write_bytes(tiny_onnx_bytes(7.0))
    assert swapcam(models_dir, "verify", "scrfd-10g") == 1
    assert "CORRUPT" in capsys.readouterr().out
    assert swapcam(models_dir, "verify", "simswap-224") == 1
    assert swapcam(models_dir, "verify", "nonsense") == 1
    assert "unknown model" in capsys.readouterr().err


def test_import_unrecognised_file_is_an_error(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    odd = tmp_path / "weights.bin"
    odd.write_bytes(b"\x80data")
    assert swapcam(tmp_path / "m", "import", str(odd)) == 1
    assert "--as NAME" in capsys.readouterr().err
