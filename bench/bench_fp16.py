"""Cited by docs/performance.md, "FP16 drift".

How far FP16 drifts from FP32 for SimSwap-shaped generators, on real face crops.

    .venv/bin/python bench/bench_fp16.py [--real] [--size 224] [--threads 1]

Generators have seeded random weights ("large-activation": block convs scaled so the values
entering instance norm exceed ±256, where x² leaves the FP16 range). Rows, each against FP32 on
the astronaut and Grace Hopper face crops (worst of the two), output RGB in [0, 1]:
- ``all-fp16``: every op in FP16 (torch's CPU float16 ops, instance norm written out);
- ``mixed``: the same with instance norm (and so the style multiply/add) in FP32;
- ``mixed ONNX/ORT``: the graph ``export.fp16.convert_to_fp16`` writes, on ONNX Runtime CPU
  (which runs some FP16 nodes in FP32 internally, so it under-states FP16 rounding).
``--real`` adds the real SimSwap architecture (export/simswap.py): one export, tens of seconds.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import onnx
import torch
from torch import nn

from export import fp16

STYLE_DIM = 512


class AdaINBlock(nn.Module):
    """SimSwap's residual block in miniature: pad, conv, instance norm (eps 1e-8), style."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3),
                                   nn.InstanceNorm2d(channels, eps=1e-8))
        self.style1 = nn.Linear(STYLE_DIM, 2 * channels)
        self.conv2 = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3),
                                   nn.InstanceNorm2d(channels, eps=1e-8))
        self.style2 = nn.Linear(STYLE_DIM, 2 * channels)

    @staticmethod
    def _style(x: torch.Tensor, linear: nn.Linear, z: torch.Tensor) -> torch.Tensor:
        s = linear(z).view(z.shape[0], 2, x.shape[1], 1, 1)
        return x * (1 + s[:, 0]) + s[:, 1]

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self._style(self.conv1(x), self.style1, z))
        return x + self._style(self.conv2(y), self.style2, z)


class TinyGenerator(nn.Module):
    """Generator-shaped: stem conv, one down, AdaIN blocks, bilinear up, conv, tanh, (x+1)/2."""

    def __init__(self, channels: int = 32, blocks: int = 2) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(3, channels // 2, 7),
                                  nn.BatchNorm2d(channels // 2), nn.ReLU())
        self.down = nn.Sequential(nn.Conv2d(channels // 2, channels, 3, 2, 1),
                                  nn.BatchNorm2d(channels), nn.ReLU())
        self.blocks = nn.ModuleList(AdaINBlock(channels) for _ in range(blocks))
        self.up = nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                                nn.Conv2d(channels, channels // 2, 3, 1, 1),
                                nn.BatchNorm2d(channels // 2), nn.ReLU())
        self.last = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(channels // 2, 3, 7))

    def forward(self, target: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        x = self.down(self.stem(target))
        for block in self.blocks:
            x = block(x, source)
        return (torch.tanh(self.last(self.up(x))) + 1) / 2


def signal_preserving_init(model: nn.Module) -> nn.Module:
    """He-normal convs: PyTorch's default init shrinks the signal at each layer until the
    output is a constant from the biases, which would make any drift look tiny. The last conv
    is then scaled so tanh stays mostly unsaturated (a saturated output hides every error)."""
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    for conv in convs:
        nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
    with torch.no_grad():
        convs[-1].weight.mul_(0.05)
    return model


def make_tiny(seed: int = 0, *, large: bool = False, gain: float = 400.0) -> nn.Module:
    """Seeded random weights. ``large`` scales the block convs so instance norm's input
    exceeds ±256 (and its x² the FP16 range) on real faces."""
    torch.manual_seed(seed)
    model = signal_preserving_init(TinyGenerator()).eval()
    if large:
        with torch.no_grad():
            for block in (m for m in model.modules() if isinstance(m, AdaINBlock)):
                for seq in (block.conv1, block.conv2):
                    conv = seq[1]
                    assert isinstance(conv, nn.Conv2d)
                    conv.weight.mul_(gain)
    return model


def make_real(seed: int = 0, *, large: bool = False, size: int = 224) -> nn.Module:
    """The real SimSwap architecture (export/simswap.py) with seeded random weights."""
    from export.simswap import SimSwapGenerator

    torch.manual_seed(seed)
    model = signal_preserving_init(SimSwapGenerator(size)).eval()
    if large:
        with torch.no_grad():
            for name, param in model.named_parameters():
                if name.startswith("BottleNeck") and ".conv" in name and name.endswith("weight"):
                    param.mul_(400.0)
    return model


def export_onnx(model: nn.Module, size: int) -> onnx.ModelProto:
    target = torch.rand(1, 3, size, size)
    source = torch.nn.functional.normalize(torch.randn(1, STYLE_DIM), dim=1)
    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation chatter
        path = str(Path(folder) / "generator.onnx")
        torch.onnx.export(model, (target, source), path, input_names=["target", "source"],
                          output_names=["output"], opset_version=17, dynamo=False)
        return onnx.load(path)


def face_crops(size: int) -> list[np.ndarray]:
    """Real portraits (scikit-image astronaut, matplotlib Grace Hopper) cropped around the face
    and resized: RGB float32 [1, 3, size, size] in [0, 1]."""
    import cv2
    from matplotlib import cbook
    from skimage import data

    astronaut = data.astronaut()  # RGB
    hopper_bgr = cv2.imread(str(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))
    if hopper_bgr is None:
        raise FileNotFoundError("matplotlib's grace_hopper.jpg sample could not be read")
    hopper = cv2.cvtColor(hopper_bgr, cv2.COLOR_BGR2RGB)
    # face boxes (x0, y0, x1, y1) read off the two portraits
    crops = [astronaut[20:260, 120:360], hopper[40:360, 90:410]]
    out = []
    for crop in crops:
        resized = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
        out.append(resized.astype(np.float32).transpose(2, 0, 1)[None] / 255.0)
    return out


class ExplicitInstanceNorm(nn.Module):
    """Instance norm written out in ``dtype``: mean, x - mean, (x - mean)², mean, + eps, sqrt.

    torch's own CPU kernel computes FP16 instance norm in FP32, which hides the overflow; this
    is the arithmetic an FP16 GPU kernel does (eps 1e-8 becomes 0 in FP16, exactly the hazard).
    """

    def __init__(self, eps: float, dtype: torch.dtype) -> None:
        super().__init__()
        self.eps = eps
        self.dtype = dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.dtype)
        mean = x.mean(dim=(2, 3), keepdim=True)
        centred = x - mean
        var = (centred * centred).mean(dim=(2, 3), keepdim=True)
        return centred / torch.sqrt(var + torch.tensor(self.eps, dtype=self.dtype))


def _cast_inputs_to_weight(module: nn.Module, args: tuple[torch.Tensor, ...]) -> tuple:
    weight = getattr(module, "weight", None)
    if not isinstance(weight, torch.Tensor):
        return args
    return tuple(a.to(weight.dtype) if isinstance(a, torch.Tensor) else a for a in args)


def emulate(model: nn.Module, variant: str) -> nn.Module:
    """A half-precision copy of ``model`` run with torch's CPU float16 ops (each op rounds
    its result to FP16). ``all-fp16``: instance norm in FP16 too. ``mixed``: instance norm in
    FP32, so the style multiply/add after it are FP32 by type promotion; every conv/linear
    casts its input back to FP16 (the mixed ONNX graph's Cast nodes)."""
    import copy

    emulated = copy.deepcopy(model).half().eval()
    norm_dtype = torch.float32 if variant == "mixed" else torch.float16
    for parent in emulated.modules():
        for child_name, child in list(parent.named_children()):
            if isinstance(child, nn.InstanceNorm2d):
                setattr(parent, child_name, ExplicitInstanceNorm(child.eps, norm_dtype))
    for module in emulated.modules():
        if isinstance(module, nn.Conv2d | nn.Linear | nn.BatchNorm2d):
            module.register_forward_pre_hook(_cast_inputs_to_weight)
    return emulated


@dataclass(frozen=True)
class DriftRow:
    generator: str
    variant: str  # "all-fp16", "mixed" (torch FP16 arithmetic) or "mixed ONNX/ORT"
    max_abs: float
    psnr_db: float
    finite: bool
    peak_norm_input: float  # largest |x - mean| entering an instance norm, FP32 run


def _peak_norm_input(model: nn.Module, target: torch.Tensor, source: torch.Tensor) -> float:
    """Largest |x - mean| entering any InstanceNorm2d in an FP32 run: past 256 its square
    leaves the FP16 range."""
    peaks: list[float] = []

    def hook(_module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        x = args[0]
        peaks.append(float((x - x.mean(dim=(2, 3), keepdim=True)).abs().max()))

    handles = [m.register_forward_pre_hook(hook) for m in model.modules()
               if isinstance(m, nn.InstanceNorm2d)]
    with torch.no_grad():
        model(target, source)
    for handle in handles:
        handle.remove()
    return max(peaks, default=0.0)


def measure(name: str, model: nn.Module, size: int, seed: int = 0,
            model32: onnx.ModelProto | None = None, crops: int = 2,
            mixed_onnx: onnx.ModelProto | None = None) -> list[DriftRow]:
    """Drift of all-FP16 and mixed against FP32 over the real face crops (worst case), and of
    the mixed ONNX graph from ``export.fp16`` on ONNX Runtime when ``model32`` is given
    (``mixed_onnx``: that graph already converted from ``model32``, to convert it once)."""
    generator = torch.Generator().manual_seed(seed)
    source = torch.nn.functional.normalize(torch.randn(1, STYLE_DIM, generator=generator), dim=1)
    emulated = {v: emulate(model, v) for v in ("all-fp16", "mixed")}
    if mixed_onnx is None and model32 is not None:
        mixed_onnx = fp16.convert_to_fp16(model32, "mixed")
    results: dict[str, list[tuple[float, float]]] = {}
    peak = 0.0
    for crop in face_crops(size)[:crops]:
        target = torch.from_numpy(crop)
        with torch.no_grad():
            reference = model(target, source).numpy()
            outputs = {v: m(target.half(), source.half()).float().numpy()
                       for v, m in emulated.items()}
        if mixed_onnx is not None:
            outputs["mixed ONNX/ORT"] = fp16.run_onnx(
                mixed_onnx, {"target": crop, "source": source.numpy()})
        peak = max(peak, _peak_norm_input(model, target, source))
        for variant, out in outputs.items():
            results.setdefault(variant, []).append(
                (fp16.max_abs_error(reference, out), fp16.psnr(reference, out)))
    rows = []
    for variant, values in results.items():
        errors = [v[0] for v in values]
        psnrs = [v[1] for v in values]
        finite = all(np.isfinite(e) for e in errors)
        rows.append(DriftRow(name, variant, max(errors),
                             min(psnrs) if finite else float("nan"), finite, peak))
    return rows


def cases(real: bool, size: int) -> list[tuple[str, Callable[[], nn.Module], int]]:
    found: list[tuple[str, Callable[[], nn.Module], int]] = [
        ("tiny random", lambda: make_tiny(0), 128),
        ("tiny large-activation", lambda: make_tiny(0, large=True), 128),
    ]
    if real:
        found += [
            (f"simswap-{size} random", lambda: make_real(0, size=size), size),
            (f"simswap-{size} large-activation", lambda: make_real(0, large=True, size=size),
             size),
        ]
    return found


def format_table(rows: list[DriftRow]) -> str:
    lines = [f"{'generator':32} {'graph':14} {'max abs err':>12} {'PSNR dB':>8} {'finite':>6} "
             f"{'|x-μ| in IN':>11}"]
    for r in rows:
        lines.append(f"{r.generator:32} {r.variant:14} {r.max_abs:12.3g} {r.psnr_db:8.1f} "
                     f"{'yes' if r.finite else 'NO':>6} {r.peak_norm_input:11.3g}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", action="store_true", help="also the real SimSwap architecture")
    parser.add_argument("--size", type=int, default=224, choices=(224, 512))
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows: list[DriftRow] = []
    for name, build, size in cases(args.real, args.size):
        model = build()
        rows += measure(name, model, size, model32=export_onnx(model, size))
    print(format_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
