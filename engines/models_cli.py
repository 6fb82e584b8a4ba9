"""``swapcam models {list,download,import,verify}``: manage the models folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engines import models


def configure_parser(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    sub.add_parser("list", help="show each model: status, size, licence")
    download = sub.add_parser(
        "download", help="download models (shows the licence; asks unless --accept-licence)")
    download.add_argument("names", nargs="+", metavar="NAME",
                          choices=[*models.MODELS, "all"], help="model name(s), or 'all'")
    download.add_argument("--accept-licence", "--accept-license", action="store_true",
                          dest="accept_licence", help="accept the models' licences")
    download.add_argument("--base-url", default=None, metavar="URL",
                          help="fetch <URL>/<file name> instead of the official mirrors")
    download.add_argument("--force", action="store_true",
                          help="download again even when the installed file verifies")
    imp = sub.add_parser("import", help="install files or archives you downloaded by hand")
    imp.add_argument("path", type=Path, metavar="PATH",
                     help="an official file or archive (checkpoints.zip, buffalo_l.zip, ...) "
                     "or a folder holding them")
    imp.add_argument("--as", dest="as_name", choices=list(models.MODELS), default=None,
                     metavar="NAME", help="the model PATH is (for renamed files)")
    verify = sub.add_parser("verify", help="hash installed files against their sha256")
    verify.add_argument("names", nargs="*", metavar="NAME",
                        help="model name(s); default: every installed model")


def _size(path: Path, info: models.ModelInfo) -> str:
    if path.is_file():
        return f"{path.stat().st_size / 1e6:.0f} MB"
    return f"~{info.size_mb:.0f} MB"


def _list(models_dir: Path) -> int:
    rows = [("NAME", "STATUS", "SIZE", "LICENCE")]
    for name, info in models.MODELS.items():
        status = models.model_status(models_dir, name)
        rows.append((name, status, _size(models.model_path(models_dir, name), info),
                     f"{info.licence_name} <{info.licence_url}>"))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    print(f"models folder: {models_dir}")
    for row in rows:
        print("  ".join(cell.ljust(widths[i]) if i < 3 else cell for i, cell in enumerate(row)))
    return 0


def _ask_licence(name: str) -> bool:
    print(models.licence_text(name))
    if not sys.stdin.isatty():
        return False
    answer = input(f"Accept the licence for {name}? [y/N] ").strip().lower()
    return answer in ("y", "yes")


def _download(args: argparse.Namespace) -> int:
    names = list(models.MODELS) if "all" in args.names else list(dict.fromkeys(args.names))
    for name in names:
        accepted = bool(args.accept_licence)
        if accepted:
            print(models.licence_text(name))
        elif not _ask_licence(name):
            raise models.LicenceNotAccepted(
                f"{name}: licence not accepted; nothing was downloaded "
                "(answer y at the prompt, or pass --accept-licence)")
        path = models.download_model(name, args.models_dir, accept_licence=True,
                                     base_url=args.base_url, force=args.force)
        print(f"{name}: {models.model_status(args.models_dir, name)} {path}")
    return 0


def _import(args: argparse.Namespace) -> int:
    imported = models.import_model(args.path, args.models_dir, args.as_name)
    for name in imported:
        print(f"{name}: imported {models.model_path(args.models_dir, name)}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    for name in args.names:
        if name not in models.MODELS:
            raise models.UnknownModel(name)
    names = args.names or [n for n in models.MODELS
                           if models.model_status(args.models_dir, n) != "missing"]
    failed = 0
    for name in names:
        if models.model_status(args.models_dir, name) == "missing":
            print(f"{name}: missing")
            failed += 1
            continue
        ok = models.verify_model(args.models_dir, name)
        print(f"{name}: {'verified' if ok else 'CORRUPT (download or import it again)'}")
        failed += not ok
    if not names:
        print(f"no models installed in {args.models_dir}")
    return 1 if failed else 0


def run(args: argparse.Namespace) -> int:
    models_dir = Path(args.models_dir)
    args.models_dir = models_dir
    command = args.models_command
    if command == "list":
        return _list(models_dir)
    if command == "download":
        return _download(args)
    if command == "import":
        return _import(args)
    return _verify(args)
