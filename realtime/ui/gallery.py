"""The source gallery: one tile per identity, with its hotkey number and state.

The gallery is only the view and its list of entries; the main window decides what
happens (it computes vectors on a worker and calls ``set_ready`` / ``set_failed``).
Ready entries are numbered 1, 2, ... in order, the same order as the source bank, so
the number on a tile is the key that selects it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import QPoint, Qt, Signal
from PySide6.QtGui import (
    QAction,
    QContextMenuEvent,
    QDragEnterEvent,
    QDropEvent,
    QImage,
    QMouseEvent,
    QPixmap,
)
from PySide6.QtWidgets import (
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QMenu,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from realtime.types import SourceFace

IMAGE_FILTER = "Images (*.jpg *.jpeg *.png *.bmp *.webp *.tif *.tiff)"
TILE_SIZE = 96


@dataclass
class Entry:
    key: int
    paths: tuple[str, ...]
    name: str
    state: str = "busy"  # "busy" | "ready" | "failed"
    message: str = ""
    thumbnail: np.ndarray | None = None


def _pixmap_from_bgr(image: np.ndarray, size: int) -> QPixmap:
    image = np.ascontiguousarray(image)
    h, w = image.shape[:2]
    qimage = QImage(image.data, w, h, int(image.strides[0]), QImage.Format.Format_BGR888).copy()
    return QPixmap.fromImage(qimage).scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio,
                                            Qt.TransformationMode.SmoothTransformation)


class SourceTile(QFrame):
    """Thumbnail, number + name, and a state line (busy bar or message)."""

    clicked = Signal(int)
    context_requested = Signal(int, QPoint)

    def __init__(self, entry: Entry, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.entry_key = entry.key
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setFixedWidth(TILE_SIZE + 24)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(3)
        self.image = QLabel()
        self.image.setFixedSize(TILE_SIZE, TILE_SIZE)
        self.image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.image.setStyleSheet("background: #222; border-radius: 4px;")
        self.title = QLabel()
        self.title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)  # indeterminate: computing the identity vector
        self.busy.setFixedHeight(6)
        self.busy.setTextVisible(False)
        for widget in (self.image, self.title, self.busy, self.status):
            layout.addWidget(widget, 0, Qt.AlignmentFlag.AlignHCenter)
        self.update_entry(entry, number=None, active=False)

    def update_entry(self, entry: Entry, *, number: int | None, active: bool) -> None:
        if entry.thumbnail is not None:
            self.image.setPixmap(_pixmap_from_bgr(entry.thumbnail, TILE_SIZE))
        elif self.image.pixmap().isNull():
            pixmap = QPixmap(entry.paths[0])
            if not pixmap.isNull():
                self.image.setPixmap(pixmap.scaled(
                    TILE_SIZE, TILE_SIZE, Qt.AspectRatioMode.KeepAspectRatio,
                    Qt.TransformationMode.SmoothTransformation))
        prefix = f"{number} · " if number is not None and number <= 9 else ""
        self.title.setText(prefix + entry.name)
        photos = f"{len(entry.paths)} photos" if len(entry.paths) > 1 else ""
        self.busy.setVisible(entry.state == "busy")
        if entry.state == "busy":
            self.status.setText("computing face…")
            self.status.setStyleSheet("color: #aaa;")
        elif entry.state == "failed":
            self.status.setText(entry.message)
            self.status.setStyleSheet("color: #ff6b6b; font-weight: bold;")
        else:
            self.status.setText(photos)
            self.status.setStyleSheet("color: #aaa;")
        self.status.setVisible(bool(self.status.text()))
        self.setToolTip("\n".join(entry.paths) + (f"\n\n{entry.message}" if entry.message else ""))
        border = "#ffb300" if active else ("#c62828" if entry.state == "failed" else "#444")
        width = 3 if active else 1
        self.setStyleSheet(f"SourceTile {{ border: {width}px solid {border}; border-radius: 6px; "
                           f"background: {'#3a3220' if active else '#2a2a2e'}; }}")

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self.clicked.emit(self.entry_key)
        super().mousePressEvent(event)

    def contextMenuEvent(self, event: QContextMenuEvent) -> None:
        self.context_requested.emit(self.entry_key, event.globalPos())


class Gallery(QWidget):
    """Tiles in a horizontal strip, with buttons to add photos; accepts dropped files."""

    add_requested = Signal(list, str)  # paths (one identity), name ("" = from the file)
    folder_requested = Signal(str)  # a folder of photos, one identity each (remembered)
    remove_requested = Signal(int)  # entry key
    rename_requested = Signal(int, str)
    select_requested = Signal(int)  # 0-based index among ready entries

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAcceptDrops(True)
        self.entries: list[Entry] = []
        self.tiles: dict[int, SourceTile] = {}
        self.active = 0
        self._keys = itertools.count(1)
        outer = QHBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        buttons = QVBoxLayout()
        self.add_button = QPushButton("Add photos…")
        self.add_button.setToolTip("Each photo becomes one source (or drop image files here)")
        self.add_group_button = QPushButton("One person,\nseveral photos…")
        self.add_group_button.setToolTip("Several photos of one person averaged into one identity")
        self.add_button.clicked.connect(self._ask_add)
        self.add_group_button.clicked.connect(self._ask_add_group)
        self.folder_button = QPushButton("Photo folder…")
        self.folder_button.setToolTip("Every photo in a folder becomes a source; the folder "
                                      "is remembered and read again at the next start")
        self.folder_button.clicked.connect(self._ask_folder)
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.add_group_button)
        buttons.addWidget(self.folder_button)
        self.hint = QLabel("Drop photos here")
        self.hint.setStyleSheet("color: #888;")
        buttons.addWidget(self.hint)
        buttons.addStretch(1)
        outer.addLayout(buttons)
        self.strip = QWidget()
        self.strip_layout = QHBoxLayout(self.strip)
        self.strip_layout.setContentsMargins(4, 4, 4, 4)
        self.strip_layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(self.strip)
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        scroll.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        outer.addWidget(scroll, 1)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setFixedHeight(TILE_SIZE + 96)

    # -- entries ------------------------------------------------------------------

    def add_entry(self, paths: list[Path], name: str = "") -> Entry:
        entry = Entry(next(self._keys), tuple(str(p) for p in paths), name or Path(paths[0]).stem)
        self.entries.append(entry)
        tile = SourceTile(entry)
        tile.clicked.connect(self._tile_clicked)
        tile.context_requested.connect(self._tile_menu)
        self.tiles[entry.key] = tile
        self.strip_layout.insertWidget(self.strip_layout.count() - 1, tile)
        self.refresh()
        return entry

    def entry(self, key: int) -> Entry | None:
        return next((e for e in self.entries if e.key == key), None)

    def set_ready(self, key: int, face: SourceFace) -> None:
        entry = self.entry(key)
        if entry is not None:
            entry.state, entry.message = "ready", ""
            entry.name = face.name
            entry.thumbnail = face.thumbnail
            self.refresh()

    def set_failed(self, key: int, message: str) -> None:
        entry = self.entry(key)
        if entry is not None:
            entry.state, entry.message = "failed", message
            self.refresh()

    def remove_entry(self, key: int) -> None:
        entry = self.entry(key)
        if entry is None:
            return
        self.entries.remove(entry)
        tile = self.tiles.pop(key)
        self.strip_layout.removeWidget(tile)
        tile.deleteLater()
        self.refresh()

    def rename_entry(self, key: int, name: str) -> None:
        entry = self.entry(key)
        if entry is not None:
            entry.name = name
            self.refresh()

    def ready_entries(self) -> list[Entry]:
        return [e for e in self.entries if e.state == "ready"]

    def set_active(self, index: int) -> None:
        self.active = index
        self.refresh()

    def refresh(self) -> None:
        number = 0
        for entry in self.entries:
            tile = self.tiles[entry.key]
            if entry.state == "ready":
                number += 1
                tile.update_entry(entry, number=number, active=number - 1 == self.active)
            else:
                tile.update_entry(entry, number=None, active=False)
        self.hint.setVisible(not self.entries)

    # -- user actions ---------------------------------------------------------------

    def _ask_add(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Add source photos", "", IMAGE_FILTER)
        for name in files:
            self.add_requested.emit([Path(name)], "")

    def _ask_add_group(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Photos of one person", "", IMAGE_FILTER)
        if files:
            name, ok = QInputDialog.getText(self, "Name", "Name for this person:",
                                            text=Path(files[0]).stem)
            self.add_requested.emit([Path(f) for f in files], name if ok else "")

    def _ask_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of source photos")
        if folder:
            self.folder_requested.emit(folder)

    def _tile_clicked(self, key: int) -> None:
        ready = self.ready_entries()
        for index, entry in enumerate(ready):
            if entry.key == key:
                self.select_requested.emit(index)

    def _tile_menu(self, key: int, where: QPoint) -> None:
        entry = self.entry(key)
        if entry is None:
            return
        menu = QMenu(self)
        rename = QAction("Rename…", menu)
        rename.setEnabled(entry.state == "ready")
        remove = QAction("Remove", menu)
        remove.setEnabled(entry.state != "busy")
        menu.addAction(rename)
        menu.addAction(remove)
        chosen = menu.exec(where)
        if chosen is rename:
            name, ok = QInputDialog.getText(self, "Rename source", "Name:", text=entry.name)
            if ok and name.strip():
                self.rename_requested.emit(key, name.strip())
        elif chosen is remove:
            self.remove_requested.emit(key)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [Path(url.toLocalFile()) for url in event.mimeData().urls() if url.isLocalFile()]
        for path in paths:
            self.add_requested.emit([path], "")
        event.acceptProposedAction()
