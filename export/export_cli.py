"""``swapcam export {onnx,tensorrt}``: each target delegates to the module that owns it."""

from __future__ import annotations

import argparse
import importlib

TARGETS = {
    "onnx": ("export.onnx_cli", "checkpoint (.pth / .tar / .zip) → ONNX, checked against torch"),
    "tensorrt": ("export.tensorrt_cli", "ONNX → TensorRT engine (needs an NVIDIA GPU)"),
}


def configure_parser(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="target", metavar="TARGET", required=True)
    for name, (module_name, help_text) in TARGETS.items():
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        module.configure_parser(cmd)


def run(args: argparse.Namespace) -> int:
    module_name = TARGETS[args.target][0]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        raise RuntimeError(f"export {args.target} is not yet available in this build") from exc
    return int(module.run(args))
