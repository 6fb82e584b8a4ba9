"""The strips above the preview: errors (with Restart) and missing models, and the
signal that carries conversion progress from the engine worker to the GUI thread.

A new strip is a ``Banner`` with its colour and buttons (``add_button``); the window
puts it in the column above the preview (``MainWindow._build_ui``) and hands it to the
room that shows it, in that room's constructor.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QWidget


class Banner(QFrame):
    """A coloured strip: a wrapped, selectable message, buttons, and Dismiss; hidden
    until shown."""

    def __init__(self, colour: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("banner")
        self.setStyleSheet(f"#banner {{ background: {colour}; border-radius: 4px; }} "
                           "QLabel { color: #fff; }")
        self._layout = QHBoxLayout(self)
        self._layout.setContentsMargins(10, 6, 6, 6)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._layout.addWidget(self.label, 1)
        self.dismiss = QPushButton("Dismiss")
        self.dismiss.clicked.connect(self.clear)
        self._layout.addWidget(self.dismiss)
        self.hide()

    def add_button(self, text: str) -> QPushButton:
        """A button before Dismiss; the room that shows the strip connects it."""
        button = QPushButton(text)
        self._layout.insertWidget(self._layout.count() - 1, button)
        return button

    def clear(self) -> None:
        self.hide()


class ErrorBanner(Banner):
    """A red strip with the newest message; earlier ones in the tooltip."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("#5c1d1d", parent)
        self.messages: list[str] = []
        self.action = self.add_button("Restart")
        self.action.setVisible(False)

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


class ModelsBanner(Banner):
    """An amber strip saying which models are missing, with a button that opens the
    Models dialog. It never opens the dialog by itself (the window stays explorable)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("#5a4300", parent)
        self.button = self.add_button("Get models…")
        self.names: tuple[str, ...] = ()

    def show_missing(self, model: str, names: tuple[str, ...]) -> None:
        self.names = names
        self.label.setText(f"To swap faces with {model}, swapcam needs {', '.join(names)}. "
                           "The camera works meanwhile.")
        self.show()


class StageSignal(QObject):
    """Carries ``on_stage`` calls from the engine worker to the GUI thread (queued)."""

    stage = Signal(str, int, int, str)  # model, done, total, what


class NoticeBanner(Banner):
    """An amber strip with a notice from the running pipeline (GPU memory short: what was
    turned off). Dismiss hides it until the notice changes."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("#5a4300", parent)
        self.shown: str | None = None

    def show_notice(self, notice: str | None) -> None:
        if not notice or notice == self.shown:
            return
        self.shown = notice
        self.label.setText(notice)
        self.show()
