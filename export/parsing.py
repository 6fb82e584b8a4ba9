"""The BiSeNet face parser SimSwap uses for its mask (face-parsing.PyTorch ``79999_iter.pth``),
with the official state_dict keys.

Facts (from SimSwap's ``parsing_model/``): 19 CelebAMask-HQ classes; a ResNet-18 context path
whose 1/8 features stand in for the spatial path; attention refinement at 1/16 and 1/32 plus a
global-average branch, merged by nearest-neighbour upsampling; a feature-fusion module; three
output heads (``conv_out`` and the auxiliary ``conv_out16``/``conv_out32``), each upsampled
bilinearly with ``align_corners=True`` to the input size. All convolutions except the
ResNet's 1×1 shortcut and the heads' final 1×1 have no bias; every BatchNorm is the default
(eps 1e-5).

Differences from the official code, none changing a value:
- ``forward`` returns only the main head (the official ``forward(x)[0]``), so the export holds
  one output; the auxiliary heads exist only so the official checkpoint loads strictly;
- the global-average branch is a broadcast add rather than a nearest upsample of a 1×1 map,
  and the attention pools are adaptive pools (``GlobalAveragePool`` in ONNX, any input size);
- loading is strict: missing, unexpected or misshapen tensors are refused by name.

Input ``input`` [N,3,H,W] RGB, ImageNet mean/std normalised (SimSwap feeds 512×512);
output ``logits`` [N,19,H,W], unnormalised class scores (argmax over dim 1 = class map).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engines.base import TensorSpec
from export.simswap import CheckpointError, load_state_dict_strict, read_state_dict

log = logging.getLogger(__name__)

N_CLASSES = 19
INPUT_SIZE = 512
INPUT_NAME = "input"
OUTPUT_NAME = "logits"
# torchvision's ImageNet statistics, what SimSwap normalises the crop with before parsing.
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
# The engine interface (ONNX graph, and a TorchEngine around ``BiSeNet`` on the GPU path).
INPUTS = (TensorSpec(INPUT_NAME, ("batch", 3, INPUT_SIZE, INPUT_SIZE), "float32"),)
OUTPUTS = (TensorSpec(OUTPUT_NAME, ("batch", N_CLASSES, INPUT_SIZE, INPUT_SIZE), "float32"),)


class ConvBNReLU(nn.Module):
    """conv (no bias) → BatchNorm → ReLU; keys ``conv.weight``, ``bn.*``."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int = 1,
                 padding: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


class BasicBlock(nn.Module):
    """ResNet basic block; a 1×1 conv + BN shortcut when the shape changes."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample: nn.Sequential | None = None
        if cin != cout or stride != 1:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(shortcut + branch)


def _spatial(x: torch.Tensor) -> tuple[int, int]:
    """H, W as plain ints: the export then holds constant resize sizes (H and W are fixed
    at 512 there; only the batch is dynamic), so every output dimension is static."""
    return int(x.shape[2]), int(x.shape[3])


def _stage(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1))


class ResNet18Features(nn.Module):
    """ResNet-18 without its classifier, returning the 1/8, 1/16 and 1/32 feature maps."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = _stage(64, 64, 1)
        self.layer2 = _stage(64, 128, 2)
        self.layer3 = _stage(128, 256, 2)
        self.layer4 = _stage(256, 512, 2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.layer1(self.maxpool(F.relu(self.bn1(self.conv1(x)))))
        eighth = self.layer2(x)
        sixteenth = self.layer3(eighth)
        return eighth, sixteenth, self.layer4(sixteenth)


class AttentionRefinement(nn.Module):
    """conv block, then a channel gate: sigmoid(BN(1×1 conv(global mean)))."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = ConvBNReLU(cin, cout)
        self.conv_atten = nn.Conv2d(cout, cout, 1, bias=False)
        self.bn_atten = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.conv(x)
        gate = torch.sigmoid(self.bn_atten(self.conv_atten(F.adaptive_avg_pool2d(feat, 1))))
        return feat * gate


class ContextPath(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.resnet = ResNet18Features()
        self.arm16 = AttentionRefinement(256, 128)
        self.arm32 = AttentionRefinement(512, 128)
        self.conv_head32 = ConvBNReLU(128, 128)
        self.conv_head16 = ConvBNReLU(128, 128)
        self.conv_avg = ConvBNReLU(512, 128, kernel=1, padding=0)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        eighth, sixteenth, thirtysecond = self.resnet(x)
        # A 1×1 map upsampled (nearest) to any size is a broadcast.
        context = self.conv_avg(F.adaptive_avg_pool2d(thirtysecond, 1))
        sum32 = self.arm32(thirtysecond) + context
        up32 = self.conv_head32(F.interpolate(sum32, size=_spatial(sixteenth), mode="nearest"))
        sum16 = self.arm16(sixteenth) + up32
        up16 = self.conv_head16(F.interpolate(sum16, size=_spatial(eighth), mode="nearest"))
        return eighth, up16, up32


class FeatureFusion(nn.Module):
    """concat → 1×1 conv block; output = feat + feat · sigmoid(squeeze-excite(mean(feat)))."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.convblk = ConvBNReLU(cin, cout, kernel=1, padding=0)
        self.conv1 = nn.Conv2d(cout, cout // 4, 1, bias=False)
        self.conv2 = nn.Conv2d(cout // 4, cout, 1, bias=False)

    def forward(self, spatial: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        feat = self.convblk(torch.cat([spatial, context], dim=1))
        gate = torch.sigmoid(self.conv2(F.relu(self.conv1(F.adaptive_avg_pool2d(feat, 1)))))
        return feat * gate + feat


class OutputHead(nn.Module):
    def __init__(self, cin: int, mid: int, n_classes: int) -> None:
        super().__init__()
        self.conv = ConvBNReLU(cin, mid)
        self.conv_out = nn.Conv2d(mid, n_classes, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_out(self.conv(x))


class BiSeNet(nn.Module):
    """BiSeNet face parser; ``forward`` → main-head logits at the input's resolution."""

    def __init__(self, n_classes: int = N_CLASSES) -> None:
        super().__init__()
        self.n_classes = n_classes
        self.cp = ContextPath()
        self.ffm = FeatureFusion(256, 256)
        self.conv_out = OutputHead(256, 256, n_classes)
        # Auxiliary training heads: in the checkpoint, unused at inference.
        self.conv_out16 = OutputHead(128, 64, n_classes)
        self.conv_out32 = OutputHead(128, 64, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        eighth, context8, _context16 = self.cp(x)
        logits = self.conv_out(self.ffm(eighth, context8))
        return F.interpolate(logits, size=_spatial(x), mode="bilinear", align_corners=True)


def normalise(rgb: np.ndarray) -> np.ndarray:
    """uint8 (or [0,1] float) RGB crops [H,W,3] or [N,H,W,3] → the parser's float32 input
    [N,3,H,W] (ImageNet mean/std). Resizing to 512 is the caller's choice of filter."""
    array = np.asarray(rgb)
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4 or array.shape[-1] != 3:
        raise ValueError(f"expected RGB [H,W,3] or [N,H,W,3], got shape {array.shape}")
    pixels = array.astype(np.float32)
    if array.dtype == np.uint8:
        pixels /= 255.0
    mean = np.asarray(MEAN, np.float32)
    std = np.asarray(STD, np.float32)
    return np.ascontiguousarray(((pixels - mean) / std).transpose(0, 3, 1, 2))


def load_parser(path: Path) -> BiSeNet:
    """Load ``79999_iter.pth`` (a plain BiSeNet state_dict) strictly; eval mode, CPU."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    state = read_state_dict(path, str(path), what="a BiSeNet state_dict")
    model = BiSeNet(N_CLASSES)
    if not set(state) & set(model.state_dict()):
        # Another model's checkpoint: hundreds of names would bury the point.
        sample = ", ".join(sorted(state)[:3]) or "none"
        raise CheckpointError(f"{path} does not match BiSeNet: it holds none of the face "
                              f"parser's keys (first keys: {sample}); expected "
                              "face-parsing.PyTorch's 79999_iter.pth")
    load_state_dict_strict(model, state, str(path))
    log.info("loaded the BiSeNet face parser from %s", path)
    return model.eval()
