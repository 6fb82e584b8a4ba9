"""CI: every command the README names works after the README's install command.

Makes a fresh virtual environment with the README's "install and run the app" command
(verbatim but for the environment's folder, and without its last step, which opens the
window), then runs ``main.py --help``, the ``--help`` of each subcommand the README's
command table names and of every other one ``main.py --help`` lists (the README shows only
the most used; docs/commands.md has them all), and of each nested subcommand found in the
help text, and ``main.py bench --seconds 1``. The dev extras
are not installed, so a command that needs them (matplotlib, scikit-image, pytest) fails
here. Exit status: 0 when everything ran, 1 otherwise.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
INSTALL = re.compile(r"^python3 -m venv \.venv && \.venv/bin/pip install (?!.*\[dev\]).*$",
                     re.MULTILINE)
WINDOW_STEP = " && .venv/bin/python main.py"


def install_command(readme: str, venv: Path) -> str:
    """The README's install line with ``.venv`` replaced by ``venv`` and the window
    step removed."""
    found = INSTALL.search(readme)
    if found is None:
        raise SystemExit("CI: the README has no 'python3 -m venv .venv && .venv/bin/pip "
                         "install …' line without [dev]")
    line = found.group(0)
    if line.endswith(WINDOW_STEP):
        line = line[: -len(WINDOW_STEP)]
    return line.replace(".venv", str(venv))


def readme_subcommands(readme: str) -> list[str]:
    """The names in the table of the README's "Commands" section (rows like
    ``| `live` | …``)."""
    section = readme.split("\n## Commands", 1)[-1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([a-z][a-z-]*)` \|", section, re.MULTILINE)


def nested(help_text: str) -> list[str]:
    """Sub-subcommands: the names argparse lists, indented, under the metavar of
    "positional arguments" (``models``: list, download, import, verify)."""
    block = help_text.split("positional arguments:", 1)
    if len(block) < 2:
        return []
    lines = block[1].split("\n\n", 1)[0].splitlines()[1:]  # after the metavar line
    return [m.group(1) for line in lines if (m := re.match(r"^    ([a-z][a-z-]*)\b", line))]


def run(python: Path, *argv: str, env: dict[str, str],
        timeout: float = 600) -> tuple[int, str]:
    start = time.monotonic()
    done = subprocess.run([str(python), "main.py", *argv], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, env=env)
    took = time.monotonic() - start
    status = "ok" if done.returncode == 0 else f"FAILED (exit {done.returncode})"
    print(f"  main.py {' '.join(argv)}: {status} in {took:.1f} s", flush=True)
    return done.returncode, done.stdout + done.stderr


def main() -> int:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    folder = Path(tempfile.mkdtemp(prefix="swapcam-readme-venv-"))
    venv = folder / ".venv"
    try:
        command = install_command(readme, venv)
        print(f"CI: the README's install command: {command}", flush=True)
        start = time.monotonic()
        installed = subprocess.run(["bash", "-c", command], cwd=ROOT)
        if installed.returncode != 0:
            print("CI: the README's install command failed", file=sys.stderr)
            return 1
        print(f"CI: installed in {time.monotonic() - start:.0f} s", flush=True)
        python = venv / "bin" / "python"
        # the user's folders (models, settings, caches) of this run only
        env = {**os.environ, **{f"XDG_{kind}_HOME": str(folder / kind.lower())
                                for kind in ("DATA", "CONFIG", "CACHE")}}
        env.pop("SWAPCAM_MODELS_DIR", None)
        env.pop("SWAPCAM_CACHE_DIR", None)
        failures: list[str] = []
        calls: list[list[str]] = []
        code, text = run(python, "--help", env=env)
        if code != 0:
            failures.append(f"--help:\n{text}")
        listed = nested(text)
        names = readme_subcommands(readme)
        names += [name for name in listed if name not in names]
        for name in names:
            code, text = run(python, name, "--help", env=env)
            if code != 0:
                failures.append(f"{name} --help:\n{text}")
                continue
            calls += [[name, sub, "--help"] for sub in nested(text)]
        calls.append(["bench", "--seconds", "1"])
        for argv in calls:
            code, text = run(python, *argv, env=env)
            if code != 0:
                failures.append(f"{' '.join(argv)}:\n{text[-4000:]}")
        for failure in failures:
            print(f"CI: main.py {failure}", file=sys.stderr)
        return 1 if failures else 0
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
