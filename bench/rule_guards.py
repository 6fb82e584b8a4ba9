"""Cited by docs/architecture.md, "Every rule has a guard".

Every rule has a guard: neutralise each validation rule in turn and run its tests.

Each ``Guard`` names one rule (a check in a validator, a settings rule, a derived-file
stamp check, an archive or download check), the exact source snippet that implements
it, a replacement that switches it off, and the test files that must go red without
it. The mutations run in a temporary copy of the repository (the working tree is never
edited), one at a time; a rule whose tests stay green *survived*: nothing guards it.

    python bench/rule_guards.py              # every rule (about 10 minutes on 2 cores)
    python bench/rule_guards.py --only stamp # the rules whose name holds "stamp"
    python bench/rule_guards.py --list       # the rules and their tests, nothing run

Exit status 1 when a rule survived (or a snippet no longer matches its file).
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

VALIDATE = "export/validate.py"
CONFIG = "realtime/config.py"
STORE = "realtime/settings_store.py"
DERIVED = "engines/derived.py"
ARCHIVE = "engines/archive.py"
MODELS = "engines/models.py"
DOWNLOAD = "engines/download.py"

T_VALIDATE = ("tests/export/test_validate.py",)
T_CONFIG = ("tests/realtime/test_config.py",)
T_STORE = ("tests/realtime/test_settings_store.py", "tests/realtime/test_config.py")
T_DERIVED = ("tests/engines/test_derived.py",)
T_ARCHIVE = ("tests/engines/test_archive.py",)
T_MODELS = ("tests/engines/test_models.py",)
T_DOWNLOAD = ("tests/engines/test_download.py",)
# the slow export files: only their tests of the derived-file stamps
T_ONNX_STAMP = tuple(f"tests/export/test_onnx.py::test_ensure_onnx_{name}" for name in (
    "keeps_the_export_when_the_same_checkpoint_is_reimported",
    "rebuilds_an_onnx_whose_bytes_changed", "reexports_for_another_checkpoint"))
T_TRT_STAMP = tuple(f"tests/export/test_tensorrt.py::test_{name}" for name in (
    "ensure_engine_caches_and_rebuilds_on_key_change", "a_changed_engine_file_is_rebuilt"))
T_ARC_STAMP = ("tests/export/test_arcface.py::test_the_plain_state_dict_is_used_once_written",
               "tests/export/test_arcface.py::test_a_cache_of_another_format_is_rebuilt")


@dataclass(frozen=True)
class Guard:
    name: str
    file: str
    old: str  # must occur exactly once in ``file``
    new: str
    tests: tuple[str, ...]


GUARDS: list[Guard] = [
    # -- export/validate.py: a candidate model loads the way it will be used --------------
    Guard("validate: every model has a validator", VALIDATE,
          '    "face-mesh": _face_mesh,\n', "", T_VALIDATE),
    Guard("validate: unknown model has no validator", VALIDATE,
          "        raise ModelFileError(f\"no validator for model {name!r}; add one to \"\n"
          "                             \"export/validate.py VALIDATORS\") from None",
          "        return", T_VALIDATE),
    Guard("validate: generator loads strictly", VALIDATE,
          "        load_generator(path, size)  # strict", "        pass  # strict", T_VALIDATE),
    Guard("validate: arcface restricted unpickler", VALIDATE,
          "load_state_dict_strict(ArcFaceResNet(), load_pickled_arcface(path), str(path))",
          "__import__('torch').load(path, map_location='cpu', weights_only=False)",
          T_VALIDATE),
    Guard("validate: arcface strict keys and shapes", VALIDATE,
          "load_state_dict_strict(ArcFaceResNet(), load_pickled_arcface(path), str(path))",
          "load_pickled_arcface(path)", T_VALIDATE),
    Guard("validate: face parser loads strictly", VALIDATE,
          "    load_parser(path)\n", "    pass\n", T_VALIDATE),
    Guard("validate: face mesh converts", VALIDATE,
          "        convert_tflite(path.read_bytes(), graph_name=path.stem)",
          "        pass", T_VALIDATE),
    Guard("validate: ONNX decodes", VALIDATE,
          "        except Exception as exc:  # onnx raises DecodeError and friends",
          "        except ImportError as exc:", T_VALIDATE),
    Guard("validate: ONNX input count", VALIDATE,
          "if len(got) != len(expected) or any(", "if any(", T_VALIDATE),
    Guard("validate: ONNX input rank", VALIDATE,
          "len(g) != len(e) or any(", "any(", T_VALIDATE),
    Guard("validate: ONNX input sizes", VALIDATE,
          "x is not None and y is not None and x != y", "False", T_VALIDATE),
    Guard("validate: ONNX Runtime opens it", VALIDATE,
          '            ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])',
          "            pass", T_VALIDATE),
    Guard("validate: loader errors become ModelFileError", VALIDATE,
          "    except (ValueError, RuntimeError, OSError, KeyError, TypeError) as exc:",
          "    except ZeroDivisionError as exc:", T_VALIDATE),
    # -- realtime/config.py: validate_setting (the kinds of rule) ----------------------------
    Guard("settings: unknown key refused", CONFIG,
          '        raise SettingError(key, "not a known setting")', "        return value",
          T_CONFIG),
    Guard("settings: flag is a bool", CONFIG,
          "    if isinstance(rule, Flag):\n        if not isinstance(value, bool):",
          "    if isinstance(rule, Flag):\n        if False:", T_CONFIG),
    Guard("settings: bool is not a number", CONFIG,
          "if isinstance(value, bool) or not isinstance(value, int | float):",
          "if not isinstance(value, int | float):", T_CONFIG),
    Guard("settings: number is a number", CONFIG,
          "if isinstance(value, bool) or not isinstance(value, int | float):",
          "if isinstance(value, bool):", T_CONFIG),
    Guard("settings: integer is an int", CONFIG,
          "if rule.integer and not isinstance(value, int):", "if False:", T_CONFIG),
    Guard("settings: number is finite", CONFIG,
          "if not math.isfinite(value):", "if False:", T_CONFIG),
    Guard("settings: low end", CONFIG,
          "below = value <= rule.low if rule.low_open else value < rule.low", "below = False",
          T_CONFIG),
    Guard("settings: high end", CONFIG,
          "above = value >= rule.high if rule.high_open else value > rule.high",
          "above = False", T_CONFIG),
    Guard("settings: open low end", CONFIG,
          "value <= rule.low if rule.low_open", "value < rule.low if rule.low_open", T_CONFIG),
    Guard("settings: open high end", CONFIG,
          "value >= rule.high if rule.high_open", "value > rule.high if rule.high_open",
          T_CONFIG),
    Guard("settings: numbers stored as int/float", CONFIG,
          "return int(value) if rule.integer else float(value)", "return value", T_CONFIG),
    Guard("settings: choice among its values", CONFIG,
          "if not isinstance(value, str) or value not in rule.values:",
          "if not isinstance(value, str):", T_CONFIG),
    Guard("settings: text is a string", CONFIG,
          "    if isinstance(rule, Text):\n        if not isinstance(value, str):",
          "    if isinstance(rule, Text):\n        if False:", T_CONFIG),
    Guard("settings: text check applied", CONFIG,
          "problem = rule.check(value) if rule.check else None", "problem = None", T_CONFIG),
    Guard("settings: list is a list", CONFIG,
          "if not isinstance(value, list | tuple) or not all(",
          "if not all(", T_CONFIG),
    Guard("settings: list entries are strings", CONFIG,
          "or not all(isinstance(v, str) for v in value):", ":", T_CONFIG),
    Guard("settings: list entry check applied", CONFIG,
          "problem = rule.check(item) if rule.check else None", "problem = None", T_CONFIG),
    Guard("settings: no NUL in text", CONFIG,
          'return "holds a NUL character" if "\\0" in text else None', "return None",
          T_CONFIG),
    Guard("settings: not-empty text", CONFIG,
          'return "is empty" if not text.strip() else _plain_text(text)',
          "return _plain_text(text)", T_CONFIG),
    Guard("settings: faces match: needs a path", CONFIG,
          'if text.startswith("match:") and text[len("match:"):].strip():',
          'if text.startswith("match:"):', T_CONFIG),
    Guard("settings: faces mode is known", CONFIG,
          'return "expected all, largest or match:REF.jpg"', "return None", T_CONFIG),
    Guard("settings: face map entry REF=SRC", CONFIG,
          "if not sep or not ref.strip() or not source.strip():", "if False:", T_CONFIG),
    Guard("settings: face map entry has a REF", CONFIG,
          "if not sep or not ref.strip() or not source.strip():",
          "if not sep or not source.strip():", T_CONFIG),
    Guard("settings: source entry checked", CONFIG,
          "if not text.strip() or any(not p.strip() for p in text.split(os.pathsep)):",
          "if False:", T_CONFIG),
    Guard("settings: source entry has no empty path", CONFIG,
          "if not text.strip() or any(not p.strip() for p in text.split(os.pathsep)):",
          "if not text.strip():", T_CONFIG),
    Guard("settings: with_changes validates", CONFIG,
          "checked = {key: validate_setting(key, value) if key in names else value",
          "checked = {key: value", T_CONFIG),
    Guard("settings: from_dict validates", CONFIG,
          "kwargs[f.name] = validate_setting(f.name, data[f.name])",
          "kwargs[f.name] = data[f.name]", T_CONFIG),
    # -- realtime/settings_store.py ---------------------------------------------------------
    Guard("store: loaded values validated", STORE,
          "values[f.name] = validate_setting(f.name, data[f.name])",
          "values[f.name] = data[f.name]", T_STORE),
    Guard("store: bad file copied aside", STORE,
          "backup = self._copy_aside(raw)", "backup = None", T_STORE),
    Guard("store: repaired file saved", STORE,
          "            self.save(settings)  # the next start", "            pass  # the next start",
          T_STORE),
    Guard("store: unreadable file moved aside", STORE,
          "            backup = self._backup()", "            backup = None", T_STORE),
    Guard("store: save is atomic", STORE,
          'write_atomic(self.path, text.encode("utf-8"), fsync=True)',
          'self.path.write_text(text, encoding="utf-8")', T_STORE),
    Guard("store: save error names the file", STORE,
          "            except OSError as exc:\n                raise SettingsSaveError",
          "            except ZeroDivisionError as exc:\n                raise SettingsSaveError",
          T_STORE),
    Guard("store: a save Windows refuses is retried, then explained", STORE,
          "            except PermissionError as exc:\n                if attempt",
          "            except ZeroDivisionError as exc:\n                if attempt",
          ("tests/realtime/test_settings_store_windows.py",)),
    Guard("store: a backup never overwrites a backup", STORE,
          '        while backup.exists():\n            backup = self.path.with_name(f"{self.path'
          '.name}.bak-', '        while False:\n            backup = self.path.with_name(f"'
          '{self.path.name}.bak-', T_STORE),
    Guard("store: a moved-aside file never overwrites one", STORE,
          '        while backup.exists():\n            backup = self.path.with_name(f"{self.path'
          '.name}.invalid-', '        while False:\n            backup = self.path.with_name(f"'
          '{self.path.name}.invalid-', T_STORE),
    # -- engines/derived.py: stamps of derived files ----------------------------------------
    Guard("stamp: missing derived file", DERIVED,
          '    if not derived.is_file():\n        return "it does not exist yet"', "",
          T_DERIVED),
    Guard("stamp: no stamp", DERIVED,
          "    if record is None:\n        return \"it has no readable stamp",
          "    if record is None:\n        return None and \"", T_DERIVED),
    Guard("stamp: stamp version", DERIVED,
          'data.get("version") == STAMP_VERSION else None', "True else None", T_DERIVED),
    Guard("stamp: built from this source", DERIVED,
          'if record.get("source_sha256") != source_sha256:', "if False:", T_DERIVED),
    Guard("stamp: size before hashing", DERIVED,
          'if record.get("size") != size:', "if False:", T_DERIVED),
    Guard("stamp: own sha256", DERIVED,
          'if record.get("sha256") != got:', "if False:", T_DERIVED),
    Guard("stamp: ONNX export checks its stamp", "export/onnx.py",
          "    problem = stamp_problem(path, source_sha)",
          "    problem = None if path.exists() else 'missing'", T_ONNX_STAMP),
    Guard("stamp: ONNX export writes its stamp", "export/onnx.py",
          "    write_stamp(path, source_sha, source=str(weights))", "    pass",
          T_ONNX_STAMP),
    Guard("stamp: TensorRT engine checks its stamp", "export/tensorrt.py",
          "    problem = stamp_problem(target, onnx_sha)", "    problem = None",
          T_TRT_STAMP),
    Guard("stamp: TensorRT engine writes its stamp", "export/tensorrt.py",
          "    write_stamp(built, onnx_sha)", "    pass", T_TRT_STAMP),
    Guard("stamp: arcface cache checks its stamp", "export/arcface.py",
          "    problem = stamp_problem(cache, source_sha256)",
          "    problem = None if cache.exists() else 'missing'",
          T_ARC_STAMP),
    Guard("stamp: arcface cache writes its stamp", "export/arcface.py",
          "        write_stamp(cache, source_sha256)", "        pass",
          T_ARC_STAMP),
    Guard("stamp: arcface cache format", "export/arcface.py",
          'if not isinstance(data, dict) or data.get("format") != CACHE_FORMAT:',
          "if not isinstance(data, dict):", T_ARC_STAMP),
    # -- engines/archive.py: zip extraction -------------------------------------------------
    Guard("archive: unreadable zip", ARCHIVE,
          "    except (zipfile.BadZipFile, OSError) as exc:\n        raise ModelFileError",
          "    except ZeroDivisionError as exc:\n        raise ModelFileError", T_ARCHIVE),
    Guard("archive: absolute path", ARCHIVE,
          'if name.startswith("/") or (len(name) > 1 and name[1] == ":"):',
          "if False:", T_ARCHIVE),
    Guard("archive: drive letter", ARCHIVE,
          'if name.startswith("/") or (len(name) > 1 and name[1] == ":"):',
          'if name.startswith("/"):', T_ARCHIVE),
    Guard("archive: '..' component", ARCHIVE,
          'if ".." in path.parts:', "if False:", T_ARCHIVE),
    Guard("archive: symbolic link", ARCHIVE,
          "if stat.S_ISLNK(info.external_attr >> 16):", "if False:", T_ARCHIVE),
    Guard("archive: resolves inside the target", ARCHIVE,
          "if not resolved.is_relative_to(root):", "if False:", T_ARCHIVE),
    Guard("archive: member size limit", ARCHIVE,
          "if info.file_size > MAX_MEMBER_BYTES:", "if False:", T_ARCHIVE),
    Guard("archive: corrupt member", ARCHIVE,
          "            except (zipfile.BadZipFile, OSError, EOFError) as exc:",
          "            except ZeroDivisionError as exc:", T_ARCHIVE),
    Guard("archive: checked before extraction", ARCHIVE,
          "    infos = check_archive(archive, target)",
          "    infos = zipfile.ZipFile(archive).infolist()", T_ARCHIVE),
    Guard("archive: member is a file", ARCHIVE,
          "        if info.is_dir():\n            continue\n", "", T_ARCHIVE),
    Guard("archive: member matches whole components", ARCHIVE,
          "if parts[-len(want):] == want:",
          'if "/".join(parts).endswith("/".join(want)):', T_ARCHIVE),
    # -- engines/models.py: installing files ------------------------------------------------
    Guard("models: licence accepted first", MODELS,
          "    if not accept_licence:", "    if False:", T_MODELS),
    Guard("models: staged file matches its sha256", MODELS,
          "        if expected is not None and got != expected:", "        if False:", T_MODELS),
    Guard("models: candidate validated", MODELS,
          "                validate_candidate(name, staged)", "                pass", T_MODELS),
    Guard("models: ONNX kind", MODELS,
          "            onnx.load(str(path), load_external_data=False)", "            pass",
          T_MODELS),
    Guard("models: TFLite kind", MODELS,
          '        if ident != b"TFL3":', "        if False:",
          ("tests/engines/test_models_face_mesh.py",)),
    Guard("models: torch checkpoint kind", MODELS,
          'if not (zipfile.is_zipfile(path) or head[:1] == b"\\x80"):', "if False:", T_MODELS),
    Guard("models: archive holds the model", MODELS,
          '            if model_status(models_dir, name) == "missing":\n                raise '
          'ModelFileError(f"{url}: the archive holds no', '            if False:\n                '
          'raise ModelFileError(f"{url}: the archive holds no', T_MODELS),
    Guard("models: damaged hash record", MODELS,
          "    except (OSError, ValueError) as exc:\n        # A damaged record",
          "    except ZeroDivisionError as exc:\n        # A damaged record", T_MODELS),
    Guard("models: recorded size", MODELS,
          'if record.get("size") is not None and record["size"] != st.st_size:',
          "if False:", T_MODELS),
    Guard("models: recorded sha256", MODELS,
          "    if got != expected:\n        return \"corrupt\"",
          "    if False:\n        return \"corrupt\"", T_MODELS),
    # -- engines/download.py: verified downloads --------------------------------------------
    Guard("download: https only", DOWNLOAD,
          'if parts.scheme == "http" and parts.hostname in LOCAL_HOSTS:',
          'if parts.scheme == "http":', T_DOWNLOAD),
    Guard("download: URL checked", DOWNLOAD,
          "    check_url(url)\n    dest.parent", "    dest.parent", T_DOWNLOAD),
    Guard("download: redirects checked", DOWNLOAD,
          "        check_url(newurl)\n", "", T_DOWNLOAD),
    Guard("download: sha256 verified", DOWNLOAD,
          "if sha256 is not None and got != sha256.lower():", "if False:", T_DOWNLOAD),
    Guard("download: sha256 in any case", DOWNLOAD,
          "if sha256 is not None and got != sha256.lower():",
          "if sha256 is not None and got != sha256:", T_DOWNLOAD),
    Guard("download: bad part deleted", DOWNLOAD,
          "        part.unlink(missing_ok=True)\n        raise HashMismatch",
          "        raise HashMismatch", T_DOWNLOAD),
    Guard("download: resume offset matches", DOWNLOAD,
          "            if start != offset:", "            if False:", T_DOWNLOAD),
    Guard("download: short body retried", DOWNLOAD,
          "        if total and done != total:", "        if False:", T_DOWNLOAD),
    Guard("download: ignored Range restarts", DOWNLOAD,
          "        if offset and status != 206:", "        if False:", T_DOWNLOAD),
    Guard("download: client errors not retried", DOWNLOAD,
          "if isinstance(exc, urllib.error.HTTPError) and exc.code < 500:", "if False:",
          T_DOWNLOAD),
]

_RULE_LINE = re.compile(r'^    "(?P<key>\w+)": (?P<rule>.+),$', re.MULTILINE)


def _weaker(rule: str) -> str | None:
    """The weakest rule of the same kind (a test built from the rule itself would pass)."""
    if rule.startswith("Number(") or rule == "_SIZE":
        # wider than every range in RULES, small enough for tests that walk a range
        integer = "integer=True" in rule or rule == "_SIZE"
        return "Number(-1000, 100_000" + (", integer=True)" if integer else ")")
    if rule.startswith("Choice("):
        return "Text()"
    if rule.startswith("Text(") and rule != "Text()":
        return "Text()"
    if rule.startswith("TextList(") and rule != "TextList()":
        return "TextList()"
    return None  # Flag: nothing weaker of its kind


def field_guards() -> list[Guard]:
    """One guard per settings field: its rule in ``RULES`` made the weakest of its kind."""
    text = (ROOT / CONFIG).read_text(encoding="utf-8")
    start = text.index("RULES: dict[str, Rule] = {")
    body = text[start:text.index("\n}\n", start)]
    guards = []
    for match in _RULE_LINE.finditer(body):
        weaker = _weaker(match["rule"])
        if weaker is not None:
            guards.append(Guard(f"settings field: {match['key']} ({match['rule']})", CONFIG,
                                match.group(0), f'    "{match["key"]}": {weaker},', T_CONFIG))
    return guards


def all_guards() -> list[Guard]:
    return GUARDS + field_guards()


def _copy_tree(dest: Path) -> None:
    skip = {".git", ".venv", "__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache",
            "build", "dist", ".hypothesis"}
    shutil.copytree(ROOT, dest, ignore=lambda _d, names: [n for n in names if n in skip],
                    symlinks=True)


def _run_tests(tree: Path, tests: tuple[str, ...], timeout: float) -> tuple[int, str]:
    command = [sys.executable, "-m", "pytest", "-q", "-x", "-rf", "-p", "no:cacheprovider",
               "-W", "ignore::DeprecationWarning", *tests]
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONDONTWRITEBYTECODE": "1"}
    try:
        done = subprocess.run(command, cwd=tree, capture_output=True, text=True,
                              timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return 124, "timed out"
    failed = [line.split(" ", 1)[1].split(" - ")[0] for line in done.stdout.splitlines()
              if line.startswith(("FAILED ", "ERROR "))]
    if failed:
        return done.returncode, failed[0]
    tail = (done.stdout.strip() or done.stderr.strip()).splitlines()
    return done.returncode, tail[-1] if tail else ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="", help="run the rules whose name holds this")
    parser.add_argument("--list", action="store_true", help="list the rules, run nothing")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per rule")
    args = parser.parse_args(argv)
    # a kill stops the running pytest too (subprocess.run kills its child on an exception)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    guards = [g for g in all_guards() if args.only.lower() in g.name.lower()]
    bad = []
    for guard in guards:
        count = (ROOT / guard.file).read_text(encoding="utf-8").count(guard.old)
        if count != 1:
            bad.append(f"{guard.name}: snippet found {count} times in {guard.file}")
        ast.parse(_mutated(guard), filename=guard.file)  # a mutation must still compile
    if bad:
        print("\n".join(bad))
        return 1
    if args.list:
        for guard in guards:
            print(f"{guard.name:55s} {guard.file:28s} {' '.join(guard.tests)}")
        return 0
    survivors = 0
    with tempfile.TemporaryDirectory(prefix="rule-guards-") as tmp:
        tree = Path(tmp) / "repo"
        _copy_tree(tree)
        for guard in guards:
            path = tree / guard.file
            original = path.read_text(encoding="utf-8")
            path.write_text(_mutated(guard), encoding="utf-8")
            started = time.monotonic()
            try:
                code, detail = _run_tests(tree, guard.tests, args.timeout)
            finally:
                path.write_text(original, encoding="utf-8")
            # pytest: 1 tests failed, 2 collection error; 0 all passed; else no verdict
            verdict = "guarded " if code in (1, 2) else "SURVIVED" if code == 0 else f"rc={code}"
            survivors += code == 0
            print(f"{verdict}  {guard.name:55s} {time.monotonic() - started:5.1f}s  {detail}",
                  flush=True)
    print(f"{len(guards)} rules, {len(guards) - survivors} guarded, {survivors} survived")
    return 1 if survivors else 0


def _mutated(guard: Guard) -> str:
    return (ROOT / guard.file).read_text(encoding="utf-8").replace(guard.old, guard.new, 1)


if __name__ == "__main__":
    sys.exit(main())
