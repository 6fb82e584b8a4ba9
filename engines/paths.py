"""Where the app keeps its models: one place, so ``engines`` need not ask ``realtime``."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "swapcam"


def default_models_dir() -> Path:
    """``$SWAPCAM_MODELS_DIR`` or the per-user data folder."""
    env = os.environ.get("SWAPCAM_MODELS_DIR")
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_data_dir(APP_NAME)) / "models"


def default_cache_dir() -> Path:
    """``$SWAPCAM_CACHE_DIR`` or the per-user cache folder: derived files built from files
    outside the models folder (never beside a user's own file, which may be read-only)."""
    env = os.environ.get("SWAPCAM_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_cache_dir(APP_NAME))
