"""The documentation stays true: links and pictures resolve, the commands page is what the
parsers say, every problem ``doctor`` and ``devices`` can print has its troubleshooting entry,
and the Sphinx configuration turns a broken cross-reference into a failed build.

Each check is shown failing once on a deliberately broken copy. The whole site is built by
``.ci/run`` (``python -m sphinx -W …``), not here: these tests stay fast.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"docs_{name}", DOCS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


check_docs = _load("check_docs")
gen_commands = _load("gen_commands")


# -- links -------------------------------------------------------------------------------

def test_every_link_anchor_and_picture_resolves() -> None:
    assert check_docs.link_problems(check_docs.pages()) == []


def test_a_broken_link_anchor_or_picture_is_found(tmp_path: Path) -> None:
    (tmp_path / "screenshot.png").write_bytes(b"png")
    (tmp_path / "b.md").write_text("# B page\n\n## The `live` command\n\ntext\n")
    page = tmp_path / "a.md"
    page.write_text("# A\n\n## Here\n\n"
                    "[ok](b.md#the-live-command) [ok](#here) ![ok](screenshot.png) "
                    "[web](https://example.com/x#y) `[code](nowhere.md)`\n\n"
                    "[gone](missing.md) [anchor](b.md#the-swap-command) [self](#there) "
                    "![picture](shot.png)\n\n```text\n[fenced](nowhere.md)\n```\n")
    problems = check_docs.link_problems([page])
    assert len(problems) == 4, problems
    assert "missing.md" in problems[0] and "no such file" in problems[0]
    assert "#the-swap-command" in problems[1] and "#there" in problems[2]
    assert "shot.png" in problems[3]


def test_anchors_are_githubs_and_mysts() -> None:
    text = "# Title\n## Paste-back overhead vs insightface\n## GFPGAN 1.4\n## Title\n(label)=\n"
    assert check_docs.anchors(text) == {"title", "paste-back-overhead-vs-insightface",
                                        "gfpgan-14", "title-1", "label"}


# -- the commands page -------------------------------------------------------------------

def test_the_commands_page_is_what_the_parsers_say() -> None:
    assert check_docs.commands_problem(DOCS / "commands.md") is None


def test_a_stale_commands_page_is_found(tmp_path: Path) -> None:
    stale = tmp_path / "commands.md"
    text = (DOCS / "commands.md").read_text(encoding="utf-8")
    stale.write_text(text.replace("`--virtual-cam`", "`--virtual-camera`"), encoding="utf-8")
    assert "stale" in str(check_docs.commands_problem(stale))
    assert gen_commands.main(["--check", "--output", str(stale)]) == 1


def test_the_commands_page_holds_every_command_and_flag() -> None:
    import main

    page = gen_commands.render()

    def walk(parser: argparse.ArgumentParser, title: str) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    heading = f"`{title} {name}`".replace("` ", "`")
                    assert re.search(rf"^#+ {re.escape(heading)}$", page, re.MULTILINE), name
                    walk(child, f"{title} {name}")
            for flag in action.option_strings:
                assert flag in page, (title, flag)

    walk(main.build_parser(), "")
    assert str(Path.home()) not in page  # the same page on every machine


# -- troubleshooting -----------------------------------------------------------------------

def _troubleshooting() -> str:
    return (DOCS / "troubleshooting.md").read_text(encoding="utf-8")


def test_every_doctor_and_devices_message_has_its_entry() -> None:
    assert check_docs.entry_problems(_troubleshooting(), check_docs.message_tables()) == []


def test_a_message_without_its_entry_is_found() -> None:
    tables = check_docs.message_tables()
    page = _troubleshooting()
    added = {**tables, "doctor": {**tables["doctor"], "new-problem": "something new ({x})"}}
    assert check_docs.entry_problems(page, added) == [
        "no troubleshooting entry (doctor-new-problem)= for 'something new ({x})'"]
    reworded = {**tables, "devices": {**tables["devices"],
                                      "loopback-not-loaded": "v4l2loopback is not loaded"}}
    assert "does not quote" in check_docs.entry_problems(page, reworded)[0]
    removed = {**tables, "doctor": {k: v for k, v in tables["doctor"].items()
                                    if k != "gpu-none-found"}}
    assert check_docs.entry_problems(page, removed) == [
        "the entry (doctor-gpu-none-found)= names no doctor message (removed or renamed?)"]


def _pattern(template: str) -> re.Pattern[str]:
    """A message template as a regular expression (each field: any text)."""
    parts = re.split(r"\{[a-z_]+(?:![rs])?\}", template)
    return re.compile(".+?".join(re.escape(p) for p in parts), re.DOTALL)


def _from_table(text: str, table: dict[str, str], *, whole: bool) -> bool:
    patterns = [_pattern(t) for t in table.values()]
    return any((p.fullmatch(text) if whole else p.match(text)) for p in patterns)


def test_what_doctor_prints_here_comes_from_its_table(tmp_path: Path) -> None:
    """The real report on this machine (no GPU, no TensorRT, models missing): every problem
    line starts with a message of the table (a runtime's fix may follow it)."""
    from engines import doctor
    from engines.doctor_messages import DOCTOR_MESSAGES

    report = doctor.collect(tmp_path / "models")
    system = dict(report["System"])
    checked = [system["torch"]]  # CPU-only, or CUDA with what is absent
    # the GPU and TensorRT lines name a problem only where there is no GPU or TensorRT
    if system["GPU / driver"].startswith(("none", "unknown")):
        checked.append(system["GPU / driver"])
    if not system["TensorRT"].startswith("TensorRT 1"):
        checked.append(system["TensorRT"])
    engines = next(rows for title, rows in report.items() if title.startswith("Engines"))
    for _name, value in engines:
        if value != "usable":
            checked += [value, value.removeprefix("unusable: ")]
    assert len(checked) >= 3
    for line in checked:
        assert _from_table(line, DOCTOR_MESSAGES, whole=False), line
    models = next(rows for title, rows in report.items() if title.startswith("Models in"))
    assert models and all(_from_table(v, DOCTOR_MESSAGES, whole=True) for _, v in models)


@pytest.mark.parametrize("platform", ["linux", "win32", "darwin", "freebsd14"])
def test_what_devices_prints_comes_from_its_table(platform: str) -> None:
    """``devices`` on this machine as each OS (their OS calls absent here): every note and
    every unusable virtual camera's reason is a message of the table."""
    from realtime.cli.devices import render
    from realtime.io import devices
    from realtime.io.device_messages import DEVICE_MESSAGES

    data = devices.as_json(devices.list_cameras(platform), devices.virtual_cameras(platform))
    reasons = [b["reason"] for b in data["virtual_camera"]["backends"] if not b["usable"]]
    for line in [*data["notes"], *reasons]:
        assert _from_table(line, {k: v for k, v in DEVICE_MESSAGES.items()
                                  if k != "backend-failed"}, whole=True), line
    text = render(data)
    if not data["cameras"]:
        assert f"  {DEVICE_MESSAGES['no-cameras']}" in text.splitlines()
    if not data["virtual_camera"]["backends"]:
        assert f"  {DEVICE_MESSAGES['no-virtual-backend']}" in text.splitlines()


# -- models ------------------------------------------------------------------------------

def test_the_models_page_names_every_model_and_each_of_its_urls() -> None:
    """Who publishes each model and where it comes from: the page says what the model table
    downloads, in the order it tries the URLs."""
    from engines.models import MODELS

    page = (DOCS / "models.md").read_text(encoding="utf-8")
    for name, info in MODELS.items():
        row = next((line for line in page.splitlines() if line.startswith(f"| `{name}` |")),
                   None)
        assert row is not None, name
        where = [row.find(url) for url in info.urls]
        assert -1 not in where and where == sorted(where), (name, info.urls)
        pinned = all(f.sha256 for f in info.files)
        assert ("pinned" if pinned else "recorded at first download") in row, name


# -- the window's hotkeys ---------------------------------------------------------------

def test_the_hotkeys_page_lists_the_windows_hotkeys() -> None:
    """docs/using.md's table holds every row of the window's own help (hotkeys.py)."""
    from realtime.ui.hotkeys import help_rows

    page = (DOCS / "using.md").read_text(encoding="utf-8")
    table = page.split("## Hotkeys", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    expected = [f"| {' or '.join(f'`{k}`' for k in keys.split(' or '))} | {what} |"
                for keys, what in help_rows()]
    assert rows == expected


# -- bench/ ---------------------------------------------------------------------------------

def test_every_bench_script_makes_a_figure_a_page_cites() -> None:
    assert check_docs.bench_problems(ROOT / "bench", DOCS) == []


def test_a_bench_script_no_page_cites_is_found(tmp_path: Path) -> None:
    bench, docs = tmp_path / "bench", tmp_path / "docs"
    bench.mkdir()
    docs.mkdir()
    (docs / "performance.md").write_text("# Performance\n\n## Speed\n\n`python -m bench.fast`\n")
    (bench / "fast.py").write_text('"""Cited by docs/performance.md, "Speed".\n\nFast."""\n')
    assert check_docs.bench_problems(bench, docs) == []
    (bench / "one_off.py").write_text('"""An experiment."""\n')
    (bench / "moved.py").write_text('"""Cited by docs/performance.md, "Gone".\n"""\n')
    (bench / "other.py").write_text('"""Cited by docs/tuning.md, "Speed".\n"""\n')
    problems = check_docs.bench_problems(bench, docs)
    assert [p.split(":", 1)[0] for p in problems] == [
        "bench/moved.py", "bench/moved.py", "bench/one_off.py", "bench/other.py"]
    assert "no section 'Gone'" in problems[0] and "never names it" in problems[1]
    assert "no page docs/tuning.md" in problems[3]


# -- the Sphinx configuration ------------------------------------------------------------

def _build(source: Path, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b",
                           "html", str(source), str(out)], capture_output=True, text=True,
                          timeout=300)


@pytest.mark.skipif(importlib.util.find_spec("myst_parser") is None,
                    reason="the docs extra is not installed (pip install -e '.[docs]')")
def test_the_site_configuration_fails_a_broken_cross_reference(tmp_path: Path) -> None:
    """docs/conf.py with -W: a link to a heading that does not exist fails the build; the
    same pages with the link mended build, and a page added to docs/ joins the site."""
    source = tmp_path / "docs"
    source.mkdir()
    shutil.copy(DOCS / "conf.py", source)
    (source / "index.md").write_text(
        "# Site\n\n```{toctree}\n:glob:\n\nguide\n*\n```\n")
    (source / "guide.md").write_text("# Guide\n\nSee [the fix](extra.md#the-fix).\n")
    (source / "extra.md").write_text("# Extra\n\n## The fox\n\ntext\n")
    broken = _build(source, tmp_path / "broken")
    assert broken.returncode != 0
    assert "the-fix" in broken.stderr
    (source / "extra.md").write_text("# Extra\n\n## The fix\n\ntext\n")
    mended = _build(source, tmp_path / "mended")
    assert mended.returncode == 0, mended.stderr
    assert "extra.html" in (tmp_path / "mended" / "index.html").read_text(encoding="utf-8")
