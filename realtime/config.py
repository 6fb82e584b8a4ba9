"""One immutable settings object: defaults → TOML file → command line.

``Settings`` is frozen; a change makes a new object with ``dataclasses.replace``
and the pipeline swaps it in atomically. Persistence (TOML in the user's config
folder, atomic write, backup of an invalid file) lives in ``realtime/settings_store.py``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal, get_args

import platformdirs

from engines.paths import APP_NAME, default_models_dir

__all__ = ["APP_NAME", "default_models_dir"]  # re-exported: settings name both

ModelName = Literal["simswap-224", "simswap-512", "inswapper-128"]
# the runtimes engines.registry.open_engine can run an ONNX file on (see PREFERENCES there)
EngineChoice = Literal["auto", "tensorrt", "onnxruntime-cuda", "onnxruntime-directml",
                       "onnxruntime-coreml", "onnxruntime-cpu", "openvino"]
DetectorChoice = Literal["auto", "scrfd", "retinaface", "dlib"]
SwapMode = Literal["auto", "sync", "async"]
PreviewMode = Literal["swapped", "original", "side-by-side"]
# box: the rounded-rectangle region mask; parsing: SimSwap's face-parsing mask (BiSeNet)
# inside it; auto: parsing when the face-parsing model is installed, else box
MaskMode = Literal["auto", "box", "parsing"]
MASK_MODES: tuple[str, ...] = ("auto", "box", "parsing")

MODEL_NAMES: tuple[str, ...] = ("simswap-224", "simswap-512", "inswapper-128")


def default_config_path() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME)) / "settings.toml"


def default_cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir(APP_NAME))


@dataclass(frozen=True)
class Settings:
    """Everything a user can choose. Paths are strings so the object maps to TOML."""

    models_dir: str = field(default_factory=lambda: str(default_models_dir()))
    # input
    camera: str = "0"  # camera index, device path, or a video/image/folder path
    camera_width: int = 1280
    camera_height: int = 720
    camera_fps: float = 30.0
    # identities
    sources: tuple[str, ...] = ()
    sources_dir: str = ""
    # photos of ``sources_dir`` the user removed from the gallery: not added back at start
    removed_sources: tuple[str, ...] = ()
    # the window's gallery: a display name per entry of ``sources`` (an entry holding
    # several photos of one person joins their paths with os.pathsep)
    source_names: tuple[str, ...] = ()
    active_source: int = 0
    # models
    model: str = "simswap-224"
    engine: str = "auto"
    detector: str = "auto"
    # which faces
    faces: str = "all"  # "all" | "largest" | "match:/path/to/ref.jpg"
    match_threshold: float = 0.45
    det_threshold: float = 0.5
    detect_every: int = 5
    # faces swapped per frame at most, largest first (each costs a model call: 27 faces
    # took 35 s per swap on a CPU)
    max_faces: int = 4
    # width of the copy the detector searches (RetinaFace, dlib); larger finds smaller
    # faces, costs more CPU (SCRFD ignores it)
    detect_width: int = 640
    # composite
    feather: float = 0.08  # fraction of the face size
    # off: SimSwap's own paste has no colour matching (its generator keeps the target's
    # colours); an option for models or lighting where it helps
    color_match: bool = False
    mask: str = "auto"  # MaskMode
    swap_mode: str = "auto"
    swap_enabled: bool = True
    # between two swaps (async): "static" re-pastes the newest texture, "flow" warps it
    # with the face's own motion since it was swapped, "auto" is flow when async
    texture: str = "auto"
    live_mouth: bool = False  # take the current frame's inner mouth over the texture
    # cross-fade from the old texture to a new one over this many ms (0: replace at once)
    fade_ms: float = 250.0
    # which face the async swap worker refreshes next: "stalest" (fair turns), "error"
    # (the face the shown texture fits worst, within a bound), "auto" (error with flow)
    refresh_order: str = "auto"
    # identity per person: "REF.jpg=SOURCE.jpg" entries (``--map``), and what faces no
    # entry or click assigns wear: "source" (the active one) or "leave" (not swapped)
    face_map: tuple[str, ...] = ()
    unassigned_faces: str = "source"
    # how far the swap moves from the target's own identity towards the source's:
    # 1 = the model's own behaviour, 0 = the target's, 2 = twice as far (frame/strength.py)
    identity_strength: float = 1.0
    # face enhancer after the swap (on the swap worker live): off | gfpgan (GFPGAN 1.4,
    # Apache-2.0); enhance_blend mixes the enhanced face with the plain swap
    enhance: str = "off"
    enhance_blend: float = 0.7
    # the identity meter (on the swap worker, a few times a second; preview only)
    quality_meter: bool = True
    # outputs
    preview_mode: str = "swapped"
    virtual_cam: bool = False
    vcam_width: int = 1280
    vcam_height: int = 720
    vcam_fps: float = 30.0
    ai_label: bool = True
    record_path: str = ""
    # system-wide hotkeys (pynput), off by default
    global_hotkeys: bool = False
    # window
    window_geometry: str = ""

    def with_changes(self, **changes: Any) -> Settings:
        """A copy with ``changes`` applied, each checked against its rule in ``RULES``
        (``SettingError`` names the key); unknown names raise ``TypeError``."""
        names = {f.name for f in fields(self)}
        checked = {key: validate_setting(key, value) if key in names else value
                   for key, value in changes.items()}
        return replace(self, **checked)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Settings:
        """Build from a mapping, ignoring unknown keys; every value is checked against
        its rule in ``RULES``. Raises ``SettingError`` (a ``ValueError``) naming the key
        of the first unusable value."""
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            if f.name in data:
                kwargs[f.name] = validate_setting(f.name, data[f.name])
        return cls(**kwargs)


# -- validation -------------------------------------------------------------------------


class SettingError(ValueError):
    """A setting's value is unusable; ``key`` names the setting."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"setting {key!r}: {message}")
        self.key = key


@dataclass(frozen=True)
class Number:
    """An int (``integer``) or a finite float within [low, high] (ends open when asked)."""

    low: float
    high: float
    integer: bool = False
    low_open: bool = False
    high_open: bool = False

    def describe(self) -> str:
        left = "(" if self.low_open else "["
        right = ")" if self.high_open else "]"
        kind = "an integer" if self.integer else "a finite number"
        return f"{kind} in {left}{self.low:g}, {self.high:g}{right}"


@dataclass(frozen=True)
class Choice:
    values: tuple[str, ...]


@dataclass(frozen=True)
class Flag:
    pass


@dataclass(frozen=True)
class Text:
    """A string; ``check`` returns what is wrong with it, or None."""

    check: Callable[[str], str | None] | None = None


@dataclass(frozen=True)
class TextList:
    """A list of strings, each passing ``check``."""

    check: Callable[[str], str | None] | None = None


Rule = Number | Choice | Flag | Text | TextList


def _plain_text(text: str) -> str | None:
    return "holds a NUL character" if "\0" in text else None


def _not_empty(text: str) -> str | None:
    return "is empty" if not text.strip() else _plain_text(text)


def _faces_mode(text: str) -> str | None:
    if text in ("all", "largest"):
        return None
    if text.startswith("match:") and text[len("match:"):].strip():
        return _plain_text(text)
    return "expected all, largest or match:REF.jpg"


def _face_map_entry(text: str) -> str | None:
    ref, sep, source = text.partition("=")
    if not sep or not ref.strip() or not source.strip():
        return "expected REF.jpg=SOURCE.jpg entries"
    return _plain_text(text)


def _source_entry(text: str) -> str | None:
    # one identity: a path, or several joined with os.pathsep
    if not text.strip() or any(not p.strip() for p in text.split(os.pathsep)):
        return "holds an empty path"
    return _plain_text(text)


_SIZE = Number(16, 16384, integer=True)
# One rule per Settings field (tests/realtime/test_settings_validation.py fails for a
# field without one).
RULES: dict[str, Rule] = {
    "models_dir": Text(_not_empty),
    "camera": Text(_not_empty),
    "camera_width": _SIZE,
    "camera_height": _SIZE,
    "camera_fps": Number(0, 1000, low_open=True),
    "sources": TextList(_source_entry),
    "sources_dir": Text(_plain_text),
    "removed_sources": TextList(_not_empty),
    "source_names": TextList(_plain_text),
    "active_source": Number(0, 10_000, integer=True),
    "model": Choice((*MODEL_NAMES, "passthrough")),
    "engine": Choice(get_args(EngineChoice)),
    "detector": Choice(get_args(DetectorChoice)),
    "faces": Text(_faces_mode),
    "match_threshold": Number(0, 1, low_open=True, high_open=True),
    "det_threshold": Number(0, 1, low_open=True, high_open=True),
    "detect_every": Number(1, 1000, integer=True),
    "max_faces": Number(1, 32, integer=True),
    "detect_width": Number(160, 3840, integer=True),
    "feather": Number(0, 0.5),
    "color_match": Flag(),
    "mask": Choice(MASK_MODES),
    "swap_mode": Choice(get_args(SwapMode)),
    "swap_enabled": Flag(),
    "texture": Choice(("auto", "static", "flow")),
    "live_mouth": Flag(),
    "fade_ms": Number(0, 2000),
    "refresh_order": Choice(("auto", "stalest", "error")),
    "face_map": TextList(_face_map_entry),
    "unassigned_faces": Choice(("source", "leave")),
    "identity_strength": Number(0, 2),
    "enhance": Choice(("off", "gfpgan")),
    "enhance_blend": Number(0, 1),
    "quality_meter": Flag(),
    "preview_mode": Choice(get_args(PreviewMode)),
    "virtual_cam": Flag(),
    "vcam_width": _SIZE,
    "vcam_height": _SIZE,
    "vcam_fps": Number(0, 1000, low_open=True),
    "ai_label": Flag(),
    "record_path": Text(_plain_text),
    "global_hotkeys": Flag(),
    "window_geometry": Text(_plain_text),
}


def validate_setting(key: str, value: Any) -> Any:
    """``value`` as ``Settings`` stores it (lists become tuples, ints become floats
    where a float is kept), or ``SettingError`` naming ``key`` and what is wrong."""
    rule = RULES.get(key)
    if rule is None:
        raise SettingError(key, "not a known setting")
    if isinstance(rule, Flag):
        if not isinstance(value, bool):
            raise SettingError(key, f"expected true/false, got {value!r}")
        return value
    if isinstance(rule, Number):
        # bool is an int subclass: true/false is never a number here
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise SettingError(key, f"expected {rule.describe()}, got {value!r}")
        if rule.integer and not isinstance(value, int):
            raise SettingError(key, f"expected {rule.describe()}, got {value!r}")
        if not math.isfinite(value):
            raise SettingError(key, f"expected {rule.describe()}, got {value!r}")
        below = value <= rule.low if rule.low_open else value < rule.low
        above = value >= rule.high if rule.high_open else value > rule.high
        if below or above:
            raise SettingError(key, f"expected {rule.describe()}, got {value!r}")
        return int(value) if rule.integer else float(value)
    if isinstance(rule, Choice):
        if not isinstance(value, str) or value not in rule.values:
            raise SettingError(key, f"expected one of {', '.join(rule.values)}, got {value!r}")
        return value
    if isinstance(rule, Text):
        if not isinstance(value, str):
            raise SettingError(key, f"expected a string, got {value!r}")
        problem = rule.check(value) if rule.check else None
        if problem:
            raise SettingError(key, f"{value!r} {problem}" if problem.startswith(("is", "holds"))
                               else f"{problem}, got {value!r}")
        return value
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise SettingError(key, f"expected a list of strings, got {value!r}")
    for item in value:
        problem = rule.check(item) if rule.check else None
        if problem:
            raise SettingError(key, f"entry {item!r} {problem}"
                               if problem.startswith(("is", "holds"))
                               else f"entry {item!r}: {problem}")
    return tuple(value)
