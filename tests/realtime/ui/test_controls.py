"""The settings panel on its own: the identity-strength slider."""

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
