"""The window as a newcomer first sees it on a small laptop screen (1366×768): the groups
needed first are on screen without scrolling and no combo's text is cut off (issue 28)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QGroupBox,
    QStyle,
    QStyleOptionComboBox,
    QWidget,
)
from pytestqt.qtbot import QtBot

from realtime.config import Settings
from realtime.settings_store import SettingsStore
from realtime.ui.app import apply_dark_palette
from realtime.ui.controller import Controller
from realtime.ui.main_window import MainWindow

FIRST_GROUPS = ("Input", "Model", "Faces", "Output")  # the camera, the swapper, whose face,
# where it goes out; the source photos are the gallery under the preview


def text_room(combo: QComboBox) -> int:
    """The width the combo draws its current text in (the style's edit field)."""
    option = QStyleOptionComboBox()
    combo.initStyleOption(option)
    return combo.style().subControlRect(QStyle.ComplexControl.CC_ComboBox, option,
                                        QStyle.SubControl.SC_ComboBoxEditField, combo).width()


def cut_off(combo: QComboBox, text: str) -> bool:
    return combo.fontMetrics().horizontalAdvance(text) > text_room(combo)


@pytest.fixture
def small_window(qtbot: QtBot, tmp_path: Path) -> Iterator[MainWindow]:
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    app.setStyle("Fusion")  # as run_window sets it
    apply_dark_palette(app)
    clip = tmp_path / "three people.mp4"
    clip.write_bytes(b"")
    settings = Settings(models_dir=str(tmp_path / "models"), camera=str(clip),
                        model="inswapper-128")
    window = MainWindow(SettingsStore(tmp_path / "settings.toml"), settings,
                        Controller(tmp_path / "models", tmp_path / "cache"))
    qtbot.addWidget(window)
    window.resize(1366, 768)
    window.show()
    qtbot.waitExposed(window)
    # the probe of engines and models fills the Model group's combos from the worker
    qtbot.waitUntil(lambda: window.controls.engine.count() > 1, timeout=15000)
    QApplication.processEvents()
    yield window
    window.close()


def test_first_groups_are_on_screen_without_scrolling(small_window: MainWindow) -> None:
    window = small_window
    assert window.size().width() == 1366 and window.size().height() == 768
    viewport = window.side.viewport()
    assert window.side.verticalScrollBar().value() == 0
    boxes = {box.title(): box for box in window.controls.findChildren(QGroupBox)}
    assert set(FIRST_GROUPS) <= set(boxes)
    for title in FIRST_GROUPS:
        box = boxes[title]
        top = box.mapTo(viewport, box.rect().topLeft())
        bottom = box.mapTo(viewport, box.rect().bottomRight())
        assert top.y() >= 0 and bottom.y() < viewport.height(), \
            f"{title} group at y {top.y()}..{bottom.y()}, view ends at {viewport.height()}"
    # the gallery (the source photos and their buttons) is inside the window
    gallery: QWidget = window.gallery
    corner = gallery.mapTo(window, gallery.rect().bottomRight())
    assert gallery.isVisible() and gallery.height() > 100
    assert corner.y() < window.height() - window.statusBar().height()


def test_no_combo_text_is_cut_off(small_window: MainWindow) -> None:
    combos = small_window.controls.findChildren(QComboBox)
    assert len(combos) >= 8
    cut = [f"{c.currentText()!r}: {c.fontMetrics().horizontalAdvance(c.currentText())} px "
           f"in {text_room(c)}" for c in combos if c.isVisible() and cut_off(c, c.currentText())]
    assert not cut, "\n".join(cut)
    # every choice of the Faces and Blend groups fits too, not only the one shown now
    # (a combo added to these groups later is checked as well)
    boxes = {box.title(): box for box in small_window.controls.findChildren(QGroupBox)}
    for title in ("Faces", "Blend"):
        for combo in boxes[title].findChildren(QComboBox):
            items = [combo.itemText(i) for i in range(combo.count())]
            assert items and not [t for t in items if cut_off(combo, t)], (title, items)


def test_the_long_explanations_are_in_the_tooltips(small_window: MainWindow) -> None:
    """Short item texts lose nothing: each Blend choice explains itself in its tooltip."""
    from PySide6.QtCore import Qt

    for combo in (small_window.controls.mask_mode, small_window.controls.texture):
        for i in range(combo.count()):
            tip = combo.itemData(i, Qt.ItemDataRole.ToolTipRole)
            assert isinstance(tip, str) and len(tip) > len(combo.itemText(i))
            assert tip in combo.toolTip()
    assert "hair, ears and hands" in small_window.controls.mask_mode.toolTip()
