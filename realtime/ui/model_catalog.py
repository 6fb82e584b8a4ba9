"""The model table as the window shows it (engines.models / engines.registry)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from realtime.ui.runtime import REQUIRED_MODELS


def model_state(models_dir: Path, name: str) -> str:
    """"installed", "missing" or "corrupt" (the model table says which file is whose)."""
    from engines import models

    status = models.model_status(models_dir, name)
    return "installed" if status in ("present", "verified") else str(status)


def installed_swappers(models_dir: Path) -> list[str]:
    """Swapper models whose files (and identity encoder's) are all installed."""
    try:
        return [name for name in REQUIRED_MODELS
                if all(model_state(models_dir, n) == "installed" for n in REQUIRED_MODELS[name])]
    except ImportError:
        return []


def describe_model(name: str, state: str = "") -> str:
    """Rich text for the model dialog: title, licence (link), size, state."""
    from html import escape

    try:
        from engines.models import MODELS
    except ImportError:
        return f"<b>{escape(name)}</b>"
    info = MODELS.get(name)
    if info is None:
        return f"<b>{escape(name)}</b> (not in the model table)"
    licence = escape(str(info.licence))
    if getattr(info, "licence_url", ""):
        licence += (f' <a style="color:#ffb300" href="{escape(str(info.licence_url))}">'
                    "read the licence</a>")
    badge = {"installed": "✔ installed", "missing": "not installed",
             "corrupt": "⚠ corrupt: download or import again"}.get(state, state)
    return (f"<b>{escape(str(info.title))}</b> <span style='color:#999'>({escape(name)})</span>"
            f"<br>Licence: {licence} · about {float(info.size_mb):.0f} MB"
            + (f" · <i>{escape(badge)}</i>" if badge else ""))


def download_model(name: str, models_dir: Path, progress: Callable[[int, int], None],
                   cancel: threading.Event) -> object:
    """``engines.models.download_model`` with a progress callback and a cancel event
    (the dialog has already asked for the licence)."""
    from engines import models

    return models.download_model(name, models_dir, accept_licence=True, progress=progress,
                                 cancel=cancel)


def import_model(src: Path, models_dir: Path) -> list[str]:
    from engines import models

    return list(models.import_model(src, models_dir))


def engine_status() -> dict[str, str | None]:
    """Each backend → None when usable, else why not (and how to get it)."""
    try:
        from engines.registry import backend_status
    except ImportError as exc:
        return {"onnxruntime-cpu": None, "tensorrt": f"engine registry missing ({exc})",
                "onnxruntime-cuda": f"engine registry missing ({exc})"}
    return dict(backend_status())
