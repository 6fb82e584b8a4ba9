"""First run and “Get more models…”: what each model is, its licence and size, and
Download (progress, cancel, resume) or Import from a file.

Downloads and imports run on one background thread; progress crosses to the GUI
thread through queued signals. Cancelling keeps the partial file, so the next
Download resumes where it stopped (``engines.models`` does the resuming).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from realtime.frame.streams import own_stream
from realtime.ui import controller as ctl

log = logging.getLogger(__name__)

# download(name, models_dir, progress(done_bytes, total_bytes), cancel) -> path
DownloadFn = Callable[[str, Path, Callable[[int, int], None], threading.Event], object]
ImportFn = Callable[[Path, Path], list[str]]


class ModelDialog(QDialog):
    """Lists ``names`` (model table entries) with Download / Import; ``installed`` names
    are emitted as they arrive. ``accept()`` once everything asked for is present."""

    installed = Signal(str)
    _progress = Signal(str, int, int)
    _finished = Signal(str, str)  # name, error ("" = fine)

    def __init__(
        self,
        models_dir: Path,
        names: Sequence[str],
        *,
        reason: str = "",
        download: DownloadFn = ctl.download_model,
        import_model: ImportFn = ctl.import_model,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Models")
        self.setMinimumWidth(560)
        self.models_dir = Path(models_dir)
        self.names = list(names)
        self._download = download
        self._import = import_model
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None
        self._pending: list[str] = []
        layout = QVBoxLayout(self)
        if reason:
            intro = QLabel(reason)
            intro.setWordWrap(True)
            layout.addWidget(intro)
        self.rows: dict[str, QLabel] = {}
        for name in self.names:
            label = QLabel(ctl.describe_model(name))
            label.setWordWrap(True)
            label.setTextFormat(Qt.TextFormat.RichText)
            label.setOpenExternalLinks(True)
            label.setStyleSheet("padding: 6px; border: 1px solid #444; border-radius: 4px;")
            layout.addWidget(label)
            self.rows[name] = label
        self.accept_licence = QCheckBox("I accept the licences above")
        self.accept_licence.setToolTip("Non-commercial research licences do not allow use "
                                       "in a product or a paid service")
        layout.addWidget(self.accept_licence)
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.status = QLabel(f"Models folder: {self.models_dir}")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        buttons = QHBoxLayout()
        self.download_button = QPushButton("Download")
        self.import_button = QPushButton("Import from file…")
        self.cancel_button = QPushButton("Cancel download")
        self.cancel_button.setEnabled(False)
        self.close_button = QPushButton("Close")
        for button in (self.download_button, self.import_button, self.cancel_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        buttons.addWidget(self.close_button)
        layout.addLayout(buttons)
        self.download_button.clicked.connect(self.start_download)
        self.import_button.clicked.connect(self._ask_import)
        self.cancel_button.clicked.connect(self.cancel)
        self.close_button.clicked.connect(self.reject)
        self._progress.connect(self._on_progress)
        self._finished.connect(self._on_finished)
        self.refresh()

    # -- state ------------------------------------------------------------------

    def missing(self) -> list[str]:
        return [n for n in self.names if ctl.model_state(self.models_dir, n) != "installed"]

    def refresh(self) -> None:
        for name, label in self.rows.items():
            label.setText(ctl.describe_model(name, ctl.model_state(self.models_dir, name)))
        busy = self._thread is not None
        self.download_button.setEnabled(not busy and bool(self.missing()))
        self.import_button.setEnabled(not busy)
        self.cancel_button.setEnabled(busy)

    @property
    def busy(self) -> bool:
        return self._thread is not None

    # -- download -----------------------------------------------------------------

    def start_download(self) -> None:
        if self._thread is not None:
            return
        if not self.accept_licence.isChecked():
            self.status.setText("Tick the licence box first: these weights carry their own "
                                "licences.")
            return
        self._pending = self.missing()
        if not self._pending:
            self.accept()
            return
        self._cancel.clear()
        self.progress.setVisible(True)
        self.progress.setRange(0, 0)
        self._run(self._download_all, self._pending[0])

    def _download_all(self) -> None:
        for name in list(self._pending):
            if self._cancel.is_set():
                return
            def report(done: int, total: int, n: str = name) -> None:
                self._progress.emit(n, done, total)

            try:
                self._download(name, self.models_dir, report, self._cancel)
            except BaseException as exc:  # shown in the dialog, the app stays usable
                self._finished.emit(name, "cancelled" if self._cancel.is_set() else str(exc))
                return
            self._finished.emit(name, "")

    def cancel(self) -> None:
        """Stop the download; the partial file is kept so Download resumes it."""
        self._cancel.set()
        self.status.setText("Cancelling… (the partial download is kept and resumed next time)")

    def _on_progress(self, name: str, done: int, total: int) -> None:
        if total > 0:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(1000 * done / total))
            self.status.setText(f"Downloading {name}: {done / 1e6:.1f} of {total / 1e6:.1f} MB")
        else:
            self.status.setText(f"Downloading {name}: {done / 1e6:.1f} MB")

    def _on_finished(self, name: str, error: str) -> None:
        if error:
            self._join()
            self.progress.setVisible(False)
            if error == "cancelled":
                self.status.setText(f"Download of {name} cancelled; Download resumes it.")
            else:
                self.status.setText(f"<b>Download of {name} failed:</b> {error}")
            self.refresh()
            return
        self.installed.emit(name)
        if name in self._pending:
            self._pending.remove(name)
        if not self._pending:
            self._join()
            self.progress.setVisible(False)
            self.refresh()
            if not self.missing():
                self.status.setText("All set.")
                self.accept()
        else:
            self.refresh()

    # -- import ---------------------------------------------------------------------

    def _ask_import(self) -> None:
        name, _ = QFileDialog.getOpenFileName(
            self, "Import a model file", "",
            "Model files (*.onnx *.pth *.tar *.zip);;All files (*)")
        if name:
            self.import_file(Path(name))

    def import_file(self, path: Path) -> None:
        """Import ``path`` off the GUI thread (hashing a large file takes a while)."""
        if self._thread is not None:
            return
        self.status.setText(f"Importing {path.name}…")
        self.progress.setVisible(True)
        self.progress.setRange(0, 0)

        def work() -> None:
            try:
                names = self._import(path, self.models_dir)
            except Exception as exc:
                self._finished.emit(path.name, f"import failed: {exc}")
                return
            for imported in names:
                self._finished.emit(imported, "")
            if not names:
                self._finished.emit(path.name, "import failed: not a known model file")

        self._pending = []
        self._run(work, path.name)

    # -- thread plumbing ------------------------------------------------------------

    def _run(self, fn: Callable[[], None], label: str) -> None:
        def on_own_stream() -> None:  # conversions build engines: not on the default stream
            with own_stream(load=True):
                fn()

        self._thread = threading.Thread(target=on_own_stream, name=f"swapcam-models-{label}",
                                        daemon=True)
        self._thread.start()
        self.refresh()

    def _join(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(5.0)

    def done(self, result: int) -> None:
        """Every way out (Close, Esc, accept) cancels and joins the worker."""
        if self._thread is not None:
            self._cancel.set()
            self._join()
        super().done(result)

    def closeEvent(self, event: QCloseEvent) -> None:
        if self._thread is not None:
            self._cancel.set()
            self._join()
        super().closeEvent(event)
