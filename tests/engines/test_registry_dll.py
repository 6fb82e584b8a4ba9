"""A runtime whose library fails to load raises ``OSError`` from its import on Windows
(torch's c10.dll after an older MSVC runtime was loaded: ``[WinError 1114]``; a missing
CUDA DLL: ``[WinError 126]``), not ``ImportError``. A meta-path finder raises that
``OSError`` where the import system would, so the registry sees what Windows gives it."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from engines import registry
from engines.base import NoEngineAvailable

WINERROR_1114 = ("[WinError 1114] A dynamic link library (DLL) initialization routine "
                 "failed. Error loading \"c10.dll\" or one of its dependencies.")


class DllFails:
    """Importing any of ``names`` raises the OSError Windows' loader gives."""

    def __init__(self, *names: str) -> None:
        self.names = names

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name in self.names:
            raise OSError(22, WINERROR_1114)
        return None


@pytest.fixture
def broken_dll(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("engines.tensorrt", "engines.openvino", "torch", "onnxruntime"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    finder = DllFails("engines.tensorrt", "engines.openvino", "torch")
    sys.meta_path.insert(0, finder)
    yield
    sys.meta_path.remove(finder)


def test_a_runtime_whose_dll_fails_is_unusable_with_its_reason(
        broken_dll: None, tmp_path: Path) -> None:
    model = tmp_path / "model.onnx"
    model.write_bytes(b"not read: every backend fails first")
    for backend in ("tensorrt", "openvino"):
        with pytest.raises(NoEngineAvailable) as info:
            registry.open_engine(model, backend)
        assert "WinError 1114" in str(info.value), backend


def test_backend_status_reports_the_dll_error(broken_dll: None) -> None:
    reason = registry._tensorrt_reason()
    assert reason is not None and "WinError 1114" in reason
