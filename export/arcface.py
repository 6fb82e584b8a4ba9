"""SimSwap's ArcFace identity encoder and a safe loader for its official checkpoint.

The official ``arcface_checkpoint.tar`` is not a state_dict but a pickled module
(``models.arcface_models.ResNet``), or in an older upload a dict whose ``'model'`` is a
``DataParallel`` wrapping it. Unpickling runs whatever globals a file names, so the file
is read through a restricted unpickler: the three official class names map onto the
classes below, a short list of ``torch.nn`` layers, ``OrderedDict`` and torch's tensor
rebuild functions are allowed, and any other global raises ``UnsafePickleError`` before
anything is called. Training-only objects the old dict may hold (the margin head,
``torch.optim`` optimizers, a ``DataParallel`` wrapper) resolve to inert stand-ins that
only store their pickled state. Every callable a pickle can reach this way only builds
containers, tensors or layers. The weights are then kept as a plain state_dict in the user
cache folder, keyed and stamped by sha256 (loaded with ``weights_only=True`` from then on).

Architecture (shared/SPEC.md §2): IR-SE ResNet [3, 4, 23, 3]; input [B,3,112,112]
ImageNet-normalised RGB; output [B,512], not normalised. Attribute names follow the
official module so a pickled official module's state lands on ours unchanged.
"""

from __future__ import annotations

import collections
import logging
import os
import pickle
import warnings
import zipfile
from pathlib import Path
from typing import IO, Any

import torch
import torch.nn.functional as F
from torch import nn

from engines.base import ModelFileError

log = logging.getLogger(__name__)

LAYERS = (3, 4, 23, 3)
EMBEDDING_SIZE = 512
INPUT_SIZE = 112
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CACHE_SUFFIX = ".state_dict.pt"
CACHE_FORMAT = 1


class UnsafePickleError(ModelFileError):
    """A pickle names a global outside the allow-list; nothing from it was run."""


class SEBlock(nn.Module):
    """Squeeze-and-excitation: channel weights from the spatial mean."""

    def __init__(self, channel: int, reduction: int = 16) -> None:
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Sequential(
            nn.Linear(channel, channel // reduction),
            nn.PReLU(),
            nn.Linear(channel // reduction, channel),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = self.fc(torch.flatten(self.avg_pool(x), 1))
        return x * weights.unsqueeze(-1).unsqueeze(-1)


def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=1, bias=False)


class IRBlock(nn.Module):
    """Improved residual block: BN → conv → BN → PReLU → conv(stride) → BN → SE, + shortcut."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None, use_se: bool = True) -> None:
        super().__init__()
        self.bn0 = nn.BatchNorm2d(inplanes)
        self.conv1 = _conv3x3(inplanes, inplanes)
        self.bn1 = nn.BatchNorm2d(inplanes)
        self.prelu = nn.PReLU()
        self.conv2 = _conv3x3(inplanes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride
        self.use_se = use_se
        self.se = SEBlock(planes) if use_se else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.prelu(self.bn1(self.conv1(self.bn0(x))))
        out = self.bn2(self.conv2(out))
        if self.se is not None:
            out = self.se(out)
        residual = x if self.downsample is None else self.downsample(x)
        # The same PReLU (one shared slope) is applied after the add, as trained.
        return self.prelu(out + residual)


class ArcFaceResNet(nn.Module):
    """IR-SE ResNet with layers [3, 4, 23, 3] (the official ``ResNet``)."""

    def __init__(self, layers: tuple[int, ...] = LAYERS, use_se: bool = True) -> None:
        super().__init__()
        self.use_se = use_se
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, bias=False)  # 112 → 110
        self.bn1 = nn.BatchNorm2d(64)
        self.prelu = nn.PReLU()
        self.maxpool = nn.MaxPool2d(kernel_size=2, stride=2)
        self.layer1 = self._make_layer(64, layers[0])
        self.layer2 = self._make_layer(128, layers[1], stride=2)
        self.layer3 = self._make_layer(256, layers[2], stride=2)
        self.layer4 = self._make_layer(512, layers[3], stride=2)
        self.bn2 = nn.BatchNorm2d(512)
        self.dropout = nn.Dropout()
        self.fc = nn.Linear(512 * 7 * 7, EMBEDDING_SIZE)
        self.bn3 = nn.BatchNorm1d(EMBEDDING_SIZE)

    def _make_layer(self, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(planes),
            )
        layers = [IRBlock(self.inplanes, planes, stride, downsample, use_se=self.use_se)]
        self.inplanes = planes
        layers += [IRBlock(planes, planes, use_se=self.use_se) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.prelu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.dropout(self.bn2(x))
        return self.bn3(self.fc(torch.flatten(x, 1)))


def embed_simswap(model: nn.Module, crop_rgb_float01: torch.Tensor) -> torch.Tensor:
    """SimSwap identity vectors: aligned crops [B,3,S,S] RGB in [0,1] → [B,512], unit length.

    ImageNet mean/std, nearest-neighbour resize to 112 (every second pixel of a 224
    crop), ArcFace, L2 normalisation (shared/SPEC.md §2).
    """
    if crop_rgb_float01.ndim != 4 or crop_rgb_float01.shape[1] != 3:
        raise ValueError(f"crops: expected [B,3,S,S], got {tuple(crop_rgb_float01.shape)}")
    mean = torch.tensor(IMAGENET_MEAN, dtype=crop_rgb_float01.dtype,
                        device=crop_rgb_float01.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=crop_rgb_float01.dtype,
                       device=crop_rgb_float01.device).view(1, 3, 1, 1)
    x = (crop_rgb_float01 - mean) / std
    if x.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
        x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="nearest")
    return F.normalize(model(x), dim=1)


# -- the restricted unpickler ---------------------------------------------------------------


class _DataParallelShell(nn.Module):
    """Stands in for ``torch.nn.DataParallel``: holds the pickled ``module`` attribute and
    nothing else (no device logic runs)."""


class _InertModule(nn.Module):
    """Stands in for the training-only ``ArcMarginModel`` in the old dict checkpoint."""


class _Inert:
    """Stands in for an optimizer object in the old dict checkpoint: keeps its state as
    data (its real ``__setstate__`` would install hooks)."""

    def __setstate__(self, state: object) -> None:
        self.state = state


_OFFICIAL = "models.arcface_models"
# (module, name) → the object it may resolve to. Anything else is refused.
_ALLOWED: dict[tuple[str, str], Any] = {
    (_OFFICIAL, "ResNet"): ArcFaceResNet,
    (_OFFICIAL, "IRBlock"): IRBlock,
    (_OFFICIAL, "SEBlock"): SEBlock,
    (_OFFICIAL, "ArcMarginModel"): _InertModule,
    ("torch.nn.parallel.data_parallel", "DataParallel"): _DataParallelShell,
    ("torch.nn.modules.conv", "Conv2d"): nn.Conv2d,
    ("torch.nn.modules.batchnorm", "BatchNorm2d"): nn.BatchNorm2d,
    ("torch.nn.modules.batchnorm", "BatchNorm1d"): nn.BatchNorm1d,
    ("torch.nn.modules.activation", "PReLU"): nn.PReLU,
    ("torch.nn.modules.activation", "Sigmoid"): nn.Sigmoid,
    ("torch.nn.modules.pooling", "MaxPool2d"): nn.MaxPool2d,
    ("torch.nn.modules.pooling", "AdaptiveAvgPool2d"): nn.AdaptiveAvgPool2d,
    ("torch.nn.modules.container", "Sequential"): nn.Sequential,
    ("torch.nn.modules.linear", "Linear"): nn.Linear,
    ("torch.nn.modules.dropout", "Dropout"): nn.Dropout,
    ("collections", "OrderedDict"): collections.OrderedDict,
    # Optimizer state in the old dict format is a defaultdict(dict).
    ("collections", "defaultdict"): collections.defaultdict,
    ("builtins", "dict"): dict,
    ("__builtin__", "dict"): dict,
    # Module state holds a set (_non_persistent_buffers_set); protocol 2 pickles it by name.
    ("builtins", "set"): set,
    ("__builtin__", "set"): set,  # the same, as protocol 2 spells it for Python 2
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): torch._utils._rebuild_parameter_with_state,
    ("torch._utils", "_rebuild_tensor"): torch._utils._rebuild_tensor,  # torch < 0.4 files
    ("torch.nn.parameter", "Parameter"): nn.Parameter,
    # DataParallel pickles its source device; constructing a device object touches no GPU.
    ("torch", "device"): torch.device,
}
_STORAGES = {
    name for name in dir(torch)
    if name.endswith("Storage") and isinstance(getattr(torch, name), type)
}
# Optimizer state in the old dict format: kept inert (never the real class).
_INERT_MODULE_PREFIX = "torch.optim."


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` that resolves only the allow-listed globals."""

    def find_class(self, module: str, name: str) -> Any:
        allowed = _ALLOWED.get((module, name))
        if allowed is not None:
            return allowed
        if module == "torch" and name in _STORAGES:
            return getattr(torch, name)
        if module.startswith(_INERT_MODULE_PREFIX) and name.isidentifier() and name[:1].isupper():
            return _Inert
        raise UnsafePickleError(
            f"refusing to unpickle global {module}.{name}: not one of the classes an "
            "official SimSwap ArcFace checkpoint contains (nothing from the file was run)"
        )


class RestrictedPickleModule:
    """The ``pickle_module`` handed to ``torch.load``: torch subclasses ``Unpickler`` and
    calls ``load`` (legacy format headers), both restricted."""

    __name__ = "swapcam_restricted_pickle"
    Unpickler = RestrictedUnpickler

    @staticmethod
    def load(file: IO[bytes], **kwargs: Any) -> Any:
        return RestrictedUnpickler(file, **kwargs).load()


def _refuse_torchscript(path: Path) -> None:
    # torch.load hands a TorchScript archive to torch.jit.load, bypassing our unpickler.
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
        if any(n.endswith("constants.pkl") or "/code/" in n for n in names):
            raise UnsafePickleError(f"{path}: a TorchScript archive, not an ArcFace "
                                    "checkpoint; refusing to load it")


def _unwrap(obj: object, path: Path) -> nn.Module:
    if isinstance(obj, dict) and "model" in obj:
        obj = obj["model"]
    if isinstance(obj, _DataParallelShell):
        obj = getattr(obj, "module", None)
    if not isinstance(obj, ArcFaceResNet):
        raise ModelFileError(f"{path}: expected a pickled models.arcface_models.ResNet (or a "
                             f"dict with 'model'), got {type(obj).__name__}")
    return obj


def load_pickled_arcface(path: Path) -> dict[str, torch.Tensor]:
    """The state_dict of an official (pickled-module) checkpoint, through the restricted
    unpickler. Raises ``UnsafePickleError`` on any global outside the allow-list."""
    _refuse_torchscript(path)
    try:
        with warnings.catch_warnings():
            # Legacy-format files carry the training code's class source; torch warns that
            # ours differs, which is expected (only the weights are used).
            warnings.simplefilter("ignore", torch.serialization.SourceChangeWarning)
            obj = torch.load(path, map_location="cpu", pickle_module=RestrictedPickleModule,
                             weights_only=False)
    except UnsafePickleError as exc:
        raise UnsafePickleError(f"{path}: {exc}") from None
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, zipfile.BadZipFile,
            AttributeError, TypeError) as exc:
        raise ModelFileError(f"{path}: not a readable ArcFace checkpoint "
                             f"({type(exc).__name__}: {exc})") from exc
    module = _unwrap(obj, path)
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def cache_path(path: Path, cache_dir: Path | None = None, *,
               source_sha256: str | None = None) -> Path:
    """Where the plain state_dict derived from ``path`` is kept: under the cache folder
    (engines.paths.default_cache_dir), named by the checkpoint's sha256, never beside
    the checkpoint (a user's download folder may be read-only)."""
    from engines.fileio import sha256_file
    from engines.paths import default_cache_dir

    digest = source_sha256 or sha256_file(path)
    return Path(cache_dir or default_cache_dir()) / "arcface" / f"{digest}{CACHE_SUFFIX}"


def _read_cache(cache: Path, source_sha256: str) -> dict[str, torch.Tensor] | None:
    from engines.derived import stamp_problem

    problem = stamp_problem(cache, source_sha256)
    if problem is not None:
        if cache.exists():
            log.warning("rebuilding %s: %s", cache, problem)
        return None
    try:
        data = torch.load(cache, map_location="cpu", weights_only=True)
    except Exception as exc:  # a damaged cache is rebuilt from the checkpoint
        log.warning("%s: unreadable cache (%s); rebuilding it", cache, exc)
        return None
    if not isinstance(data, dict) or data.get("format") != CACHE_FORMAT:
        log.info("%s has another format; rebuilding it", cache)
        return None
    state = data.get("state_dict")
    return state if isinstance(state, dict) else None


def _write_cache(cache: Path, source_sha256: str, state: dict[str, torch.Tensor]) -> None:
    from engines.derived import write_stamp

    payload = {"format": CACHE_FORMAT, "source_sha256": source_sha256, "state_dict": state}
    tmp = cache.with_name(f".{cache.name}.{os.getpid()}.tmp")
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        torch.save(payload, tmp)
        os.replace(tmp, cache)
        write_stamp(cache, source_sha256)
    except OSError as exc:  # an unwritable cache still works, just slower
        tmp.unlink(missing_ok=True)
        log.warning("could not write %s (%s); the checkpoint will be unpickled again "
                    "next time", cache, exc)


def load_arcface(path: Path, cache_dir: Path | None = None) -> ArcFaceResNet:
    """Load SimSwap's ArcFace from ``arcface_checkpoint.tar`` (or a plain state_dict file),
    in eval mode on the CPU. The unpickled weights are kept as a plain state_dict under
    ``cache_dir`` (default: the user cache folder), stamped with both sha256s."""
    from export.simswap import load_state_dict_strict

    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such file")
    state: dict[str, torch.Tensor] | None
    if path.name.endswith(CACHE_SUFFIX):
        state = _read_cache_file(path)
    else:
        from engines.fileio import sha256_file

        digest = sha256_file(path)
        cache = cache_path(path, cache_dir, source_sha256=digest)
        state = _read_cache(cache, digest)
        if state is None:
            state = load_pickled_arcface(path)
            _write_cache(cache, digest, state)
            log.info("kept the ArcFace weights as a plain state_dict in %s", cache)
    model = ArcFaceResNet()
    load_state_dict_strict(model, state, str(path))
    return model.eval()


def _read_cache_file(path: Path) -> dict[str, torch.Tensor]:
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, ...
        raise ModelFileError(f"{path}: not a readable state_dict ({exc})") from exc
    state = data.get("state_dict", data) if isinstance(data, dict) else None
    if not isinstance(state, dict):
        raise ModelFileError(f"{path}: expected a state_dict, got {type(data).__name__}")
    return state

