"""Regenerate ``tests/golden/parsing_bisenet.npz``: the official BiSeNet face parser's logits on
swapcam's seeded random weights and a real face crop.

The numbers come from SimSwap's own ``parsing_model/`` (the BiSeNet of face-parsing.PyTorch)
at neuralchen/SimSwap commit bd7b7686a17f41dd11cfcd5d82f7e4c5eb94b780, run with torch 2.13.0
(CPU). None of that code is in this repository: this script imports it from a checkout given
on the command line::

    git --git-dir=<SimSwap git dir> archive <commit> parsing_model | tar x -C /tmp/simswap
    .venv/bin/python tests/golden/make_parsing_golden.py /tmp/simswap

Weights: ``export.random_models.write_parsing_checkpoint(seed=SEED)`` (a plain state_dict in the
official key layout), loaded by the official ``BiSeNet(n_classes=19).load_state_dict``.
Inputs (batch of 2): the astronaut's face from scikit-image (a 192 px crop resized to 512 with
nearest-neighbour indices, as SimSwap's ``F.interpolate`` default does), ImageNet-normalised;
and seeded standard-normal noise. The official ``resnet.py`` downloads ImageNet weights when
built: its ``model_zoo.load_url`` is replaced by one returning nothing (the checkpoint
overwrites every tensor anyway), and ``torchvision`` (imported, unused) is stubbed if absent.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import types
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script: make the repository importable
    sys.path.insert(0, str(ROOT))

GOLDEN = Path(__file__).with_name("parsing_bisenet.npz")
COMMIT = "bd7b7686a17f41dd11cfcd5d82f7e4c5eb94b780"
SEED = 10
SIZE = 512
FACE_BOX = (24, 216, 132, 324)  # rows, cols of the astronaut's face in skimage's 512×512 image
GRID = (slice(None), slice(None), slice(8, None, 32), slice(8, None, 32))  # 16×16 per map
ROW = 256


def face_crop() -> np.ndarray:
    """The astronaut's face, uint8 RGB [512,512,3]."""
    from skimage import data

    top, bottom, left, right = FACE_BOX
    crop = data.astronaut()[top:bottom, left:right]
    # torch's nearest: source index floor(i * in / out), exact in integers
    rows = (np.arange(SIZE) * crop.shape[0]) // SIZE
    cols = (np.arange(SIZE) * crop.shape[1]) // SIZE
    return np.ascontiguousarray(crop[rows][:, cols])


def golden_inputs() -> np.ndarray:
    """float32 [2,3,512,512]: the normalised face crop, then seeded noise."""
    from export.parsing import normalise

    noise = np.random.default_rng(SEED).standard_normal((1, 3, SIZE, SIZE)).astype(np.float32)
    return np.concatenate([normalise(face_crop()), noise])


def digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def state_digest(state: dict[str, object]) -> str:
    """sha256 over the state_dict's names, shapes and float32 bytes, in key order."""
    import torch

    h = hashlib.sha256()
    for key, value in state.items():
        assert isinstance(value, torch.Tensor)
        h.update(f"{key}:{tuple(value.shape)}:{value.dtype};".encode())
        h.update(value.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


# BatchNorm statistics are calibrated by a forward pass (export.random_models), whose float
# sums vary in their last bits with the CPU and thread count: they are compared with a
# tolerance; every other tensor comes from the seeded generator and is compared bit for bit.
STATISTICS = ("running_mean", "running_var")


def seeded_digest(state: dict[str, object]) -> str:
    """``state_digest`` of the tensors drawn from the seed (all but the BatchNorm statistics)."""
    return state_digest({k: v for k, v in state.items() if not k.endswith(STATISTICS)})


def batchnorm_statistics(state: dict[str, object]) -> np.ndarray:
    """Every BatchNorm running mean and variance, float32, concatenated in key order."""
    import torch

    parts = [v.detach().cpu().reshape(-1).numpy() for k, v in state.items()
             if k.endswith(STATISTICS) and isinstance(v, torch.Tensor)]
    return np.concatenate(parts).astype(np.float32)


def summarise(logits: np.ndarray) -> dict[str, np.ndarray]:
    """What the golden file keeps of [N,19,512,512] logits (< 1 MB): a 16×16 grid and the
    middle row of every map, per-map means (float64) and the argmax class histogram."""
    values = np.asarray(logits, dtype=np.float32)
    classes = values.argmax(axis=1)
    return {
        "grid": values[GRID].copy(),
        "row": values[:, :, ROW, :].copy(),
        "channel_mean": values.astype(np.float64).mean(axis=(2, 3)),
        "class_hist": np.stack([np.bincount(c.ravel(), minlength=values.shape[1])
                                for c in classes]),
    }


def _official_bisenet(checkout: Path) -> type:
    import torch.utils.model_zoo

    if str(checkout) not in sys.path:
        sys.path.insert(0, str(checkout))
    try:
        import torchvision  # noqa: F401  (model.py imports it and never uses it)
    except ModuleNotFoundError:
        sys.modules["torchvision"] = types.ModuleType("torchvision")
    torch.utils.model_zoo.load_url = lambda *args, **kwargs: {}  # no ImageNet download
    from parsing_model.model import BiSeNet  # the official class, from the checkout

    return BiSeNet  # type: ignore[no-any-return]


def main(argv: list[str] | None = None) -> int:
    import torch

    from export.random_models import write_parsing_checkpoint

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkout", type=Path, help="folder holding SimSwap's parsing_model/")
    parser.add_argument("--output", type=Path, default=GOLDEN)
    args = parser.parse_args(argv)
    official = _official_bisenet(args.checkout.resolve())
    torch.set_num_threads(max(1, torch.get_num_threads()))
    with tempfile.TemporaryDirectory() as tmp:
        weights = write_parsing_checkpoint(Path(tmp) / "79999_iter.pth", seed=SEED)
        net = official(n_classes=19)
        state = torch.load(weights, map_location="cpu", weights_only=True)
        net.load_state_dict(state)  # what SimSwap does (strict)
    net.eval()
    x = golden_inputs()
    with torch.inference_mode():
        logits = net(torch.from_numpy(x))[0].numpy()
    keys = np.array([f"{k}:{'x'.join(map(str, v.shape))}" for k, v in net.state_dict().items()])
    arrays: dict[str, np.ndarray] = {
        "commit": np.array(COMMIT), "seed": np.array(SEED),
        "torch_version": np.array(torch.__version__), "input_sha256": np.array(digest(x)),
        "weights_sha256": np.array(state_digest(state)),
        "seeded_weights_sha256": np.array(seeded_digest(state)),
        "batchnorm_statistics": batchnorm_statistics(state), "official_keys": keys,
        "shape": np.array(logits.shape), **summarise(logits)}
    with open(args.output, "wb") as handle:
        np.savez_compressed(handle, allow_pickle=False, **arrays)
    print(f"wrote {args.output} ({args.output.stat().st_size} bytes): logits {logits.shape}, "
          f"|max| {np.abs(logits).max():.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
