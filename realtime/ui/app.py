"""The desktop app's entry points: ``run`` (``python main.py`` with no subcommand) and
``run_window`` (``python main.py live`` without ``--no-window``)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from realtime.config import Settings, default_cache_dir

log = logging.getLogger(__name__)

# live-CLI option name -> Settings field (only those the user actually gave win)
ARG_FIELDS: dict[str, str] = {
    "camera": "camera", "input": "camera", "model": "model", "engine": "engine",
    "detector": "detector", "faces": "faces", "det_threshold": "det_threshold",
    "detect_every": "detect_every", "detect_width": "detect_width", "feather": "feather",
    "width": "camera_width", "height": "camera_height", "fps": "camera_fps",
    "swap_mode": "swap_mode", "mask": "mask", "max_faces": "max_faces",
    "identity_strength": "identity_strength", "enhance": "enhance",
    "enhance_blend": "enhance_blend",
}


def settings_from_args(settings: Settings, args: argparse.Namespace) -> Settings:
    """Command-line choices on top of the saved settings (command line wins)."""
    changes: dict[str, Any] = {}
    for option, name in ARG_FIELDS.items():
        value = getattr(args, option, None)
        if value is not None and not isinstance(value, bool):
            default = getattr(settings, name)
            changes[name] = type(default)(value)
    sources = getattr(args, "source", None) or getattr(args, "sources", None)
    if sources:
        given = [str(Path(s)) for s in (sources if isinstance(sources, list | tuple)
                                        else [sources])]
        merged = list(settings.sources) + [s for s in given if s not in settings.sources]
        names = list(settings.source_names)[: len(settings.sources)]
        names += [Path(s).stem for s in merged[len(names):]]
        changes["sources"], changes["source_names"] = tuple(merged), tuple(names)
    size = getattr(args, "size", None)
    if isinstance(size, str) and "x" in size.lower():
        width, _, height = size.lower().partition("x")
        changes["camera_width"], changes["camera_height"] = int(width), int(height)
    record = getattr(args, "record", None)
    if record is not None:
        changes["record_path"] = str(Path(record).expanduser().parent)
    if getattr(args, "virtual_cam", None) is True:
        changes["virtual_cam"] = True
    if getattr(args, "models_dir", None) is not None:
        changes["models_dir"] = str(args.models_dir)
    return settings.with_changes(**changes) if changes else settings


def run_window(args: argparse.Namespace) -> int:
    """Open the window and run the Qt event loop until it closes."""
    from realtime.desktop import process

    process.load_torch_before_qt()  # Windows: torch's DLLs before Qt's (WinError 1114)
    from PySide6.QtWidgets import QApplication

    from realtime.settings_store import SettingsStore
    from realtime.ui.controller import Controller
    from realtime.ui.main_window import MainWindow

    process.set_app_user_model_id()  # Windows: taskbar groups it as swapcam, not pythonw
    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication(sys.argv[:1])
    app.setApplicationName("swapcam")
    app.setStyle("Fusion")
    app.setWindowIcon(window_icon())
    # the .desktop file's name (install-shortcut): Wayland's app id, so the dock shows our icon
    app.setDesktopFileName("swapcam")
    apply_dark_palette(app)
    config = getattr(args, "config", None)
    store = SettingsStore(Path(config) if config else None)
    loaded = store.load()
    settings = settings_from_args(loaded.settings, args)
    controller = Controller(Path(settings.models_dir), default_cache_dir())
    window = MainWindow(store, settings, controller,
                        startup_warning=startup_message(loaded))
    record = getattr(args, "record", None)
    if record is not None:  # `live --record OUT`: start recording to that file once running
        window.outputs.record_on_start = Path(record).expanduser()
    window.show()
    window.start()
    restore_signals = close_on_signals(window)
    from realtime.ui.console_close import ConsoleCloseGuard

    console_guard = ConsoleCloseGuard(window)  # Windows: the console window's close button
    console_guard.install()
    from realtime.ui import session_end

    session_guard = session_end.install(app, window.shutdown)  # Windows: log-off, shut-down
    end_activity = process.hold_activity()  # macOS: no App Nap while the window runs
    seconds = getattr(args, "seconds", None)
    if isinstance(seconds, int | float) and seconds > 0:
        from PySide6.QtCore import QTimer

        QTimer.singleShot(int(seconds * 1000), window.close)
    try:
        return int(app.exec())
    finally:
        window.shutdown()
        console_guard.shut_down()
        restore_signals()
        end_activity()
        if session_guard is not None:
            app.removeNativeEventFilter(session_guard)


def startup_message(loaded: Any) -> str | None:
    """The settings store's warning plus, when it reset values it could not use, a line
    naming each reset key (``LoadResult.reset_keys``)."""
    parts = [loaded.warning] if getattr(loaded, "warning", None) else []
    reset = tuple(getattr(loaded, "reset_keys", ()) or ())
    if reset and not any(all(k in p for k in reset) for p in parts):
        backup = getattr(loaded, "backup", None)
        kept = f"; your file was kept as {backup}" if backup else ""
        parts.append(f"Settings reset to their defaults (the saved values were not usable): "
                     f"{', '.join(reset)}{kept}.")
    return " ".join(parts) or None


def window_icon() -> Any:
    """swapcam's own icon (``realtime/desktop/assets``), every PNG size."""
    from PySide6.QtCore import QSize
    from PySide6.QtGui import QIcon

    from realtime.desktop.icons import png_paths

    icon = QIcon()
    for size, path in png_paths().items():
        icon.addFile(str(path), QSize(size, size))
    return icon


def close_signal_names(platform: str | None = None) -> tuple[str, ...]:
    """The signals that close the window, for ``sys.platform`` (or ``platform``).

    POSIX: SIGTERM (``kill``, a session ending), SIGINT (Ctrl-C) and SIGHUP (the
    terminal closed). Windows has no SIGTERM from outside (``taskkill /F`` is
    TerminateProcess, which no program sees): Ctrl-C is SIGINT and Ctrl-Break is
    SIGBREAK. Closing the console window is handled by ``realtime.ui.console_close``
    (Windows ends the process as soon as a handler returns, too soon for a signal).
    """
    name = sys.platform if platform is None else platform
    if name in ("win32", "cygwin"):
        return ("SIGINT", "SIGBREAK")
    return ("SIGTERM", "SIGINT", "SIGHUP")


def close_on_signals(window: Any) -> Callable[[], None]:
    """The signals of ``close_signal_names`` close the window like its close button:
    settings saved, recording finished, threads stopped. Returns a function that puts
    the previous handlers back."""
    import signal

    from PySide6.QtCore import QTimer

    def handler(signum: int, _frame: object) -> None:
        log.info("signal %s: closing the window", signum)
        QTimer.singleShot(0, window.close)

    numbers = [getattr(signal, n) for n in close_signal_names() if hasattr(signal, n)]
    previous = {signum: signal.signal(signum, handler) for signum in numbers}
    # Python runs signal handlers only between bytecodes: without a timer it would wait
    # for the next Qt event that calls into Python.
    tick = QTimer(window)
    tick.timeout.connect(lambda: None)
    tick.start(200)

    def restore() -> None:
        tick.stop()
        for signum, old in previous.items():
            signal.signal(signum, old)

    return restore


def run(args: argparse.Namespace) -> int:
    """``python main.py`` with no subcommand: the window."""
    return run_window(args)


def apply_dark_palette(app: Any) -> None:
    """A dark theme: the preview is the star, the chrome stays out of its way."""
    from PySide6.QtGui import QColor, QPalette

    palette = QPalette()
    colours = {
        QPalette.ColorRole.Window: QColor(37, 37, 40),
        QPalette.ColorRole.WindowText: QColor(230, 230, 230),
        QPalette.ColorRole.Base: QColor(28, 28, 30),
        QPalette.ColorRole.AlternateBase: QColor(45, 45, 48),
        QPalette.ColorRole.Text: QColor(230, 230, 230),
        QPalette.ColorRole.Button: QColor(52, 52, 56),
        QPalette.ColorRole.ButtonText: QColor(230, 230, 230),
        QPalette.ColorRole.Highlight: QColor(255, 179, 0),
        QPalette.ColorRole.HighlightedText: QColor(20, 20, 20),
        QPalette.ColorRole.ToolTipBase: QColor(50, 50, 54),
        QPalette.ColorRole.ToolTipText: QColor(230, 230, 230),
    }
    for role, colour in colours.items():
        palette.setColor(role, colour)
    palette.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text, QColor(120, 120, 120))
    palette.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.ButtonText,
                     QColor(120, 120, 120))
    app.setPalette(palette)
