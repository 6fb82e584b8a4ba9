"""The window's stats show "preparing the enhancer…" while the enhancer is built (frames go
on without it), then the engine it runs on; nothing while "Enhance face" is off."""

from __future__ import annotations

import threading
from pathlib import Path

from realtime.frame.enhance import FaceEnhancer, LazyEnhancer
from realtime.ui import controller as ctl
from realtime.ui.runtime import Runtime
from realtime.ui.window_lifecycle import enhancer_note
from tests.realtime.frame.test_enhance import IdentityGfpgan


def test_the_stats_line_follows_the_enhancers_build(tmp_path: Path) -> None:
    release = threading.Event()

    def opener() -> FaceEnhancer:
        release.wait(30)
        return FaceEnhancer(IdentityGfpgan())

    lazy = LazyEnhancer(opener)
    controller = ctl.Controller(tmp_path / "models", tmp_path / "cache")
    assert controller.enhancer_status == ""  # nothing built yet
    controller._runtime = Runtime(pipeline=object(), bank=object(),  # type: ignore[arg-type]
                                  backend="onnxruntime-cpu", input_description="clip",
                                  enhancer_status=lambda: lazy.status_text)
    assert controller.enhancer_status == ""  # not asked for yet
    assert lazy.get() is None  # the first swap with "Enhance face" on starts the build
    try:
        assert enhancer_note("gfpgan", controller.enhancer_status) == \
            "<br>preparing the enhancer…"
        assert enhancer_note("off", controller.enhancer_status) == ""
    finally:
        release.set()
    assert lazy.wait(10) is not None
    assert enhancer_note("gfpgan", controller.enhancer_status) == "<br>enhancer on fake"
