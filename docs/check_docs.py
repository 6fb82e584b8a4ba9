"""Checks the documentation cannot leave to Sphinx, offline; exit 1 when one fails.

- Links: every relative link and picture in README.md and docs/*.md points at a file that
  exists, and every ``#anchor`` at a heading (GitHub's slugs, which MyST uses too) or a MyST
  target of that file. Web links are not fetched (the check runs offline).
- The commands page: docs/commands.md equals what docs/gen_commands.py makes now.
- Troubleshooting: every message in doctor's and devices' tables has its entry
  (``(doctor-<id>)=`` followed by the message's text in backticks), and no entry names a
  message the tables no longer have.
- Benchmarks: every script in bench/ says in its first line which page cites it
  (``Cited by docs/PAGE.md, "SECTION".``), that page has that section, and names the script.

    python docs/check_docs.py
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

_FENCE = re.compile(r"^(```|~~~).*?^\1[^\S\n]*$", re.MULTILINE | re.DOTALL)
_CODE_SPAN = re.compile(r"(`+)(?!`).+?(?<!`)\1(?!`)", re.DOTALL)
_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$", re.MULTILINE)
_TARGET = re.compile(r"^\(([^()\s]+)\)=\s*$", re.MULTILINE)
_SLUG_DROP = re.compile(r"[^\w\u4e00-\u9fff\- ]")
_EXTERNAL = ("http://", "https://", "mailto:")


def pages() -> list[Path]:
    """The README and every page of the site."""
    return [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]


def _without_code(text: str) -> str:
    text = _FENCE.sub("", text)
    return _CODE_SPAN.sub("", text)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading (MyST's ``github_slugify``), markup removed first."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text only
    return _SLUG_DROP.sub("", text.lower().replace(" ", "-"))


def anchors(text: str) -> set[str]:
    """The anchors a Markdown file offers: heading slugs (repeats get -1, -2, …) and MyST
    targets ``(name)=``."""
    text = _FENCE.sub("", text)
    found: set[str] = set()
    seen: dict[str, int] = {}
    for match in _HEADING.finditer(text):
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    found.update(_TARGET.findall(text))
    return found


def links(text: str) -> list[str]:
    """Every link and picture target outside code."""
    return _LINK.findall(_without_code(text))


def link_problems(files: Iterable[Path]) -> list[str]:
    """Broken relative links, anchors, files and pictures in ``files``."""
    problems: list[str] = []
    cache: dict[Path, set[str]] = {}

    def anchors_of(path: Path) -> set[str]:
        if path not in cache:
            cache[path] = anchors(path.read_text(encoding="utf-8"))
        return cache[path]

    for page in files:
        text = page.read_text(encoding="utf-8")
        for target in links(text):
            if target.startswith(_EXTERNAL):
                continue
            where, _, anchor = target.partition("#")
            path = (page.parent / where).resolve() if where else page
            if not path.exists():
                problems.append(f"{page.name}: {target}: no such file {path}")
                continue
            if anchor and path.suffix == ".md" and anchor not in anchors_of(path):
                problems.append(f"{page.name}: {target}: {path.name} has no heading or "
                                f"target #{anchor}")
    return problems


def entry_problems(page: str, tables: Mapping[str, Mapping[str, str]]) -> list[str]:
    """Messages of ``tables`` (prefix → id → text) without their entry on the
    troubleshooting ``page``, entries whose text differs, and entries for no message."""
    problems: list[str] = []
    starts = {m.group(1): m.end() for m in _TARGET.finditer(page)}
    for prefix, table in tables.items():
        for key, message in table.items():
            label = f"{prefix}-{key}"
            if label not in starts:
                problems.append(f"no troubleshooting entry ({label})= for {message!r}")
                continue
            start = starts[label]
            # the entry runs to the next target (or the page's end)
            later = [s for s in starts.values() if s > start]
            end = min(later) if later else len(page)
            if f"`{message}`" not in page[start:end]:
                problems.append(f"the entry ({label})= does not quote the message "
                                f"`{message}`")
        known = {f"{prefix}-{key}" for key in table}
        problems += [f"the entry ({label})= names no {prefix} message (removed or renamed?)"
                     for label in starts if label.startswith(f"{prefix}-") and label not in known]
    return problems


_CITED = re.compile(r'^"""Cited by docs/([\w.-]+\.md), "([^"]+)"\.$')


def bench_problems(bench: Path, docs: Path) -> list[str]:
    """Scripts in ``bench`` whose first line names no page of ``docs`` that cites them."""
    problems: list[str] = []
    for script in sorted(bench.glob("*.py")):
        if script.name == "__init__.py":
            continue
        first = script.read_text(encoding="utf-8").split("\n", 1)[0]
        cited = _CITED.match(first)
        if cited is None:
            problems.append(f"bench/{script.name}: its first line must say which page cites "
                            'it: """Cited by docs/PAGE.md, "SECTION".')
            continue
        page = docs / cited.group(1)
        if not page.is_file():
            problems.append(f"bench/{script.name}: no page docs/{cited.group(1)}")
            continue
        text = page.read_text(encoding="utf-8")
        if slug(cited.group(2)) not in anchors(text):
            problems.append(f"bench/{script.name}: docs/{page.name} has no section "
                            f"{cited.group(2)!r}")
        if f"bench/{script.name}" not in text and f"bench.{script.stem}" not in text:
            problems.append(f"bench/{script.name}: docs/{page.name} never names it")
    return problems


def message_tables() -> dict[str, dict[str, str]]:
    sys.path.insert(0, str(ROOT))
    from engines.doctor_messages import DOCTOR_MESSAGES
    from realtime.io.device_messages import DEVICE_MESSAGES

    return {"doctor": DOCTOR_MESSAGES, "devices": DEVICE_MESSAGES}


def commands_problem(page: Path) -> str | None:
    sys.path.insert(0, str(DOCS))
    import gen_commands

    current = page.read_text(encoding="utf-8") if page.exists() else ""
    if current != gen_commands.render():
        return f"{page.name} is stale: run python docs/gen_commands.py"
    return None


def main() -> int:
    problems = link_problems(pages())
    problems += entry_problems((DOCS / "troubleshooting.md").read_text(encoding="utf-8"),
                               message_tables())
    problems += bench_problems(ROOT / "bench", DOCS)
    stale = commands_problem(DOCS / "commands.md")
    problems += [stale] if stale else []
    for problem in problems:
        print(f"docs: {problem}", file=sys.stderr)
    if not problems:
        print("docs: links, the commands page, the troubleshooting entries and the bench "
              "citations are in order")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
