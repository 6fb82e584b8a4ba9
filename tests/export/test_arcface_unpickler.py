"""The ArcFace checkpoint's restricted unpickler: the exact allow-list, and real payloads
(each shown to run under plain ``pickle`` in a subprocess) refused before anything runs."""

from __future__ import annotations

import builtins
import collections
import functools
import importlib
import os
import pickle
import subprocess
import sys
import textwrap
import time
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from export import arcface
from export.arcface import RestrictedUnpickler, UnsafePickleError, load_pickled_arcface

# Every global an official checkpoint may name, spelled out: adding one to the loader
# must be a decision this list records.
EXPECTED_ALLOWED = {
    ("models.arcface_models", "ResNet"),
    ("models.arcface_models", "IRBlock"),
    ("models.arcface_models", "SEBlock"),
    ("models.arcface_models", "ArcMarginModel"),
    ("torch.nn.parallel.data_parallel", "DataParallel"),
    ("torch.nn.modules.conv", "Conv2d"),
    ("torch.nn.modules.batchnorm", "BatchNorm2d"),
    ("torch.nn.modules.batchnorm", "BatchNorm1d"),
    ("torch.nn.modules.activation", "PReLU"),
    ("torch.nn.modules.activation", "Sigmoid"),
    ("torch.nn.modules.pooling", "MaxPool2d"),
    ("torch.nn.modules.pooling", "AdaptiveAvgPool2d"),
    ("torch.nn.modules.container", "Sequential"),
    ("torch.nn.modules.linear", "Linear"),
    ("torch.nn.modules.dropout", "Dropout"),
    ("collections", "OrderedDict"),
    ("collections", "defaultdict"),
    ("builtins", "dict"),
    ("__builtin__", "dict"),
    ("builtins", "set"),
    ("__builtin__", "set"),
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_parameter"),
    ("torch._utils", "_rebuild_parameter_with_state"),
    ("torch._utils", "_rebuild_tensor"),
    ("torch.nn.parameter", "Parameter"),
    ("torch", "device"),
}
# Modules whose every public and private name is offered to ``find_class``.
PROBED_MODULES = (
    "builtins", "os", "posix", "subprocess", "functools", "operator", "importlib", "sys",
    "shutil", "pickle", "codecs", "collections", "types", "runpy", "torch", "torch._utils",
    "torch.serialization", "torch.hub", "torch.jit", "torch.nn", "torch.nn.modules.module",
    "torch.nn.modules.conv", "torch.nn.modules.activation", "torch.nn.parameter",
    "torch.utils.cpp_extension", "torch.library", "numpy", "models.arcface_models",
)


def _resolve(module: str, name: str) -> Any:
    return RestrictedUnpickler(_EmptyFile()).find_class(module, name)


class _EmptyFile:
    def read(self, n: int = -1) -> bytes:
        return b""

    def readline(self) -> bytes:
        return b""


def test_the_allow_list_is_exactly_the_official_classes() -> None:
    assert set(arcface._ALLOWED) == EXPECTED_ALLOWED
    for key in EXPECTED_ALLOWED:
        assert _resolve(*key) is arcface._ALLOWED[key]


def _names(module_name: str) -> list[str]:
    try:
        module = importlib.import_module(module_name)
    except ImportError:  # models.arcface_models: only its allowed names are probed
        return []
    return sorted(set(dir(module)) | {"system", "popen", "exec", "eval", "load", "Popen"})


@pytest.mark.parametrize("module", PROBED_MODULES)
def test_no_other_global_resolves(module: str) -> None:
    """Behaviour, not the table: every name of each probed module is refused unless it
    is listed (or one of torch's storage types)."""
    storages = {n for n in dir(torch) if n.endswith("Storage") and isinstance(getattr(torch, n),
                                                                                type)}
    accepted = []
    for name in _names(module):
        try:
            _resolve(module, name)
        except UnsafePickleError as exc:
            assert f"{module}.{name}" in str(exc)
            continue
        accepted.append(name)
    expected = {n for m, n in EXPECTED_ALLOWED if m == module}
    if module == "torch":
        expected |= storages
    assert set(accepted) <= expected, f"{module}: resolves {sorted(set(accepted) - expected)}"
    assert {n for n in accepted} >= {n for n in expected if n in _names(module)}


def test_optimizer_classes_resolve_to_an_inert_stand_in() -> None:
    import torch.optim

    names = [n for n in dir(torch.optim) if n[:1].isupper()]
    assert "SGD" in names
    for name in names:
        assert _resolve(f"torch.optim.{name.lower()}", name) is arcface._Inert
        assert _resolve("torch.optim.sgd", name) is arcface._Inert
    for bad in ("torch.optim", "torch.optimizer"):  # the prefix is the package, with a dot
        with pytest.raises(UnsafePickleError):
            _resolve(bad, "SGD")
    with pytest.raises(UnsafePickleError):
        _resolve("torch.optim.sgd", "lower_case_function")


# -- payloads ---------------------------------------------------------------------------


class Call:
    """Pickles as "call ``fn(*args)``"; ``fn`` and ``args`` may be ``Call`` too (nested
    reduce). ``__call__`` exists only because pickle requires a callable there."""

    def __init__(self, fn: Any, *args: Any) -> None:
        self.fn = fn
        self.args = args

    def __call__(self, *args: Any) -> Any:  # never run here
        raise AssertionError("a payload ran in the test process")

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return self.fn, self.args


def _touch(marker: Path) -> str:
    return f"touch {marker}"


def _dumps(obj: object) -> bytes:
    # protocol 2 keeps GLOBAL opcodes (readable below); Python 3 module names as they are
    return pickle.dumps({"model": obj}, protocol=2, fix_imports=False)


def _import_payload(marker: Path) -> bytes:
    # written by hand: under pytest, builtins.__import__ is a wrapper that pickles under
    # another name. {"model": builtins.__import__("h4_payload_module")}, protocol 0.
    return (b"(dp0\nVmodel\np1\ncbuiltins\n__import__\np2\n"
            b"(Vh4_payload_module\np3\ntp4\nRp5\ns.")


PAYLOADS: dict[str, tuple[str, Callable[[Path], bytes]]] = {
    # name → (the global the refusal must name, the pickle of {"model": payload})
    "getattr": ("builtins.getattr", lambda m: _dumps(Call(
        Call(getattr, Call(importlib.import_module, "os"), "system"), _touch(m)))),
    "__import__": ("builtins.__import__", _import_payload),
    "os.popen": ("os.popen", lambda m: _dumps(Call(os.popen, _touch(m)))),
    "subprocess.Popen": ("subprocess.Popen", lambda m: _dumps(Call(subprocess.Popen,
                                                                   ["touch", str(m)]))),
    "builtins.exec": ("builtins.exec", lambda m: _dumps(Call(
        exec, f"open({str(m)!r}, 'w').close()"))),
    "functools.partial": ("functools.partial", lambda m: _dumps(Call(
        functools.partial(os.system, _touch(m))))),
    # the outer callable is allowed; the one nested in its arguments is not
    "nested reduce": ("builtins.eval", lambda m: _dumps(Call(
        collections.OrderedDict, [("weight", Call(eval, f"open({str(m)!r}, 'w').close()"))]))),
}


def _torch_zip(path: Path, data_pkl: bytes) -> None:
    """torch.save's zip layout with ``data_pkl`` as its pickle."""
    torch.save({"model": None}, path)
    with zipfile.ZipFile(path) as zf:
        entries = [(info.filename, zf.read(info)) for info in zf.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for name, data in entries:
            zf.writestr(name, data_pkl if name.endswith("/data.pkl") else data)


def _write_payload(tmp_path: Path, name: str, marker: Path, writer: str) -> Path:
    # the module the __import__ payload imports: importing it is the code execution
    (tmp_path / "h4_payload_module.py").write_text(
        f"open({str(marker)!r}, 'w').close()\n")
    data = PAYLOADS[name][1](marker)
    path = tmp_path / "arcface_checkpoint.tar"
    if writer == "torch-zip":
        _torch_zip(path, data)
    else:
        path.write_bytes(data)
    return path


def _wait_for(marker: Path, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if marker.exists():
            return True
        time.sleep(0.05)
    return marker.exists()


def test_each_payload_really_runs_under_plain_pickle(tmp_path: Path) -> None:
    """Control: unpickled with plain ``pickle`` (in one child process; for the torch zip,
    its data.pkl, as ``torch.load(weights_only=False)`` would), every payload runs."""
    cases = []
    for name in sorted(PAYLOADS):
        for writer in ("raw-pickle", "torch-zip"):
            folder = tmp_path / f"{len(cases)}"
            folder.mkdir()
            marker = folder / "payload-ran"
            cases.append((name, writer, str(_write_payload(folder, name, marker, writer)),
                          marker))
    # torch.load(weights_only=False) unpickles a zip's data.pkl with plain pickle: doing
    # that directly keeps torch's import (seconds) out of the child
    code = textwrap.dedent("""
        import pickle, sys, zipfile
        for writer, path in zip(sys.argv[1::2], sys.argv[2::2]):
            folder = path.rsplit('/', 1)[0]
            sys.path.insert(0, folder)
            if writer == 'torch-zip':
                with zipfile.ZipFile(path) as zf:
                    name = next(n for n in zf.namelist() if n.endswith('/data.pkl'))
                    pickle.loads(zf.read(name))
            else:
                with open(path, 'rb') as handle:
                    pickle.load(handle)
            sys.path.remove(folder)
            sys.modules.pop('h4_payload_module', None)
    """)
    args = [x for name, writer, path, _ in cases for x in (writer, path)]
    subprocess.run([sys.executable, "-c", code, *args], check=True, timeout=120)
    for name, writer, _, marker in cases:
        assert _wait_for(marker), f"the {name} payload ({writer}) did not run"


@pytest.mark.parametrize("writer", ["raw-pickle", "torch-zip"])
@pytest.mark.parametrize("name", sorted(PAYLOADS))
def test_each_payload_is_refused_and_not_run(tmp_path: Path, name: str, writer: str,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    marker = tmp_path / "payload-ran"
    path = _write_payload(tmp_path, name, marker, writer)
    monkeypatch.syspath_prepend(str(tmp_path))  # so the __import__ payload could work
    with pytest.raises(UnsafePickleError) as err:
        load_pickled_arcface(path)
    message = str(err.value)
    assert any(f"global {spelling}:" in message for spelling in _spellings(PAYLOADS[name][0])), \
        message
    assert str(path) in message
    time.sleep(0.2)  # a spawned process would have touched it by now
    assert not marker.exists()
    assert "h4_payload_module" not in sys.modules


def test_each_payload_names_its_global_first() -> None:
    """The global each test expects refused is the first the pickle names (a slip here
    would weaken the tests above without failing them)."""
    for name, (global_name, build) in PAYLOADS.items():
        found = _globals(build(Path("/nonexistent/marker")))
        if name == "nested reduce":
            assert found[0] == "collections.OrderedDict", found
            assert found[1] in _spellings("builtins.eval"), found
        else:
            assert found[0] in _spellings(global_name), (name, found)


def _spellings(global_name: str) -> set[str]:
    """How a pickle may name it: protocol 2 writes builtins as __builtin__, and
    os.system lives in posix."""
    module, name = global_name.rsplit(".", 1)
    aliases = {"builtins": ["__builtin__"], "os": ["posix"]}.get(module, [])
    return {f"{m}.{name}" for m in [module, *aliases]}


def _globals(data: bytes) -> list[str]:
    import pickletools

    return [str(arg).replace(" ", ".") for opcode, arg, _ in pickletools.genops(data)
            if opcode.name == "GLOBAL"]


def test_a_torchscript_archive_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "arcface_checkpoint.tar"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript is deprecated
        torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(path))
    # control: torch.load would hand this file to the TorchScript loader, past any
    # pickle_module
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns that it is loading TorchScript
        loaded = torch.load(path, weights_only=False)
    assert isinstance(loaded, torch.jit.ScriptModule)
    with pytest.raises(UnsafePickleError, match="TorchScript archive"):
        load_pickled_arcface(path)


def test_builtins_exec_and_eval_are_not_reachable_by_other_spellings() -> None:
    for module, name in [("__builtin__", "eval"), ("__builtin__", "exec"),
                         ("builtins", "__import__"), ("__builtin__", "getattr"),
                         ("torch", "load"), ("torch.serialization", "load"),
                         ("torch._utils", "_rebuild_from_type_v2"), ("copyreg", "_reconstructor"),
                         ("torch.nn.modules.module", "Module")]:
        with pytest.raises(UnsafePickleError):
            _resolve(module, name)
    assert builtins.eval is eval  # nothing was patched
