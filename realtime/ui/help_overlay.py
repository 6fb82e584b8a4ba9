"""A translucent panel over the window listing every hotkey (F1 or ?; Esc or click hides)."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QKeyEvent, QMouseEvent, QPainter, QPaintEvent
from PySide6.QtWidgets import QWidget

from realtime.ui.hotkeys import help_rows

GLOBAL_NOTE = "System-wide (when enabled): Ctrl+Alt+1…9, Ctrl+Alt+] / [, Ctrl+Alt+Space"


class HelpOverlay(QWidget):
    """Covers its parent; follows the parent's size."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self._host = parent
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents, False)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.rows = help_rows()
        parent.installEventFilter(self)
        self.hide()

    def toggle(self) -> None:
        if self.isVisible():
            self.hide()
        else:
            self.setGeometry(self._host.rect())
            self.raise_()
            self.show()
            self.setFocus()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self._host and event.type() == QEvent.Type.Resize:
            self.setGeometry(self._host.rect())
        return False

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Escape:
            self.hide()
        else:
            super().keyPressEvent(event)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        self.hide()

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(0, 0, 0, 190))
        font = QFont(self.font())
        font.setPointSizeF(font.pointSizeF() * 1.25)
        painter.setFont(font)
        row_h = painter.fontMetrics().height() * 1.6
        keys_w = painter.fontMetrics().horizontalAdvance("F1 or ?") + 40
        desc_w = painter.fontMetrics().horizontalAdvance("use source 1 … 9 (numbers on the "
                                                         "gallery tiles)") + 20
        total_h = row_h * (len(self.rows) + 3)
        x = max((self.width() - keys_w - desc_w) / 2, 10)
        y = max((self.height() - total_h) / 2, 10)
        panel = QRectF(x - 28, y - 20, keys_w + desc_w + 56, total_h + row_h * 0.8)
        painter.setPen(QColor(255, 179, 0, 160))
        painter.setBrush(QColor(24, 24, 28, 240))
        painter.drawRoundedRect(panel, 12, 12)
        title = QFont(font)
        title.setBold(True)
        title.setPointSizeF(font.pointSizeF() * 1.3)
        painter.setFont(title)
        painter.setPen(QColor(255, 255, 255))
        painter.drawText(QRectF(x, y, keys_w + desc_w, row_h), "Hotkeys")
        y += row_h * 1.3
        for keys, description in self.rows:
            painter.setFont(font)
            painter.setPen(QColor(255, 213, 79))
            painter.drawText(QRectF(x, y, keys_w, row_h), int(Qt.AlignmentFlag.AlignLeft), keys)
            painter.setPen(QColor(240, 240, 240))
            painter.drawText(QRectF(x + keys_w, y, desc_w, row_h),
                             int(Qt.AlignmentFlag.AlignLeft), description)
            y += row_h
        painter.setPen(QColor(190, 190, 190))
        painter.drawText(QRectF(x, y + row_h * 0.3, keys_w + desc_w, row_h * 2),
                         int(Qt.TextFlag.TextWordWrap),
                         GLOBAL_NOTE + "\nEsc or click to close")
        painter.end()
