"""realtime.io.clip without the dev extras (issue 15 item 7): the bench clip and its
source portrait come from images the runtime install has (insightface's t1.jpg)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

# Makes importing matplotlib or scikit-image fail, as in a venv made with the README's
# install command (no '[dev]').
BLOCK_DEV_EXTRAS = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('matplotlib', 'skimage'):
            raise ModuleNotFoundError(f"No module named {name!r}")
        return None
sys.meta_path.insert(0, Block())
"""


def test_clip_and_source_portrait_need_no_dev_extras() -> None:
    """Before: ``No module named 'skimage'`` (then 'matplotlib')."""
    code = BLOCK_DEV_EXTRAS + """
from realtime.io.clip import SyntheticClip, source_portrait
frame = SyntheticClip(640, 480).render(0)
portrait = source_portrait()
assert frame.shape == (480, 640, 3) and portrait.ndim == 3
assert 'matplotlib' not in sys.modules and 'skimage' not in sys.modules
print('ok')
"""
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_source_portrait_holds_one_detectable_face(tmp_path: Path) -> None:
    from realtime.faces.detect import make_detector
    from realtime.io.clip import source_portrait

    detector = make_detector("auto", tmp_path)
    faces = detector.detect(source_portrait())
    assert len(faces) == 1
