"""bench/rule_guards.py stays runnable: each guard's snippet is still in its file exactly
once, its mutation compiles, and the tests it names exist. (Running the guards themselves
takes minutes: ``python bench/rule_guards.py``.) Without this, a refactor that rewrites a
checked line silently leaves its rule unguarded until someone runs the script."""

from __future__ import annotations

import ast
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def guards_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("rule_guards", ROOT / "bench/rule_guards.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["rule_guards"] = module  # dataclasses look their module up by name
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules["rule_guards"]
    return module


def test_every_snippet_is_found_once_and_its_mutation_compiles(
        guards_module: ModuleType) -> None:
    guards = guards_module.all_guards()
    assert len(guards) > 100
    assert len({g.name for g in guards}) == len(guards), "two guards share a name"
    for guard in guards:
        text = (ROOT / guard.file).read_text(encoding="utf-8")
        assert text.count(guard.old) == 1, f"{guard.name}: snippet not found once in {guard.file}"
        assert guard.new != guard.old, guard.name
        ast.parse(text.replace(guard.old, guard.new), filename=guard.file)


def test_every_named_test_exists(guards_module: ModuleType) -> None:
    for guard in guards_module.all_guards():
        assert guard.tests, guard.name
        for test in guard.tests:
            path, _, name = test.partition("::")
            assert (ROOT / path).is_file(), f"{guard.name}: no file {path}"
            if name:
                assert f"def {name.split('[')[0]}(" in (ROOT / path).read_text(
                    encoding="utf-8"), f"{guard.name}: no test {test}"
