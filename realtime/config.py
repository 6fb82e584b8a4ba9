"""One immutable settings object: defaults → TOML file → command line.

``Settings`` is frozen; a change makes a new object with ``dataclasses.replace``
and the pipeline swaps it in atomically. Persistence (TOML in the user's config
folder, atomic write, backup of an invalid file) lives in ``realtime/settings_store.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

import platformdirs

from engines.paths import APP_NAME, default_models_dir

__all__ = ["APP_NAME", "default_models_dir"]  # re-exported: settings name both

ModelName = Literal["simswap-224", "simswap-512", "inswapper-128"]
# the runtimes engines.registry.open_engine can run an ONNX file on (see PREFERENCES there)
EngineChoice = Literal["auto", "tensorrt", "onnxruntime-cuda", "onnxruntime-cpu"]
DetectorChoice = Literal["auto", "scrfd", "retinaface", "dlib"]
SwapMode = Literal["auto", "sync", "async"]
PreviewMode = Literal["swapped", "original", "side-by-side"]
# box: the rounded-rectangle region mask; parsing: SimSwap's face-parsing mask (BiSeNet)
# inside it; auto: parsing when the face-parsing model is installed, else box
MaskMode = Literal["auto", "box", "parsing"]
MASK_MODES: tuple[str, ...] = ("auto", "box", "parsing")
# Settings whose value must be one of a fixed set (checked by ``Settings.from_dict``).
CHOICES: dict[str, tuple[str, ...]] = {"mask": MASK_MODES}

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
    # identity per person: "REF.jpg=SOURCE.jpg" entries (``--map``), and what faces no
    # entry or click assigns wear: "source" (the active one) or "leave" (not swapped)
    face_map: tuple[str, ...] = ()
    unassigned_faces: str = "source"
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
        """A copy with ``changes`` applied; unknown names raise ``TypeError``."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Settings:
        """Build from a mapping, ignoring unknown keys and checking value types.

        Raises ``ValueError`` naming the key when a value has the wrong type.
        """
        defaults = cls()
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in data:
                continue
            value = data[f.name]
            default = getattr(defaults, f.name)
            if isinstance(default, tuple):
                if not isinstance(value, list | tuple) or not all(
                    isinstance(v, str) for v in value
                ):
                    raise ValueError(
                        f"setting {f.name!r}: expected a list of strings, got {value!r}"
                    )
                value = tuple(value)
            elif isinstance(default, bool):
                if not isinstance(value, bool):
                    raise ValueError(f"setting {f.name!r}: expected true/false, got {value!r}")
            elif isinstance(default, int):
                if isinstance(value, bool) or not isinstance(value, int):
                    raise ValueError(f"setting {f.name!r}: expected an integer, got {value!r}")
            elif isinstance(default, float):
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise ValueError(f"setting {f.name!r}: expected a number, got {value!r}")
                value = float(value)
            elif isinstance(default, str) and not isinstance(value, str):
                raise ValueError(f"setting {f.name!r}: expected a string, got {value!r}")
            choices = CHOICES.get(f.name)
            if choices is not None and value not in choices:
                raise ValueError(f"setting {f.name!r}: expected one of {', '.join(choices)}, "
                                 f"got {value!r}")
            kwargs[f.name] = value
        return cls(**kwargs)
