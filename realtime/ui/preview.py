"""The large live preview and the small per-stage timing chart.

The preview never receives frames by signal: the main window's timer polls the
pipeline's preview slot and calls ``set_result`` only when its version changed.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPoint, QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QImage, QMouseEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from realtime.types import SwapResult

PREVIEW_MODES: tuple[str, ...] = ("swapped", "original", "side-by-side")


def to_qimage(image: np.ndarray) -> QImage:
    """A QImage viewing a BGR uint8 array (the caller keeps the array alive)."""
    image = np.ascontiguousarray(image)
    height, width = image.shape[:2]
    return QImage(image.data, width, height, int(image.strides[0]), QImage.Format.Format_BGR888)


def fit_rect(width: int, height: int, box: QRectF) -> QRectF:
    """The largest rectangle of ``width``:``height`` centred in ``box``."""
    if width <= 0 or height <= 0:
        return QRectF(box)
    scale = min(box.width() / width, box.height() / height)
    w, h = width * scale, height * scale
    return QRectF(box.x() + (box.width() - w) / 2, box.y() + (box.height() - h) / 2, w, h)


class PreviewWidget(QWidget):
    """Draws the latest result as swapped, original or both side by side, with badges.

    A left click on a face emits ``face_clicked(track id, global position)`` (the window
    offers its identities there); ``selected_face`` is outlined (the face hotkeys).
    """

    face_clicked = Signal(int, QPoint)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(320, 180)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.mode = "swapped"
        self.message = "Starting…"
        self.badges: list[tuple[str, QColor]] = []
        self.caption = ""
        # the identity meter per track id: drawn over the face here, never into frames
        self.face_badges: dict[int, str] = {}
        self.hint = ""  # what to do next, drawn over the picture (add a photo, get models)
        self.selected_face: int | None = None  # outlined: the face hotkeys act on it
        self._result: SwapResult | None = None
        self.frames_drawn = 0

    def sizeHint(self) -> QSize:
        return QSize(960, 540)

    def set_mode(self, mode: str) -> None:
        if mode not in PREVIEW_MODES:
            raise ValueError(f"preview mode: expected one of {PREVIEW_MODES}, got {mode!r}")
        self.mode = mode
        self.update()

    def set_result(self, result: SwapResult | None) -> None:
        self._result = result
        if result is not None:
            self.message = ""
        self.update()

    @property
    def result(self) -> SwapResult | None:
        return self._result

    def set_message(self, message: str) -> None:
        """A centred line shown while there is no picture (loading, no camera ...)."""
        self.message = message
        self.update()

    def set_hint(self, hint: str) -> None:
        if hint != self.hint:
            self.hint = hint
            self.update()

    def set_badges(self, badges: list[tuple[str, QColor]]) -> None:
        self.badges = badges
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        painter.fillRect(self.rect(), QColor(18, 18, 20))
        box = QRectF(self.rect())
        result = self._result
        if result is not None:
            for image, area, label in self._views(result, box):
                self._draw(painter, image, area, label)
            self.frames_drawn += 1
        if self.message:
            painter.setPen(QColor(230, 230, 230))
            font = QFont(self.font())
            font.setPointSizeF(font.pointSizeF() * 1.4)
            painter.setFont(font)
            painter.drawText(box.adjusted(24, 24, -24, -24),
                             int(Qt.AlignmentFlag.AlignCenter) | int(Qt.TextFlag.TextWordWrap),
                             self.message)
        if self.hint and result is not None:
            font = QFont(self.font())
            font.setBold(True)
            painter.setFont(font)
            width = painter.fontMetrics().horizontalAdvance(self.hint) + 24
            rect = QRectF(box.center().x() - width / 2, box.bottom() - 44, width, 28)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(0, 0, 0, 170))
            painter.drawRoundedRect(rect, 8, 8)
            painter.setPen(QColor(255, 213, 79))
            painter.drawText(rect, int(Qt.AlignmentFlag.AlignCenter), self.hint)
        self._draw_badges(painter, box)
        painter.end()

    def set_face_badges(self, badges: dict[int, str]) -> None:
        self.face_badges = dict(badges)
        self.update()

    def select_face(self, track_id: int | None) -> None:
        self.selected_face = track_id
        self.update()

    def _views(self, result: SwapResult, box: QRectF) -> list[tuple[np.ndarray, QRectF, str]]:
        """(image, area, label) per picture shown: one, or two side by side."""
        original, swapped = result.frame.image, result.image
        if self.mode == "side-by-side":
            left = QRectF(box.x(), box.y(), box.width() / 2, box.height())
            right = QRectF(left)
            right.moveLeft(box.x() + box.width() / 2)
            return [(original, left, "original"), (swapped, right, "swapped")]
        if self.mode == "original":
            return [(original, box, "original")]
        return [(swapped, box, "")]

    def face_rects(self) -> list[tuple[int, QRectF]]:
        """(track id, the face's box in widget coordinates) for every face on show; in
        side by side each face appears twice."""
        result = self._result
        if result is None:
            return []
        rects = []
        for image, area, _label in self._views(result, QRectF(self.rect())):
            target = fit_rect(image.shape[1], image.shape[0], area)
            scale = target.width() / max(image.shape[1], 1)
            for face in result.faces:
                x1, y1, x2, y2 = (float(v) for v in face.box[:4])
                rects.append((face.track_id, QRectF(target.x() + x1 * scale,
                                                    target.y() + y1 * scale,
                                                    (x2 - x1) * scale, (y2 - y1) * scale)))
        return rects

    def face_at(self, pos: QPointF) -> int | None:
        """The track id of the face under ``pos`` (the smallest box when boxes overlap)."""
        hits = [(r.width() * r.height(), tid) for tid, r in self.face_rects() if r.contains(pos)]
        return min(hits)[1] if hits else None

    def mousePressEvent(self, event: QMouseEvent) -> None:
        track_id = self.face_at(event.position()) \
            if event.button() == Qt.MouseButton.LeftButton else None
        if track_id is None:
            super().mousePressEvent(event)
            return
        self.select_face(track_id)
        self.face_clicked.emit(track_id, event.globalPosition().toPoint())
        event.accept()

    def _draw(self, painter: QPainter, image: np.ndarray, box: QRectF, label: str) -> None:
        target = fit_rect(image.shape[1], image.shape[0], box)
        painter.drawImage(target, to_qimage(image))
        if label != "original" and self._result is not None and self.face_badges:
            scale = target.width() / max(image.shape[1], 1)
            for face in self._result.faces:
                text = self.face_badges.get(face.track_id)
                if text:
                    x1, y1 = float(face.box[0]), float(face.box[1])
                    self._pill(painter, target.x() + x1 * scale,
                               max(target.y(), target.y() + y1 * scale - 26), text,
                               QColor(0, 105, 92, 220))
        if self._result is not None and self.selected_face is not None:
            scale = target.width() / max(image.shape[1], 1)
            for face in self._result.faces:
                if face.track_id == self.selected_face:
                    x1, y1, x2, y2 = (float(v) for v in face.box[:4])
                    painter.setPen(QPen(QColor(255, 179, 0), 2))
                    painter.setBrush(Qt.BrushStyle.NoBrush)
                    painter.drawRect(QRectF(target.x() + x1 * scale, target.y() + y1 * scale,
                                            (x2 - x1) * scale, (y2 - y1) * scale))
        if label:
            self._pill(painter, target.x() + 8, target.bottom() - 30, label.upper(),
                       QColor(0, 0, 0, 160))

    def _draw_badges(self, painter: QPainter, box: QRectF) -> None:
        x = box.x() + 10
        for text, color in self.badges:
            x += self._pill(painter, x, box.y() + 10, text, color) + 6

    def _pill(self, painter: QPainter, x: float, y: float, text: str, color: QColor) -> float:
        font = QFont(self.font())
        font.setBold(True)
        painter.setFont(font)
        width = painter.fontMetrics().horizontalAdvance(text) + 16
        rect = QRectF(x, y, width, 22)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(color)
        painter.drawRoundedRect(rect, 6, 6)
        painter.setPen(QColor(255, 255, 255))
        painter.drawText(rect, int(Qt.AlignmentFlag.AlignCenter), text)
        return width


STAGE_COLOURS: dict[str, QColor] = {
    "capture": QColor(120, 144, 156), "detect": QColor(66, 165, 245),
    "track": QColor(38, 198, 218), "align": QColor(102, 187, 106),
    "swap": QColor(239, 83, 80), "composite": QColor(255, 167, 38),
    "sink": QColor(171, 71, 188),
}


class StageChart(QWidget):
    """Horizontal bars: the p50 milliseconds of each pipeline stage."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.stages: dict[str, float] = {}
        self.setMinimumHeight(96)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def sizeHint(self) -> QSize:
        return QSize(240, 110)

    def set_stages(self, stages: dict[str, float]) -> None:
        if stages != self.stages:
            self.stages = dict(stages)
            self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        metrics = painter.fontMetrics()
        row = max(metrics.height(), 12)
        label_w = metrics.horizontalAdvance("composite") + 6
        value_w = metrics.horizontalAdvance("9999.9 ms") + 4
        if not self.stages:
            painter.setPen(self.palette().color(self.foregroundRole()))
            painter.drawText(self.rect(), int(Qt.AlignmentFlag.AlignCenter), "no timings yet")
            painter.end()
            return
        top = max(self.stages.values()) or 1.0
        bar_w = max(self.width() - label_w - value_w, 10)
        y = 0
        for name, ms in self.stages.items():
            if y + row > self.height():
                break
            painter.setPen(self.palette().color(self.foregroundRole()))
            painter.drawText(QRectF(0, y, label_w, row),
                             int(Qt.AlignmentFlag.AlignVCenter), name)
            painter.setPen(QPen(Qt.PenStyle.NoPen))
            painter.setBrush(STAGE_COLOURS.get(name, QColor(158, 158, 158)))
            painter.drawRect(QRectF(label_w, y + 2, max(bar_w * ms / top, 1.0), row - 4))
            painter.setPen(self.palette().color(self.foregroundRole()))
            painter.drawText(QRectF(label_w + bar_w + 4, y, value_w, row),
                             int(Qt.AlignmentFlag.AlignVCenter), f"{ms:.1f} ms")
            y += row
        painter.end()
