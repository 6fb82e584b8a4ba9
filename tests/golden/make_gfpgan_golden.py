"""Regenerate ``tests/golden/gfpgan_v14.npz``: the official GFPGANv1Clean's output on swapcam's
seeded random weights and a real face.

The numbers come from TencentARC/GFPGAN's own ``gfpgan/archs/gfpganv1_clean_arch.py`` and
``stylegan2_clean_arch.py`` at commit 7552a7791caad982045a7bbe5634bbf1cd5c8679, run with torch
2.13.0 (CPU). None of that code is in this repository: this script imports it from a checkout
given on the command line::

    git --git-dir=<GFPGAN git dir> archive <commit> gfpgan/archs/gfpganv1_clean_arch.py \\
        gfpgan/archs/stylegan2_clean_arch.py | tar x -C /tmp/gfpgan
    .venv/bin/python tests/golden/make_gfpgan_golden.py /tmp/gfpgan

Those two files import only torch and two names from ``basicsr`` (``ARCH_REGISTRY`` and
``default_init_weights``, used for registration and initial values, both overwritten by the
checkpoint): small stand-ins are put in ``sys.modules`` instead of installing basicsr.

Model: built as ``GFPGANer`` builds it for 1.4 (``arch='clean'``: out_size 512,
num_style_feat 512, channel_multiplier 2, num_mlp 8, input_is_latent, different_w, narrow 1,
sft_half), weights ``export.random_models.make_gfpgan(seed=SEED)`` loaded with
``load_state_dict(strict=True)``. Input: scikit-image's astronaut (512×512, the face fills it)
normalised as ``GFPGANer.enhance`` does, ``(x/255 − 0.5)/0.5`` in RGB. Output: the official
``forward(x, return_rgb=False, randomize_noise=False)[0]`` (the stored noise), before the
clamp of ``tensor2img``.
"""

from __future__ import annotations

import argparse
import sys
import types
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script: make the repository importable
    sys.path.insert(0, str(ROOT))

from tests.golden import reference  # noqa: E402

GOLDEN = Path(__file__).with_name("gfpgan_v14.npz")
COMMIT = "7552a7791caad982045a7bbe5634bbf1cd5c8679"
SEED = 5
STEP = 16  # sampled grid: every 16th pixel (32×32 per channel)
PATCH = (slice(240, 256), slice(240, 256))  # a dense 16×16 patch between the eyes


def golden_input() -> np.ndarray:
    """float32 [1,3,512,512]: the astronaut as GFPGANer.enhance normalises a crop."""
    rgb = reference.face_crop_rgb(512).astype(np.float32) / np.float32(255.0)
    return np.ascontiguousarray(((rgb - 0.5) / 0.5).transpose(2, 0, 1)[None])


def summarise(output: np.ndarray) -> dict[str, np.ndarray]:
    output = np.asarray(output, dtype=np.float32)
    return {
        "grid": np.ascontiguousarray(output[:, :, ::STEP, ::STEP]),
        "patch": np.ascontiguousarray(output[:, :, PATCH[0], PATCH[1]]),
        "channel_mean": output.astype(np.float64).mean(axis=(2, 3)),
        "channel_std": output.astype(np.float64).std(axis=(2, 3)),
    }


def _stub_basicsr() -> None:
    class Registry:
        def register(self, obj: object = None) -> object:
            return obj if obj is not None else (lambda o: o)

    def default_init_weights(*_args: object, **_kwargs: object) -> None:
        return None  # the checkpoint overwrites every tensor

    names = ("basicsr", "basicsr.utils", "basicsr.utils.registry", "basicsr.archs",
             "basicsr.archs.arch_util")
    modules = {name: types.ModuleType(name) for name in names}
    modules["basicsr.utils.registry"].ARCH_REGISTRY = Registry()  # type: ignore[attr-defined]
    modules["basicsr.archs.arch_util"].default_init_weights = (  # type: ignore[attr-defined]
        default_init_weights)
    sys.modules.update(modules)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkout", type=Path, help="folder holding gfpgan/archs/*.py")
    args = parser.parse_args()
    import torch

    from export.random_models import make_gfpgan

    _stub_basicsr()
    sys.path.insert(0, str(args.checkout))
    from gfpgan.archs.gfpganv1_clean_arch import GFPGANv1Clean  # type: ignore[import-not-found]

    ours = make_gfpgan(seed=SEED)
    state = {k: v.detach().clone() for k, v in ours.state_dict().items()}
    official = GFPGANv1Clean(out_size=512, num_style_feat=512, channel_multiplier=2,
                             decoder_load_path=None, fix_decoder=False, num_mlp=8,
                             input_is_latent=True, different_w=True, narrow=1, sft_half=True)
    official.load_state_dict(state, strict=True)
    official.eval()
    x = golden_input()
    with torch.no_grad():
        image, _ = official(torch.from_numpy(x), return_rgb=False, randomize_noise=False)
    out = image.numpy()
    arrays: dict[str, np.ndarray] = {
        "seed": np.array(SEED, dtype=np.int64), "commit": np.array(COMMIT),
        "torch_version": np.array(torch.__version__),
        "weights_sha256": np.array(reference.state_digest(state)),
        "input_sha256": np.array(reference.sha256_array(x)), **summarise(out)}
    np.savez_compressed(GOLDEN, allow_pickle=False, **arrays)
    print(f"wrote {GOLDEN} ({GOLDEN.stat().st_size} bytes); output mean "
          f"{float(out.mean()):.4f}, std {float(out.std()):.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
