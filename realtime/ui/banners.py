"""The strips above the preview: errors (with Restart) and missing models, and the
signal that carries conversion progress from the engine worker to the GUI thread."""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QWidget


class ErrorBanner(QFrame):
    """A red strip with the newest message; earlier ones in the tooltip."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.messages: list[str] = []
        self.setStyleSheet("ErrorBanner { background: #5c1d1d; border-radius: 4px; } "
                           "QLabel { color: #fff; }")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 6, 6)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.action = QPushButton("Restart")
        self.action.setVisible(False)
        dismiss = QPushButton("Dismiss")
        dismiss.clicked.connect(self.clear)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.action)
        layout.addWidget(dismiss)
        self.hide()

    def show_message(self, message: str, *, restart: bool = False) -> None:
        self.messages.append(message)
        shown = message if len(message) < 600 else message[:600] + "…"
        more = f"  ({len(self.messages)} messages)" if len(self.messages) > 1 else ""
        self.label.setText(shown + more)
        self.setToolTip("\n\n".join(self.messages[-10:]))
        self.action.setVisible(restart)
        self.show()

    def clear(self) -> None:
        self.messages.clear()
        self.hide()


class ModelsBanner(QFrame):
    """An amber strip saying which models are missing, with a button that opens the
    Models dialog. It never opens the dialog by itself (the window stays explorable)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setStyleSheet("ModelsBanner { background: #5a4300; border-radius: 4px; } "
                           "QLabel { color: #fff; }")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 6, 6)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.button = QPushButton("Get models…")
        dismiss = QPushButton("Dismiss")
        dismiss.clicked.connect(self.hide)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.button)
        layout.addWidget(dismiss)
        self.names: tuple[str, ...] = ()
        self.hide()

    def show_missing(self, model: str, names: tuple[str, ...]) -> None:
        self.names = names
        self.label.setText(f"To swap faces with {model}, swapcam needs {', '.join(names)}. "
                           "The camera works meanwhile.")
        self.show()


class StageSignal(QObject):
    """Carries ``on_stage`` calls from the engine worker to the GUI thread (queued)."""

    stage = Signal(str, int, int, str)  # model, done, total, what
