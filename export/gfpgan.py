"""GFPGAN 1.4 face restoration (TencentARC, Apache-2.0): the ``GFPGANv1Clean`` network.

Written from the published architecture with its official key names, so the released
``GFPGANv1.4.pth`` (weights under ``params_ema``) loads strictly. Configuration of the
1.4 release, as ``GFPGANer`` builds it: out_size 512, num_style_feat 512,
channel_multiplier 2, narrow 1, num_mlp 8, input_is_latent, different_w, sft_half.

- U-Net encoder: 1×1 conv 3→32 (+leaky ReLU 0.2), seven residual blocks that halve the
  size (bilinear), 3×3 ``final_conv``; ``final_linear`` maps the 4×4 feature to 16 style
  vectors of 512 (the latent; the style MLP is skipped since ``input_is_latent``).
- Decoder side of the U-Net: seven residual blocks that double the size, each adding the
  encoder's skip first; from each level two small conv stacks make the SFT scale and shift.
- StyleGAN2 decoder (the "clean" version, no custom CUDA ops): a learned 4×4 constant,
  modulated and demodulated 3×3 convs (bilinear ×2 before the first conv of each level),
  noise injection, leaky ReLU; on the second half of the channels of each level's first
  conv the SFT ``x·scale + shift``; 1×1 ``ToRGB`` layers summed through bilinear ×2 skips.

Modulated convolutions are computed as ``demod · conv(x · style, W)``, equal to the
official ``conv(x, W · style · demod)`` with a grouped convolution but independent of the
batch size (ONNX and TensorRT take a dynamic batch). Before ``demod`` the values are not
normalised and can leave the FP16 range: the FP16 graph keeps every node under a
``modulated_conv`` module in FP32 (``export.fp16.FP32_SCOPES``).

Inference as ``GFPGANer.enhance``: input RGB in [-1, 1] (``(x/255 − 0.5)/0.5``), output
clamped to [-1, 1]. The official call draws fresh StyleGAN noise each time
(``randomize_noise=True``); ``GfpganEnhancer`` uses the checkpoint's stored noise buffers
(``randomize_noise=False``) so the output is reproducible and exportable.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from export.simswap import CheckpointError, load_state_dict_strict, read_state_dict

OUT_SIZE = 512
STYLE_DIM = 512
LOG_SIZE = 9  # log2(512)
LEVELS = LOG_SIZE - 2  # 8 … 512: seven levels above the 4×4 start
NUM_LATENT = LOG_SIZE * 2 - 2  # 16 style vectors
NUM_NOISE = LEVELS * 2 + 1  # 15 noise maps
CHANNEL_MULTIPLIER = 2
EMA_KEY = "params_ema"
SLOPE = 0.2


def decoder_channels(size: int) -> int:
    """StyleGAN2's channels at ``size`` for channel_multiplier 2, narrow 1."""
    wide = {4: 512, 8: 512, 16: 512, 32: 512}
    return wide.get(size, {64: 256, 128: 128, 256: 64, 512: 32, 1024: 16}.get(size, 0)
                    * CHANNEL_MULTIPLIER)


def unet_channels(size: int) -> int:
    """The U-Net uses half of the decoder's channels."""
    return decoder_channels(size) // 2


def noise_size(index: int) -> int:
    """The side of stored noise map ``index`` (4, 8, 8, 16, 16, …, 512, 512)."""
    return 2 ** ((index + 5) // 2)


class NormStyleCode(nn.Module):
    """The style MLP's first layer (no weights): x / sqrt(mean(x²) + 1e-8)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(torch.mean(x**2, dim=1, keepdim=True) + 1e-8)


class ModulatedConv2d(nn.Module):
    """StyleGAN2's modulated conv (no bias), keys ``modulation`` and ``weight``."""

    def __init__(self, cin: int, cout: int, kernel: int, *, demodulate: bool = True,
                 upsample: bool = False) -> None:
        super().__init__()
        self.modulation = nn.Linear(STYLE_DIM, cin, bias=True)
        self.weight = nn.Parameter(torch.randn(1, cout, cin, kernel, kernel)
                                   / math.sqrt(cin * kernel**2))
        self.demodulate = demodulate
        self.upsample = upsample
        self.padding = kernel // 2

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        scale = self.modulation(style)  # [B, cin]
        weight = self.weight[0]  # [cout, cin, k, k]
        if self.upsample:
            x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
        out = F.conv2d(x * scale[:, :, None, None], weight, padding=self.padding)
        if self.demodulate:
            energy = weight.pow(2).sum(dim=(2, 3))  # [cout, cin]
            demod = torch.rsqrt(scale.pow(2) @ energy.t() + 1e-8)  # [B, cout]
            out = out * demod[:, :, None, None]
        return out


class StyleConv(nn.Module):
    """Modulated 3×3 conv, ×√2, noise (learned strength ``weight``), bias, leaky ReLU."""

    def __init__(self, cin: int, cout: int, *, upsample: bool = False) -> None:
        super().__init__()
        self.modulated_conv = ModulatedConv2d(cin, cout, 3, upsample=upsample)
        self.weight = nn.Parameter(torch.zeros(1))
        self.bias = nn.Parameter(torch.zeros(1, cout, 1, 1))

    def forward(self, x: torch.Tensor, style: torch.Tensor,
                noise: torch.Tensor | None) -> torch.Tensor:
        out = self.modulated_conv(x, style) * math.sqrt(2.0)
        if noise is None:  # the official randomize_noise=True: fresh noise per call
            noise = torch.randn(out.shape[0], 1, out.shape[2], out.shape[3],
                                dtype=out.dtype, device=out.device)
        out = out + self.weight * noise + self.bias
        return F.leaky_relu(out, SLOPE)


class ToRGB(nn.Module):
    """1×1 modulated conv (no demodulation) to RGB, plus the upsampled previous RGB."""

    def __init__(self, cin: int, *, upsample: bool = True) -> None:
        super().__init__()
        self.modulated_conv = ModulatedConv2d(cin, 3, 1, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))
        self.upsample = upsample

    def forward(self, x: torch.Tensor, style: torch.Tensor,
                skip: torch.Tensor | None = None) -> torch.Tensor:
        out = self.modulated_conv(x, style) + self.bias
        if skip is not None:
            if self.upsample:
                skip = F.interpolate(skip, scale_factor=2.0, mode="bilinear",
                                     align_corners=False)
            out = out + skip
        return out


class ConstantInput(nn.Module):
    def __init__(self, channels: int, size: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(1, channels, size, size))

    def forward(self, batch: int) -> torch.Tensor:
        return self.weight.repeat(batch, 1, 1, 1)


class StyleGAN2GeneratorCSFT(nn.Module):
    """The decoder: StyleGAN2 (clean) with SFT on half the channels of each level."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = [NormStyleCode()]
        for _ in range(8):  # unused at inference (input_is_latent) but in the checkpoint
            layers += [nn.Linear(STYLE_DIM, STYLE_DIM), nn.LeakyReLU(SLOPE)]
        self.style_mlp = nn.Sequential(*layers)
        self.constant_input = ConstantInput(decoder_channels(4), 4)
        self.style_conv1 = StyleConv(decoder_channels(4), decoder_channels(4))
        self.to_rgb1 = ToRGB(decoder_channels(4), upsample=False)
        self.style_convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        self.noises = nn.Module()
        for index in range(NUM_NOISE):
            size = noise_size(index)
            self.noises.register_buffer(f"noise{index}", torch.randn(1, 1, size, size))
        cin = decoder_channels(4)
        for level in range(3, LOG_SIZE + 1):
            cout = decoder_channels(2**level)
            self.style_convs.append(StyleConv(cin, cout, upsample=True))
            self.style_convs.append(StyleConv(cout, cout))
            self.to_rgbs.append(ToRGB(cout))
            cin = cout

    def stored_noise(self) -> list[torch.Tensor]:
        return [getattr(self.noises, f"noise{i}") for i in range(NUM_NOISE)]

    def forward(self, latent: torch.Tensor, conditions: list[torch.Tensor],
                randomize_noise: bool = False) -> torch.Tensor:
        noise: list[torch.Tensor | None] = (
            [None] * NUM_NOISE if randomize_noise else list(self.stored_noise()))
        out = self.constant_input(latent.shape[0])
        out = self.style_conv1(out, latent[:, 0], noise[0])
        skip = self.to_rgb1(out, latent[:, 1])
        i = 1
        for level, to_rgb in enumerate(self.to_rgbs):
            first, second = self.style_convs[2 * level], self.style_convs[2 * level + 1]
            out = first(out, latent[:, i], noise[2 * level + 1])
            half = out.shape[1] // 2
            same, sft = out[:, :half], out[:, half:]
            out = torch.cat([same, sft * conditions[i - 1] + conditions[i]], dim=1)
            out = second(out, latent[:, i + 1], noise[2 * level + 2])
            skip = to_rgb(out, latent[:, i + 2], skip)
            i += 2
        return skip


class ResBlock(nn.Module):
    """conv3×3, leaky, bilinear resize, conv3×3, leaky; plus a resized 1×1 skip."""

    def __init__(self, cin: int, cout: int, *, scale: float) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cin, 3, 1, 1)
        self.conv2 = nn.Conv2d(cin, cout, 3, 1, 1)
        self.skip = nn.Conv2d(cin, cout, 1, bias=False)
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.leaky_relu(self.conv1(x), SLOPE)
        out = F.interpolate(out, scale_factor=self.scale, mode="bilinear", align_corners=False)
        out = F.leaky_relu(self.conv2(out), SLOPE)
        x = F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)
        return out + self.skip(x)


def _sft_branch(channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(channels, channels, 3, 1, 1), nn.LeakyReLU(SLOPE),
                         nn.Conv2d(channels, channels, 3, 1, 1))


class GFPGANv1Clean(nn.Module):
    """GFPGAN 1.4's network; ``forward(x)`` → the restored image in about [-1, 1]."""

    def __init__(self) -> None:
        super().__init__()
        self.conv_body_first = nn.Conv2d(3, unet_channels(OUT_SIZE), 1)
        self.conv_body_down = nn.ModuleList()
        cin = unet_channels(OUT_SIZE)
        for level in range(LOG_SIZE, 2, -1):
            cout = unet_channels(2 ** (level - 1))
            self.conv_body_down.append(ResBlock(cin, cout, scale=0.5))
            cin = cout
        self.final_conv = nn.Conv2d(cin, unet_channels(4), 3, 1, 1)
        self.conv_body_up = nn.ModuleList()
        self.toRGB = nn.ModuleList()  # the official key name
        self.condition_scale = nn.ModuleList()
        self.condition_shift = nn.ModuleList()
        cin = unet_channels(4)
        for level in range(3, LOG_SIZE + 1):
            cout = unet_channels(2**level)
            self.conv_body_up.append(ResBlock(cin, cout, scale=2.0))
            self.toRGB.append(nn.Conv2d(cout, 3, 1))  # unused at inference (return_rgb False)
            self.condition_scale.append(_sft_branch(cout))
            self.condition_shift.append(_sft_branch(cout))
            cin = cout
        self.final_linear = nn.Linear(unet_channels(4) * 16, NUM_LATENT * STYLE_DIM)
        self.stylegan_decoder = StyleGAN2GeneratorCSFT()

    def forward(self, x: torch.Tensor, randomize_noise: bool = False) -> torch.Tensor:
        feat = F.leaky_relu(self.conv_body_first(x), SLOPE)
        skips: list[torch.Tensor] = []
        for block in self.conv_body_down:
            feat = block(feat)
            skips.insert(0, feat)
        feat = F.leaky_relu(self.final_conv(feat), SLOPE)
        latent = self.final_linear(feat.flatten(1)).view(x.shape[0], NUM_LATENT, STYLE_DIM)
        conditions: list[torch.Tensor] = []
        for skip, up, scale, shift in zip(skips, self.conv_body_up, self.condition_scale,
                                          self.condition_shift, strict=True):
            feat = up(feat + skip)
            conditions += [scale(feat), shift(feat)]
        return self.stylegan_decoder(latent, conditions, randomize_noise)


class GfpganEnhancer(nn.Module):
    """The exported graph: ``input`` RGB in [-1, 1] → ``output`` clamped to [-1, 1], with
    the stored noise (``randomize_noise=False``); non-finite values pass the clamp
    (``clamp_finite``) so the finiteness check sees them."""

    def __init__(self, net: GFPGANv1Clean) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return clamp_finite(self.net(x, randomize_noise=False))


def clamp_finite(raw: torch.Tensor) -> torch.Tensor:
    """The final clamp to [-1, 1] that lets NaN/Inf through: a plain clamp turns an FP16
    overflow (Inf) into ±1, and the engine's finite check after the graph could never see
    it nor switch to the FP32 engine."""
    return torch.where(torch.isfinite(raw), raw.clamp(-1.0, 1.0), raw)


def state_from_checkpoint(obj: Mapping[str, object], source: str) -> dict[str, torch.Tensor]:
    """The weights GFPGANer loads: ``params_ema``, else ``params`` (as the official
    loader falls back); ``CheckpointError`` when neither holds a mapping."""
    for key in (EMA_KEY, "params"):
        value = obj.get(key)
        if isinstance(value, Mapping):
            return {str(k): v for k, v in value.items()}  # type: ignore[misc]
    raise CheckpointError(f"{source}: expected a GFPGAN checkpoint with '{EMA_KEY}' weights, "
                          f"found keys {sorted(map(str, obj))[:8]}")


def load_gfpgan(path: Path | io.BytesIO, source: str | None = None) -> GFPGANv1Clean:
    """``GFPGANv1.4.pth`` → the network in eval mode, loaded strictly with ``weights_only``
    (a pickle that needs anything but tensors and containers is refused)."""
    name = source or str(path)
    outer = read_state_dict(path, name, what="a GFPGAN checkpoint")
    state = state_from_checkpoint(outer, name)
    net = GFPGANv1Clean()
    load_state_dict_strict(net, state, name)
    return net.eval()


def load_enhancer(path: Path) -> GfpganEnhancer:
    return GfpganEnhancer(load_gfpgan(path)).eval()


def to_input(rgb01: torch.Tensor) -> torch.Tensor:
    """[B,3,512,512] RGB in [0, 1] → the network's input, as GFPGANer normalises."""
    return (rgb01 - 0.5) / 0.5
