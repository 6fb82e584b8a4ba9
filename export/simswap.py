"""The SimSwap generator (224 "people" and 512 "beta") with the official state_dict keys.

Architecture facts are in shared/SPEC.md §1. Two choices differ from the official code
on purpose, without changing a single value:

- the instance norm is ``nn.InstanceNorm2d(affine=False, eps=1e-8)``, which computes the
  same biased-variance normalisation as the official hand-written one, so that the ONNX
  export holds one ``InstanceNormalization`` node per norm (TensorRT maps it natively);
- loading is strict: a checkpoint with missing, unexpected or misshapen tensors is refused
  with the offending keys named, where the official loader silently skips them.

Input ``target`` [B,3,S,S] RGB in [0,1] (no mean/std), ``source`` [B,512] (the
L2-normalised SimSwap ArcFace vector); output [B,3,S,S] RGB in [0,1].
"""

from __future__ import annotations

import io
import logging
import zipfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

import torch
from torch import nn

from engines.base import ModelFileError

log = logging.getLogger(__name__)

SIZES = (224, 512)
LATENT_SIZE = 512
BOTTLENECK_CHANNELS = 512
N_BLOCKS = 9
IN_EPS = 1e-8
# Where each size's weights sit inside the official release archives.
ZIP_MEMBERS: dict[int, str] = {224: "people/latest_net_G.pth", 512: "512/550000_net_G.pth"}
# BatchNorm's step counter is training bookkeeping, absent from checkpoints written by old
# torch versions: a missing one is filled in rather than refused.
_OPTIONAL_SUFFIX = ".num_batches_tracked"


class CheckpointError(ModelFileError):
    """A generator checkpoint is unreadable, unsafe or does not match the architecture."""


class ApplyStyle(nn.Module):
    """Style injection: ``x * (1 + scale) + shift`` with both from ``Linear(z)``."""

    def __init__(self, latent_size: int, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.linear = nn.Linear(latent_size, channels * 2)

    def forward(self, x: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
        style = self.linear(latent).reshape(-1, 2, self.channels, 1, 1)
        return x * (style[:, 0] + 1.0) + style[:, 1]


def _adain_conv(channels: int) -> nn.Sequential:
    # Indices matter: key names are conv1.1.weight / conv1.1.bias.
    return nn.Sequential(
        nn.ReflectionPad2d(1),
        nn.Conv2d(channels, channels, kernel_size=3, padding=0),
        nn.InstanceNorm2d(channels, affine=False, eps=IN_EPS),
    )


class AdainBlock(nn.Module):
    """Residual block: conv → norm → style → ReLU → conv → norm → style, plus the input."""

    def __init__(self, channels: int, latent_size: int) -> None:
        super().__init__()
        self.conv1 = _adain_conv(channels)
        self.style1 = ApplyStyle(latent_size, channels)
        self.act1 = nn.ReLU(inplace=True)
        self.conv2 = _adain_conv(channels)
        self.style2 = ApplyStyle(latent_size, channels)

    def forward(self, x: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
        y = self.act1(self.style1(self.conv1(x), latent))
        y = self.style2(self.conv2(y), latent)
        return x + y


def _down(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel_size=3, stride=2, padding=1),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


def _up(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
        nn.Conv2d(cin, cout, kernel_size=3, stride=1, padding=1),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class SimSwapGenerator(nn.Module):
    """SimSwap ``Generator_Adain_Upsample`` (9 blocks, deep=False) for 224 or 512 crops."""

    def __init__(self, size: int = 224) -> None:
        super().__init__()
        if size not in SIZES:
            raise ValueError(f"SimSwap generator size: expected one of {SIZES}, got {size}")
        self.size = size
        stem = 64 if size == 224 else 32
        self.first_layer = nn.Sequential(
            nn.ReflectionPad2d(3),
            nn.Conv2d(3, stem, kernel_size=7, padding=0),
            nn.BatchNorm2d(stem),
            nn.ReLU(inplace=True),
        )
        # The 512 model has one more stride-2 stage each way: down0 / up0 (32 ↔ 64).
        self.down0: nn.Sequential | None = _down(32, 64) if size == 512 else None
        self.down1 = _down(64, 128)
        self.down2 = _down(128, 256)
        self.down3 = _down(256, BOTTLENECK_CHANNELS)
        self.BottleNeck = nn.ModuleList(
            AdainBlock(BOTTLENECK_CHANNELS, LATENT_SIZE) for _ in range(N_BLOCKS)
        )
        self.up3 = _up(BOTTLENECK_CHANNELS, 256)
        self.up2 = _up(256, 128)
        self.up1 = _up(128, 64)
        self.up0: nn.Sequential | None = _up(64, 32) if size == 512 else None
        self.last_layer = nn.Sequential(
            nn.ReflectionPad2d(3),
            nn.Conv2d(stem, 3, kernel_size=7, padding=0),
            nn.Tanh(),
        )

    def forward(self, target: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        x = self.first_layer(target)
        if self.down0 is not None:
            x = self.down0(x)
        x = self.down3(self.down2(self.down1(x)))
        for block in self.BottleNeck:
            x = block(x, source)
        x = self.up1(self.up2(self.up3(x)))
        if self.up0 is not None:
            x = self.up0(x)
        # tanh output in [-1, 1] → RGB in [0, 1], as the released weights were trained.
        return (self.last_layer(x) + 1.0) / 2.0


def _size_from_keys(state: Mapping[str, object]) -> int:
    return 512 if any(key.startswith("down0.") for key in state) else 224


def load_state_dict_strict(model: nn.Module, state: Mapping[str, torch.Tensor],
                           source: str) -> None:
    """Load ``state`` into ``model`` or raise ``CheckpointError`` naming every missing,
    unexpected and misshapen key (only BatchNorm step counters may be absent)."""
    own = model.state_dict()
    missing = sorted(k for k in own if k not in state and not k.endswith(_OPTIONAL_SUFFIX))
    unexpected = sorted(k for k in state if k not in own)
    misshapen = sorted(
        f"{k} (expected {tuple(own[k].shape)}, got {tuple(v.shape)})"
        for k, v in state.items()
        if k in own and isinstance(v, torch.Tensor) and v.shape != own[k].shape
    )
    not_tensors = sorted(k for k, v in state.items() if not isinstance(v, torch.Tensor))
    problems = []
    if missing:
        problems.append(f"missing keys: {', '.join(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {', '.join(unexpected)}")
    if misshapen:
        problems.append(f"wrong shapes: {', '.join(misshapen)}")
    if not_tensors:
        problems.append(f"not tensors: {', '.join(not_tensors)}")
    if problems:
        raise CheckpointError(
            f"{source} does not match {type(model).__name__}"
            f"{f' ({model.size})' if isinstance(model, SimSwapGenerator) else ''}: "
            + "; ".join(problems)
        )
    full = dict(state)
    for key, value in own.items():
        if key not in full:  # only step counters reach here (checked above)
            full[key] = torch.zeros_like(value)
    model.load_state_dict(full, strict=True)


def read_state_dict(data: io.BytesIO | Path, source: str, *,
                    what: str = "a state_dict") -> dict[str, torch.Tensor]:
    """A plain ``state_dict`` read with ``weights_only`` (no code runs), ``module.``
    prefixes of a DataParallel save removed; ``CheckpointError`` naming ``source``."""
    try:
        # weights_only: a .pth is a pickle; refuse anything but tensors and containers.
        obj = torch.load(data, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError, ...
        raise CheckpointError(f"{source}: not a readable torch state_dict "
                              f"({type(exc).__name__}: {exc})") from exc
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{source}: expected {what} (a mapping of tensors), "
                              f"got {type(obj).__name__}")
    # DataParallel training saves keys as module.xxx; the released files do not, but a
    # user's own fine-tune might.
    keys = list(obj)
    if keys and all(isinstance(k, str) and k.startswith("module.") for k in keys):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return {str(k): v for k, v in obj.items()}


def _unsafe_entry(name: str) -> str | None:
    posix = name.replace("\\", "/")
    if posix.startswith("/") or (len(posix) > 1 and posix[1] == ":"):
        return "absolute path"
    if ".." in PurePosixPath(posix).parts:
        return "'..' component"
    return None


def _member_from_zip(path: Path, size: int | None) -> tuple[io.BytesIO, str, int]:
    """Read the generator out of an official archive without extracting anything.

    Every entry name is checked first: an archive holding a path that would escape its
    folder was not made by SimSwap's authors and is refused as a whole.
    """
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            for info in infos:
                reason = _unsafe_entry(info.filename)
                if reason is not None:
                    raise CheckpointError(f"{path}: refusing archive, entry "
                                          f"{info.filename!r} is unsafe ({reason})")
            sizes = [size] if size is not None else list(SIZES)
            for want in sizes:
                suffix = PurePosixPath(ZIP_MEMBERS[want]).parts
                for info in infos:
                    parts = PurePosixPath(info.filename.replace("\\", "/")).parts
                    if not info.is_dir() and parts[-len(suffix):] == suffix:
                        return io.BytesIO(zf.read(info)), f"{path}:{info.filename}", want
    except zipfile.BadZipFile as exc:
        raise CheckpointError(f"{path}: not a readable zip archive ({exc})") from exc
    wanted = [ZIP_MEMBERS[s] for s in (sizes if size is not None else SIZES)]
    raise CheckpointError(f"{path}: the archive holds none of {', '.join(wanted)}")


def _is_archive(path: Path) -> bool:
    """An official release zip, as opposed to a (zip-format) torch .pth."""
    if path.suffix.lower() == ".zip":
        return True
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        # torch.save zips hold <root>/data.pkl; release archives hold .pth files.
        return not any(n.endswith("/data.pkl") or n == "data.pkl" for n in zf.namelist())


def load_generator(path: Path, size: int | None = None) -> SimSwapGenerator:
    """Load a SimSwap generator from a ``.pth`` state_dict or an official release zip.

    ``size`` (224 / 512) is inferred from the file name or the keys when None. The model
    is returned in eval mode on the CPU.
    """
    path = Path(path)
    if size is not None and size not in SIZES:
        raise ValueError(f"SimSwap generator size: expected one of {SIZES}, got {size}")
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    if _is_archive(path):
        data, source, size = _member_from_zip(path, size)
        state = read_state_dict(data, source)
    else:
        source = str(path)
        state = read_state_dict(path, source)
        if size is None:
            # The keys say which architecture it is (down0 exists only in 512); a renamed
            # file is still recognised.
            size = _size_from_keys(state)
    model = SimSwapGenerator(size)
    load_state_dict_strict(model, state, source)
    log.info("loaded SimSwap %d generator from %s", size, source)
    return model.eval()
