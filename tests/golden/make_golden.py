"""Regenerate the SimSwap and ArcFace golden files from a checkout of the official code.

    git clone https://github.com/neuralchen/SimSwap /tmp/SimSwap   # or: fetch + git archive
    .venv/bin/python tests/golden/make_golden.py /tmp/SimSwap [--commit SHA]

The golden files in this folder were produced from neuralchen/SimSwap at commit
bd7b7686a17f41dd11cfcd5d82f7e4c5eb94b780 (2024-08-07), with torch 2.13.0 on the CPU.

What runs is the official code, unmodified, imported from the checkout:
``models/fs_networks.py`` (224 generator), ``models/fs_networks_512.py`` (512 generator),
both built as the official ``fs_model.py`` builds them (``n_blocks=9, deep=False``) and
given our seeded weights with ``load_state_dict(strict=True)``; and
``models/arcface_models.py``, through which the ArcFace checkpoint that
``export.random_models`` writes is unpickled with plain ``torch.load``, exactly as the
official ``fs_model.py`` loads ``arcface_checkpoint.tar``. The identity embedding follows
the official test scripts: ImageNet mean/std, ``F.interpolate(size=(112, 112))``,
``F.normalize``. No official code is copied into this repository; only the numbers are.
"""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from export.random_models import make_generator, write_arcface_checkpoint  # noqa: E402
from tests.golden import reference as ref  # noqa: E402


def _commit(checkout: Path) -> str:
    try:
        out = subprocess.run(["git", "-C", str(checkout), "rev-parse", "HEAD"],
                             capture_output=True, text=True, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"


_CHECKOUT: list[Path] = []


def _official(module: str) -> object:
    loaded = importlib.import_module(f"models.{module}")
    origin = Path(str(loaded.__file__)).resolve()
    assert origin.is_relative_to(_CHECKOUT[0]), f"models.{module} came from {origin}"
    return loaded


def make_generator_golden(size: int, commit: str) -> Path:
    seed = ref.GENERATOR_SEEDS[size]
    networks = _official("fs_networks" if size == 224 else "fs_networks_512")
    official = networks.Generator_Adain_Upsample(  # type: ignore[attr-defined]
        input_nc=3, output_nc=3, latent_size=512, n_blocks=9, deep=False)
    state = make_generator(size, seed).state_dict()
    official.load_state_dict(state, strict=True)
    official.eval()
    crop = ref.face_crop_rgb(size)
    source = ref.identity_vector(seed)
    with torch.inference_mode():
        output = official(ref.to_tensor01(crop), source).numpy()
    path = ref.golden_path(f"simswap_{size}")
    np.savez_compressed(
        path, official_commit=commit, seed=seed, size=size,
        weights_sha256=ref.state_digest(state), input_sha256=ref.sha256_array(crop),
        source=source.numpy(), output_shape=np.array(output.shape),
        **ref.summarise_image_output(output),
    )
    return path


def make_arcface_golden(commit: str) -> Path:
    seed = ref.ARCFACE_SEED
    crops = ref.arcface_crops_rgb()
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = write_arcface_checkpoint(Path(tmp) / "arcface_checkpoint.tar", seed)
        _official("arcface_models")  # the classes the pickle names, from the checkout
        official = torch.load(checkpoint, map_location="cpu", weights_only=False)
    official.eval()
    state = official.state_dict()
    x01 = ref.to_tensor01(crops)
    mean = torch.tensor(ref.IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(ref.IMAGENET_STD).view(1, 3, 1, 1)
    with torch.inference_mode():
        raw = official(ref.imagenet_112(x01)).numpy()
        # the official test scripts' identity path
        embedding = F.normalize(official(F.interpolate((x01 - mean) / std, size=(112, 112))),
                                p=2, dim=1).numpy()
    path = ref.golden_path("arcface_simswap")
    np.savez_compressed(
        path, official_commit=commit, seed=seed, weights_sha256=ref.state_digest(state),
        input_sha256=ref.sha256_array(crops), raw=raw, embedding=embedding,
    )
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkout", type=Path, help="a checkout of neuralchen/SimSwap")
    parser.add_argument("--commit", help="the checkout's commit, when it is not a git "
                                         "work tree (e.g. made with git archive)")
    args = parser.parse_args(argv)
    checkout = args.checkout.resolve()
    if not (checkout / "models" / "fs_networks.py").is_file():
        parser.error(f"{checkout}: not a SimSwap checkout (no models/fs_networks.py)")
    commit = args.commit or _commit(checkout)
    _CHECKOUT.append(checkout)
    torch.set_grad_enabled(False)
    sys.path.insert(0, str(checkout))
    # ArcFace first: export.random_models refuses to register its stand-in class names
    # for the pickle once the official module is imported.
    for path in (make_arcface_golden(commit), make_generator_golden(224, commit),
                 make_generator_golden(512, commit)):
        print(f"wrote {path} ({path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
