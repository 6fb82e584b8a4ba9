"""The command line: every subcommand answers --help quickly, in a fresh process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import main

ROOT = Path(__file__).resolve().parents[1]
SUBCOMMANDS = [["live"], ["swap"], ["models"], ["export"], ["export", "onnx"],
               ["export", "tensorrt"], ["bench"], ["doctor"]]


def test_top_level_help_lists_every_subcommand() -> None:
    result = subprocess.run([sys.executable, "main.py", "--help"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    for name in main.COMMANDS:
        assert name in result.stdout


@pytest.mark.parametrize("words", SUBCOMMANDS, ids=lambda w: " ".join(w))
def test_subcommand_help(words: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main.main([*words, "--help"])
    assert exit_info.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_models_dir_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from realtime.config import default_models_dir

    monkeypatch.setenv("SWAPCAM_MODELS_DIR", str(tmp_path))
    assert default_models_dir() == tmp_path


@pytest.mark.parametrize("order", ["before", "after"])
def test_models_dir_is_accepted_before_or_after_the_subcommand(
        order: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    words = ["models", "list"]
    argv = (["--models-dir", str(tmp_path), *words] if order == "before"
            else [*words, "--models-dir", str(tmp_path)])
    assert main.main(argv) == 0
    assert str(tmp_path) in capsys.readouterr().out  # `models list` names its folder


def test_unknown_arguments_are_still_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main.main(["models", "list", "--no-such-option"])
    assert exit_info.value.code == 2
    assert "--no-such-option" in capsys.readouterr().err
