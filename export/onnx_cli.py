"""``swapcam export onnx``: a SimSwap checkpoint → ONNX, checked against torch."""

from __future__ import annotations

import argparse
from pathlib import Path

MODELS = ("simswap-224", "simswap-512", "arcface-simswap", "face-parsing", "gfpgan-1.4")


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, choices=MODELS,
                        help="which architecture the weights are for")
    parser.add_argument("--weights", required=True, type=Path, metavar="PATH",
                        help="latest_net_G.pth / 550000_net_G.pth / checkpoints.zip / "
                        "arcface_checkpoint.tar / 79999_iter.pth / GFPGANv1.4.pth")
    parser.add_argument("--output", required=True, type=Path, metavar="FILE.onnx")
    parser.add_argument("--tolerance", type=float, default=1e-4,
                        help="max abs difference allowed between ONNX Runtime and torch "
                        "(default 1e-4)")
    parser.add_argument("--exporter", choices=("torchscript", "dynamo"), default="torchscript",
                        help="torch's ONNX exporter (default torchscript: ~3× faster here)")


def run(args: argparse.Namespace) -> int:
    from export.onnx import export_onnx

    report = export_onnx(args.model, args.weights, args.output, progress=True,
                         tolerance=args.tolerance, exporter=args.exporter)
    print(f"wrote {report.output}")
    print(f"export: {report.export_seconds:.1f} s ({report.exporter}, opset {report.opset})")
    print(f"ONNX Runtime vs torch: max abs diff {report.max_abs_diff:.2e} "
          f"(tolerance {report.tolerance:.0e})")
    return 0
