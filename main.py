"""swapcam: real-time face swapping for a webcam, with a virtual camera.

The only entry point and the only place that exits. Each subcommand lives in the
module that owns it, which provides ``configure_parser(parser)`` (cheap imports
only, so ``--help`` is instant) and ``run(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

# subcommand -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "live": ("realtime.cli.live", "swap faces on a camera or video stream in real time"),
    "swap": ("realtime.cli.swap", "swap faces in photos and video files"),
    "detect": ("realtime.cli.detect", "show the faces found in photos (boxes, five points)"),
    "models": ("engines.models_cli", "list, download, import and verify model files"),
    "export": ("export.export_cli", "convert checkpoints to ONNX and TensorRT engines"),
    "bench": ("realtime.cli.bench", "measure the pipeline's speed and latency"),
    "doctor": ("engines.doctor", "report GPU, drivers, runtimes and usable engines"),
    "devices": ("realtime.cli.devices", "list cameras by name and the virtual-camera outputs"),
    "install-shortcut": ("realtime.cli.shortcut",
                         "add swapcam to the desktop's menu (Linux, Windows, macOS)"),
    "selftest": ("realtime.cli.selftest",
                 "check every engine's models against ONNX Runtime CPU and time the pipeline"),
}

log = logging.getLogger("swapcam")


def _load(module_name: str) -> ModuleType | None:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            return None
        raise


def build_parser() -> argparse.ArgumentParser:
    from realtime.config import default_models_dir

    parser = argparse.ArgumentParser(
        prog="swapcam",
        description="Real-time face swapping on a webcam (SimSwap, inswapper) with a "
        "virtual camera. With no subcommand, opens the window.",
    )
    parser.add_argument(
        "--models-dir",
        type=Path,
        default=None,
        help=f"where model files live (env SWAPCAM_MODELS_DIR; default {default_models_dir()})",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        module = _load(module_name)
        if module is not None:
            module.configure_parser(cmd)
        cmd.set_defaults(_module=module_name)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if rest:
        # the global options are also accepted after the subcommand ("swapcam models list
        # --models-dir D"); anything else left over is an error, as parse_args would say
        late = argparse.ArgumentParser(prog=parser.prog, add_help=False)
        late.add_argument("--models-dir", type=Path)
        late.add_argument("-v", "--verbose", action="store_true")
        extra, unknown = late.parse_known_args(rest)
        if unknown:
            parser.error(f"unrecognized arguments: {' '.join(unknown)}")
        if extra.models_dir is not None:
            args.models_dir = extra.models_dir
        args.verbose = args.verbose or extra.verbose
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if args.models_dir is None:
        from realtime.config import default_models_dir

        args.models_dir = default_models_dir()
    module_name = getattr(args, "_module", None) or "realtime.ui.app"
    module = _load(module_name)
    if module is None:
        label = args.command or "the window"
        print(f"swapcam: {label} is not yet available in this build", file=sys.stderr)
        return 2
    try:
        return int(module.run(args))
    except KeyboardInterrupt:
        print("swapcam: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # the one place that turns errors into an exit status
        if args.verbose:
            log.exception("failed")
        print(f"swapcam: error: {exc}", file=sys.stderr)
        return 1


def gui_main() -> int:
    """``swapcam-gui`` ([project.gui-scripts]: on Windows a program without a console
    window): the window, with the command line's options. Without a terminal (pythonw,
    Finder, the Start menu, a ``.desktop`` entry) output and log lines also go to
    ``swapcam.log`` in the user's log folder, and a failure is shown in a dialog."""
    from realtime.desktop import console

    if console.has_console():
        return main(sys.argv[1:])
    log_path = console.log_to_file()
    try:
        code = main(sys.argv[1:])
    except SystemExit as exc:  # argparse's usage errors (its message is in the log)
        code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    except BaseException:  # without a console nothing else would show it
        import traceback

        traceback.print_exc()
        print("swapcam: error: it stopped unexpectedly (the traceback is above)",
              file=sys.stderr)
        code = 1
    if code != 0:
        sys.stderr.flush()
        console.show_error_dialog(console.failure_text(log_path))
    return code


if __name__ == "__main__":
    sys.exit(main())
