"""``swapcam devices``: the cameras (index, name, backend) and the virtual-camera outputs
this machine has, with why an output cannot be used and how to fix it. Exit 0 even
when there are none: an empty list is an answer, not an error."""

from __future__ import annotations

import argparse
import json


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true",
                        help='machine-readable: {"cameras": [{"index", "name", "backend"}], '
                             '"virtual_camera": {...}}')


def render(data: dict) -> str:
    """The text form of ``devices.as_json``'s dictionary."""
    from realtime.io.device_messages import say

    lines = ["Cameras:"]
    cameras = data["cameras"]
    if not cameras:
        lines.append(f"  {say('no-cameras')}")
    for camera in cameras:
        extra = " (virtual-camera output)" if camera.get("virtual") else ""
        path = f"  {camera['path']}" if camera.get("path") and camera["backend"] == "V4L2" else ""
        lines.append(f"  {camera['index']:>2}  {camera['name']}  [{camera['backend']}]"
                     f"{path}{extra}")
    lines += [f"  note: {note}" for note in data.get("notes", [])]
    lines.append("Virtual camera:")
    backends = data["virtual_camera"]["backends"]
    if not backends:
        lines.append(f"  {say('no-virtual-backend')}")
    for backend in backends:
        if backend["usable"]:
            lines.append(f"  {backend['label']}: ready ({', '.join(backend['devices'])})")
        else:
            lines.append(f"  {backend['label']}: not usable: {backend['reason']}")
            lines.append(f"    fix: {backend['fix']}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from realtime.io import devices

    data = devices.as_json(devices.list_cameras(), devices.virtual_cameras())
    print(json.dumps(data, indent=2) if args.json else render(data))
    return 0
