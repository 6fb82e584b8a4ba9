"""``swapcam install-shortcut [--remove]``: the desktop's menu entry for the window
(Linux .desktop + hicolor icon, Windows Start menu, macOS ~/Applications)."""

from __future__ import annotations

import argparse


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--remove", action="store_true",
                        help="remove the menu entry and its icon instead")


def run(args: argparse.Namespace) -> int:
    from realtime.desktop.shortcut import install

    result = install(remove=args.remove)
    print(result.message)
    for path in result.changed:
        print(f"  {path}")
    return 0
