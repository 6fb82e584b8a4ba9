"""Settings validation, property-style over every field: each field has a rule, and every
kind of bad value its rule covers (wrong type, bool for a number, NaN/inf, out of range,
unknown choice, bad list entries) is refused with the key named; on load from
settings.toml a bad value is reset to its default, the rest kept, the file backed up."""

from __future__ import annotations

import math
import os
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from realtime.config import (
    RULES,
    Choice,
    Flag,
    Number,
    SettingError,
    Settings,
    Text,
    TextList,
    validate_setting,
)
from realtime.settings_store import SettingsStore

FIELDS = [f.name for f in fields(Settings)]


def test_every_field_has_a_rule() -> None:
    """A new setting without a rule fails here (and would be refused on load)."""
    assert set(RULES) == set(FIELDS)


@pytest.mark.parametrize("key", FIELDS)
def test_the_default_passes_its_own_rule(key: str) -> None:
    default = getattr(Settings(), key)
    value = list(default) if isinstance(default, tuple) else default
    assert validate_setting(key, value) == default


def _bad_values(key: str) -> list[tuple[str, Any]]:
    """(what is wrong, value) pairs every one of which the key's rule must refuse."""
    rule = RULES[key]
    bad: list[tuple[str, Any]] = [("none", None), ("table", {"a": 1})]
    if isinstance(rule, Flag):
        bad += [("int for bool", 1), ("string for bool", "true"), ("float for bool", 0.0)]
    elif isinstance(rule, Number):
        bad += [("bool for number", True), ("bool for number", False),
                ("string for number", str(rule.low)), ("list for number", [rule.low]),
                ("nan", math.nan), ("inf", math.inf), ("-inf", -math.inf),
                ("below range", rule.low - 1), ("above range", rule.high + 1)]
        if rule.integer:
            bad += [("float for int", float(rule.low + 1)), ("fraction", rule.low + 0.5)]
        if rule.low_open:
            bad.append(("open low end", rule.low))
        if rule.high_open:
            bad.append(("open high end", rule.high))
    elif isinstance(rule, Choice):
        bad += [("unknown choice", "no-such-" + rule.values[0]),
                ("choice in other case", rule.values[0].upper() + "X"),
                ("number for choice", 1), ("bool for choice", True)]
    elif isinstance(rule, Text):
        bad += [("number for text", 5), ("bool for text", False), ("list for text", ["a"]),
                ("nul", "a\0b")]
    elif isinstance(rule, TextList):
        bad += [("string for list", "a.jpg"), ("number entry", [1]), ("bool entry", [True]),
                ("nested list", [["a.jpg"]]), ("nul entry", ["a\0b"])]
        if rule.check is not None and rule.check(""):  # (display names may be empty)
            bad.append(("empty entry", [""]))
    else:  # pragma: no cover - a new kind of rule needs cases here
        raise AssertionError(f"no bad values for {type(rule).__name__}")
    return bad


@pytest.mark.parametrize("key", FIELDS)
def test_each_bad_value_is_refused_with_its_key(key: str) -> None:
    for what, value in _bad_values(key):
        try:
            validate_setting(key, value)
        except SettingError as exc:
            assert exc.key == key and f"setting {key!r}" in str(exc), (what, str(exc))
        else:
            pytest.fail(f"{key}: {what} ({value!r}) was accepted")
        # the same through from_dict, the path a loaded file takes
        with pytest.raises(ValueError, match=f"setting '{key}'"):
            Settings.from_dict({key: value})


@pytest.mark.parametrize("key", [k for k in FIELDS if isinstance(RULES[k], Number)])
def test_numbers_accept_their_range_ends_and_middle(key: str) -> None:
    rule = RULES[key]
    assert isinstance(rule, Number)
    inside = [(rule.low + rule.high) / 2]
    if not rule.low_open:
        inside.append(rule.low)
    if not rule.high_open:
        inside.append(rule.high)
    for value in inside:
        value = int(value) if rule.integer else value
        got = validate_setting(key, value)
        assert got == value and type(got) is (int if rule.integer else float)
    whole = [k for k in range(math.ceil(rule.low), math.floor(rule.high) + 1)
             if not (rule.low_open and k == rule.low) and not (rule.high_open and k == rule.high)]
    if not rule.integer and whole:  # a TOML integer where a float is kept
        assert type(validate_setting(key, whole[0])) is float


def test_specific_limits_from_the_issue() -> None:
    for value in (0.0, 1.0, -0.1, 1.5):
        with pytest.raises(SettingError, match="det_threshold"):
            validate_setting("det_threshold", value)
    assert validate_setting("det_threshold", 0.3) == 0.3
    for value in (0, -30.0, math.nan, math.inf):
        with pytest.raises(SettingError, match="camera_fps"):
            validate_setting("camera_fps", value)
    assert validate_setting("faces", "match:/photos/ref.jpg") == "match:/photos/ref.jpg"
    for faces in ("match:", "match:  ", "every", "ALL"):
        with pytest.raises(SettingError, match="faces"):
            validate_setting("faces", faces)
    assert validate_setting("face_map", ["a.jpg=b.jpg"]) == ("a.jpg=b.jpg",)
    for entry in ("a.jpg", "=b.jpg", "a.jpg="):
        with pytest.raises(SettingError, match="face_map"):
            validate_setting("face_map", [entry])


# -- on load ----------------------------------------------------------------------------


def _good_changes() -> dict[str, Any]:
    return {"detect_every": 3, "camera": "clip.mp4", "sources": ["a.jpg"], "feather": 0.2}


@pytest.mark.parametrize("key", FIELDS)
def test_a_bad_value_in_the_file_is_reset_and_the_rest_kept(tmp_path: Path, key: str) -> None:
    # every bad value TOML can hold (it has no null, and a table is a section)
    cases = [(w, v) for w, v in _bad_values(key) if v is not None and not isinstance(v, dict)]
    assert cases
    for n, (what, value) in enumerate(cases):
        folder = tmp_path / str(n)
        folder.mkdir()
        path = folder / "settings.toml"
        good = {k: v for k, v in _good_changes().items() if k != key}
        text = tomli_w.dumps({**good, key: value}) if not _is_nonfinite(value) else \
            tomli_w.dumps(good) + f"{key} = {_toml_float(value)}\n"
        path.write_text(text, encoding="utf-8")
        result = SettingsStore(path).load()
        assert result.reset_keys == (key,), what
        assert getattr(result.settings, key) == getattr(Settings(), key), what
        for k, v in good.items():
            expected = tuple(v) if isinstance(v, list) else v
            assert getattr(result.settings, k) == expected, (what, k)
        assert result.warning is not None and f"'{key}'" in result.warning, what
        assert result.backup is not None and result.backup.name.startswith(
            "settings.toml.bak-"), what
        assert result.backup.read_text(encoding="utf-8") == text, what  # the original
        assert str(result.backup) in result.warning, what
        # the file now holds the repaired settings: the next start resets nothing
        again = SettingsStore(path).load()
        assert again.reset_keys == () and again.settings == result.settings, what
        assert sorted(p.name for p in folder.iterdir()) == sorted(["settings.toml",
                                                                   result.backup.name]), what


def _is_nonfinite(value: Any) -> bool:
    return isinstance(value, float) and not math.isfinite(value)


def _toml_float(value: float) -> str:
    return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")


def test_several_bad_values_are_all_reset_and_named(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    path.write_text("camera_fps = nan\ndet_threshold = 1.5\nengine = \"torch\"\n"
                    "detect_every = 2\nvirtual_cam = 1\n", encoding="utf-8")
    result = SettingsStore(path).load()
    assert set(result.reset_keys) == {"camera_fps", "det_threshold", "engine", "virtual_cam"}
    assert result.settings == Settings().with_changes(detect_every=2)
    for key in result.reset_keys:
        assert f"'{key}'" in str(result.warning)


def test_a_file_with_only_good_values_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    text = tomli_w.dumps({**_good_changes(), "unknown_future_key": 1})
    path.write_text(text, encoding="utf-8")
    result = SettingsStore(path).load()
    assert result.reset_keys == () and result.warning is None and result.backup is None
    assert path.read_text(encoding="utf-8") == text
    assert [p.name for p in tmp_path.iterdir()] == ["settings.toml"]


def test_with_changes_checks_each_changed_value() -> None:
    """The command line and the window build settings with ``with_changes``: a bad value
    is refused there too, with its key, and unknown names stay a TypeError."""
    base = Settings()
    assert base.with_changes(det_threshold=0.7).det_threshold == 0.7
    with pytest.raises(SettingError, match="det_threshold"):
        base.with_changes(det_threshold=7.0)
    with pytest.raises(SettingError, match="camera_fps"):
        base.with_changes(camera_fps=float("nan"))
    with pytest.raises(TypeError):
        base.with_changes(no_such_setting=1)


# -- the documented limits, written out independently of RULES -----------------------------
# The property tests above derive their bad values from each field's own rule, so a rule
# made weaker (a wider range, a choice turned into free text) would weaken them too. This
# table states what each field must accept and refuse; bench/rule_guards.py checks that
# weakening any rule turns a test red.

_SIZES = ([16, 640, 16384], [15, 16385])
_FPS = ([0.5, 30.0, 1000.0], [0, 1000.5])
_OPEN_UNIT = ([0.01, 0.5, 0.99], [0.0, 1.0])
_FLAG = ([True, False], [1, "yes"])
SPEC: dict[str, tuple[list[Any], list[Any]]] = {
    "models_dir": (["/models", "C:/swapcam"], ["", "   "]),
    "camera": (["0", "/dev/video2", "clip.mp4"], ["", "  "]),
    "camera_width": _SIZES,
    "camera_height": _SIZES,
    "camera_fps": _FPS,
    "sources": ([["a.jpg", f"a.jpg{os.pathsep}b.jpg"]], [[""], [f"a.jpg{os.pathsep}"],
                                                         [f"{os.pathsep}b.jpg"]]),
    "sources_dir": (["", "/photos"], ["/pho\0tos"]),
    "removed_sources": ([["/photos/a.jpg"]], [[""], ["  "]]),
    "source_names": ([["", "Alice"]], [["Al\0ice"]]),
    "active_source": ([0, 10_000], [-1, 10_001]),
    "model": (["simswap-224", "simswap-512", "inswapper-128", "passthrough"],
              ["simswap-999", "inswapper", "SimSwap-224"]),
    "engine": (["auto", "tensorrt", "onnxruntime-cuda", "onnxruntime-cpu"],
               ["torch", "cuda", "onnxruntime"]),
    "detector": (["auto", "scrfd", "retinaface", "dlib"], ["yolo", "mediapipe"]),
    "faces": (["all", "largest", "match:ref.jpg"], ["match:", "every", "none"]),
    "match_threshold": _OPEN_UNIT,
    "det_threshold": _OPEN_UNIT,
    "detect_every": ([1, 1000], [0, 1001]),
    "max_faces": ([1, 32], [0, 33]),
    "detect_width": ([160, 3840], [159, 3841]),
    "feather": ([0.0, 0.5], [-0.01, 0.51]),
    "color_match": _FLAG,
    "mask": (["auto", "box", "parsing"], ["bisenet", "ellipse"]),
    "swap_mode": (["auto", "sync", "async"], ["threads"]),
    "swap_enabled": _FLAG,
    "texture": (["auto", "static", "flow"], ["warp", "Flow", ""]),
    "live_mouth": _FLAG,
    "fade_ms": ([0, 0.0, 250, 2000], [-1, 2001, float("nan"), True, "250"]),
    "refresh_order": (["auto", "stalest", "error"], ["Error", "fair", "", None]),
    "identity_strength": ([0.0, 1.0, 2.0], [-0.01, 2.01, True]),
    "enhance": (["off", "gfpgan"], ["gfpgan-1.4", "codeformer"]),
    "enhance_blend": ([0.0, 0.7, 1.0], [-0.1, 1.1]),
    "face_map": ([["a.jpg=b.jpg"]], [["a.jpg"], ["=b.jpg"], ["a.jpg="], [" =b.jpg"]]),
    "unassigned_faces": (["source", "leave"], ["skip", "all"]),
    "quality_meter": _FLAG,
    "preview_mode": (["swapped", "original", "side-by-side"], ["split"]),
    "virtual_cam": _FLAG,
    "vcam_width": _SIZES,
    "vcam_height": _SIZES,
    "vcam_fps": _FPS,
    "ai_label": _FLAG,
    "record_path": (["", "/videos"], ["/vid\0eos"]),
    "global_hotkeys": _FLAG,
    "window_geometry": (["", "AdnQywADAAA="], ["\0"]),
}


def test_every_field_has_a_spec() -> None:
    assert set(SPEC) == set(FIELDS)


@pytest.mark.parametrize("key", FIELDS)
def test_each_field_keeps_its_documented_limits(key: str) -> None:
    accepted, refused = SPEC[key]
    for value in accepted:
        expected = tuple(value) if isinstance(value, list) else value
        assert validate_setting(key, value) == expected, value
    for value in refused:
        with pytest.raises(SettingError, match=f"setting '{key}'"):
            validate_setting(key, value)


def test_an_unknown_key_is_refused_by_name() -> None:
    with pytest.raises(SettingError, match="'no_such_setting': not a known setting"):
        validate_setting("no_such_setting", 1)
