"""Load a candidate model file the way the app will use it, before it replaces anything.

``engines.models`` calls ``validate_model(name, path)`` on every download and import while
the file still sits in the staging folder: a checkpoint with other keys or shapes, a
pickle naming a global outside the ArcFace allow-list, an ONNX graph with the wrong inputs
or one ONNX Runtime cannot open raises ``ModelFileError`` and the installed file stays.
Each model of the table has one entry in ``VALIDATORS`` (a test checks none is missing);
a new model adds its loader here. Nothing is written beside the candidate.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from engines.base import ModelFileError

Validator = Callable[[Path], None]

# ONNX models: per input, the shape after the batch dimension (None: any size).
ONNX_INPUTS: dict[str, tuple[tuple[int | None, ...], ...]] = {
    "inswapper-128": ((3, 128, 128), (512,)),
    "arcface-w600k": ((3, 112, 112),),
    "scrfd-10g": ((3, None, None),),
}


def _generator(size: int) -> Validator:
    def check(path: Path) -> None:
        from export.simswap import load_generator

        load_generator(path, size)  # strict keys and shapes, weights_only unpickling

    return check


def _arcface(path: Path) -> None:
    from export.arcface import ArcFaceResNet, load_pickled_arcface
    from export.simswap import load_state_dict_strict

    # The restricted unpickler, then strict loading; no state_dict cache is written.
    load_state_dict_strict(ArcFaceResNet(), load_pickled_arcface(path), str(path))


def _parser(path: Path) -> None:
    from export.parsing import load_parser

    load_parser(path)


def _gfpgan(path: Path) -> None:
    from export.gfpgan import load_gfpgan

    load_gfpgan(path)  # params_ema, strict keys and shapes, weights_only unpickling


def _face_mesh(path: Path) -> None:
    from export.tflite_onnx import convert_tflite

    try:
        convert_tflite(path.read_bytes(), graph_name=path.stem)
    except Exception as exc:  # the converter and onnx.checker raise several kinds
        raise ModelFileError(f"{path}: not a usable FaceMesh model "
                             f"({type(exc).__name__}: {exc})") from exc


def _dims(value: object) -> tuple[int | None, ...]:
    dims = value.type.tensor_type.shape.dim  # type: ignore[attr-defined]
    return tuple(d.dim_value if d.HasField("dim_value") else None for d in dims)


def _onnx(name: str) -> Validator:
    def check(path: Path) -> None:
        import onnx
        import onnxruntime as ort

        try:
            model = onnx.load(str(path), load_external_data=False)
        except Exception as exc:  # onnx raises DecodeError and friends
            raise ModelFileError(f"{path}: not a valid ONNX file for {name} "
                                 f"({type(exc).__name__}: {exc})") from exc
        initializers = {init.name for init in model.graph.initializer}
        inputs = [i for i in model.graph.input if i.name not in initializers]
        expected = ONNX_INPUTS[name]
        got = [_dims(i)[1:] for i in inputs]
        if len(got) != len(expected) or any(
                len(g) != len(e) or any(x is not None and y is not None and x != y
                                        for x, y in zip(g, e, strict=True))
                for g, e in zip(got, expected, strict=False)):
            raise ModelFileError(f"{path}: not a {name} model (inputs {got}, expected "
                                 f"{list(expected)} after the batch dimension)")
        try:
            ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as exc:  # ORT raises its own Fail/InvalidGraph types
            raise ModelFileError(f"{path}: ONNX Runtime cannot load it as {name} "
                                 f"({type(exc).__name__}: {exc})") from exc

    return check


VALIDATORS: dict[str, Validator] = {
    "simswap-224": _generator(224),
    "simswap-512": _generator(512),
    "arcface-simswap": _arcface,
    "face-parsing": _parser,
    "face-mesh": _face_mesh,
    "gfpgan-1.4": _gfpgan,
    **{name: _onnx(name) for name in ONNX_INPUTS},
}


def validate_model(name: str, path: Path) -> None:
    """Raise ``ModelFileError`` unless ``path`` loads as model ``name``."""
    try:
        check = VALIDATORS[name]
    except KeyError:
        raise ModelFileError(f"no validator for model {name!r}; add one to "
                             "export/validate.py VALIDATORS") from None
    try:
        check(Path(path))
    except ModelFileError:
        raise
    except (ValueError, RuntimeError, OSError, KeyError, TypeError) as exc:
        raise ModelFileError(f"{path}: does not load as {name} "
                             f"({type(exc).__name__}: {exc})") from exc
