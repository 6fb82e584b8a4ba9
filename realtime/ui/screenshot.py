"""Make docs/screenshot.png: the real window on the real pipeline, offscreen.

``python -m realtime.ui.screenshot docs/screenshot.png [--models-dir DIR]``
``python -m realtime.ui.screenshot docs/meter.jpg --meter --view swapped``: waits for
the identity meter's badges and gives the leftmost face the first source by a click's
path (``FacesRoom.assign_face``), so its badge names it.

The camera is insightface's ``t1.jpg`` (six people) played as a looping file; the
sources are package portraits (scikit-image's astronaut, matplotlib's Grace Hopper,
one face from ``t1.jpg``). Without ``--models-dir`` the models are random-weight
files in the official formats (``export.random_models``), so the swapped faces are
tinted: the picture shows the window, not a model's quality. Needs the dev
extra (scikit-image, matplotlib).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
from pathlib import Path
from typing import Any


def _package_faces(folder: Path) -> tuple[Path, list[Path]]:
    import cv2
    import numpy as np
    from matplotlib import cbook
    from skimage import data

    spec = importlib.util.find_spec("insightface")
    if spec is None or spec.origin is None:
        raise RuntimeError("insightface is not installed (its t1.jpg is the camera)")
    t1 = Path(spec.origin).parent / "data" / "images" / "t1.jpg"
    astronaut = folder / "Astronaut.png"
    cv2.imwrite(str(astronaut), np.ascontiguousarray(data.astronaut()[:, :, ::-1]))
    hopper = folder / "Grace Hopper.jpg"
    hopper.write_bytes(Path(str(cbook.get_sample_data("grace_hopper.jpg",
                                                      asfileobj=False))).read_bytes())
    third = folder / "Guest.png"
    image = cv2.imread(str(t1))
    if image is None:
        raise RuntimeError(f"cannot read {t1}")
    cv2.imwrite(str(third), image[60:420, 0:420])
    return t1, [astronaut, hopper, third]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path)
    parser.add_argument("--models-dir", type=Path, default=None)
    parser.add_argument("--size", default="1440x900")
    parser.add_argument("--wait", type=float, default=8.0, help="seconds of running first")
    parser.add_argument("--view", choices=("swapped", "side-by-side"), default="side-by-side")
    parser.add_argument("--meter", action="store_true",
                        help="shoot once the meter's per-face badges show (up to a minute "
                        "more), with the leftmost face assigned to the first source")
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from realtime.config import Settings
    from realtime.settings_store import SettingsStore
    from realtime.ui.app import apply_dark_palette
    from realtime.ui.controller import Controller
    from realtime.ui.main_window import MainWindow

    work = Path(tempfile.mkdtemp(prefix="swapcam-shot-"))
    models_dir = args.models_dir
    if models_dir is None:
        from export.random_models import populate_models_dir

        models_dir = populate_models_dir(work / "models", names=("inswapper-128",
                                                                  "arcface-w600k"))
    camera, sources = _package_faces(work)
    settings = Settings(
        models_dir=str(models_dir), model="inswapper-128", engine="onnxruntime-cpu",
        detector="dlib", camera=str(camera), sources=tuple(str(s) for s in sources),
        source_names=tuple(s.stem for s in sources), active_source=1, detect_every=5,
        # a group photo as the camera: its six ~100 px faces need a 960-wide search copy
        # (the default 640 finds only faces over ~160 px, 3 of the 6)
        detect_width=960,
        preview_mode=args.view, record_path=str(work / "recordings"),
        # random weights only tint a face, and colour matching would undo the tint:
        # off, so the picture shows which faces were swapped
        color_match=False,
    )
    app = QApplication(sys.argv[:1])
    app.setStyle("Fusion")
    apply_dark_palette(app)
    window = MainWindow(SettingsStore(work / "settings.toml"), settings,
                        Controller(Path(models_dir), work / "cache"))
    width, _, height = args.size.partition("x")
    window.resize(int(width), int(height))
    window.show()
    window.start()
    done: dict[str, bool] = {}

    def shoot() -> None:
        ready = len(window.gallery.ready_entries()) == len(sources)
        if (not ready or window.preview.result is None) and not done.get("waited"):
            done["waited"] = True  # one more chance on a slow machine
            QTimer.singleShot(5000, shoot)
            return
        if args.meter and not _meter_ready(window, done):
            QTimer.singleShot(2000, shoot)
            return
        args.output.parent.mkdir(parents=True, exist_ok=True)
        window.grab().save(str(args.output))
        done["saved"] = True
        window.close()
        app.quit()

    QTimer.singleShot(int(args.wait * 1000), shoot)
    app.exec()
    if not done.get("saved"):
        print("screenshot: not saved", file=sys.stderr)
        return 1
    print(f"saved {args.output}")
    return 0


def _meter_ready(window: Any, done: dict[str, Any]) -> bool:
    """True once badges show the meter (or after about a minute of trying); assigns the
    leftmost face the first source on the way."""
    done["tries"] = done.get("tries", 0) + 1
    result = window.preview.result
    if result is not None and result.faces and not done.get("assigned"):
        leftmost = min(result.faces, key=lambda f: float(f.box[0]))
        names = [s.name for s in window.controller.sources()]
        if names:
            window.faces.assign_face(leftmost.track_id, names[0])
            done["assigned"] = True
    scored = any(t.startswith("ID ") for t in window.preview.face_badges.values())
    return (scored and done.get("assigned", False)) or done["tries"] > 30


if __name__ == "__main__":
    sys.exit(main())
