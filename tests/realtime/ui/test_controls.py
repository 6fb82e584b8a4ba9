"""The settings panel on its own: the identity-strength slider, the enhancer, the engine note."""

from __future__ import annotations

from pytestqt.qtbot import QtBot

from realtime.config import Settings
from realtime.ui.controls import ControlsPanel


def test_identity_strength_slider_shows_and_emits_the_setting(qtbot: QtBot) -> None:
    panel = ControlsPanel()
    qtbot.addWidget(panel)
    seen: list[dict[str, object]] = []
    panel.changed.connect(seen.append)
    panel.set_settings(Settings(identity_strength=1.25))
    assert panel.identity_strength.value() == 125 and not seen  # filling emits nothing
    panel.identity_strength.setValue(40)
    assert seen[-1] == {"identity_strength": 0.4}
    # the slider's ends are the setting's range, so it cannot build an invalid one
    assert panel.identity_strength.minimum() == 0 and panel.identity_strength.maximum() == 200
    Settings().with_changes(**seen[-1])


def test_enhance_checkbox_and_blend_emit_the_settings(qtbot: QtBot) -> None:
    panel = ControlsPanel()
    qtbot.addWidget(panel)
    seen: list[dict[str, object]] = []
    panel.changed.connect(seen.append)
    panel.set_settings(Settings(enhance="gfpgan", enhance_blend=0.3))
    assert panel.enhance.isChecked() and panel.enhance_blend.value() == 30 and not seen
    panel.enhance.setChecked(False)
    assert seen[-1] == {"enhance": "off"}
    panel.enhance_blend.setValue(90)
    assert seen[-1] == {"enhance_blend": 0.9}
    Settings().with_changes(enhance="gfpgan", enhance_blend=0.9)


def test_the_engine_note_is_short_and_the_reasons_are_in_tooltips(qtbot: QtBot) -> None:
    """Six engines, four unusable: the narrow panel says which is in use and names the
    unusable ones in one line; each reason is the greyed item's tooltip and the note's."""
    from PySide6.QtCore import Qt

    panel = ControlsPanel()
    qtbot.addWidget(panel)
    reason = "TensorRT is not installed: no tensorrt package (pip install tensorrt-cu12)"
    status: dict[str, str | None] = {
        "tensorrt": reason, "onnxruntime-cuda": "no CUDAExecutionProvider",
        "onnxruntime-directml": "Windows only", "onnxruntime-coreml": "macOS only",
        "onnxruntime-cpu": None, "openvino": None}
    panel.set_engines(status, "auto", "onnxruntime-cpu")
    lines = panel.engine_note.text().splitlines()
    assert lines == ["In use: onnxruntime-cpu",
                     "Not usable here: TensorRT, ONNX Runtime CUDA, DirectML, CoreML "
                     "(hover for why)"]
    assert reason in panel.engine_note.toolTip()
    index = panel.engine.findData("tensorrt")
    assert panel.engine.itemData(index, Qt.ItemDataRole.ToolTipRole) == reason
    panel.set_engines({name: None for name in status}, "auto", "tensorrt")
    assert panel.engine_note.text() == "In use: tensorrt"
