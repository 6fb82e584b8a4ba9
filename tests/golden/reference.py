"""Golden references computed by the official SimSwap code (see ``make_golden.py``).

Each ``simswap_*.npz`` / ``arcface_*.npz`` holds what the official modules produced on
weights from ``export.random_models`` (seeded, official key layout) and on real face
pixels: the seed, digests of the weights and of the input, the identity vector fed in,
and a sampled grid, a dense patch and per-channel statistics of the output. The inputs
are rebuilt here from scikit-image's astronaut photo (a PNG, so decoding is exact) with
plain array slicing, and checked against the stored digest before anything is compared.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

GOLDEN_DIR = Path(__file__).resolve().parent
TOLERANCE = 1e-4  # max abs difference allowed against the official numbers
GRID_STEP = 8  # the sampled grid: every 8th pixel of each output channel
PATCH = (slice(96, 112), slice(96, 112))  # a dense 16×16 patch (neighbouring pixels)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# (seed, input size) per golden file; the seeds match the models the export tests build,
# so one export serves both the ONNX check and the golden comparison.
GENERATOR_SEEDS = {224: 2, 512: 1}
ARCFACE_SEED = 4


def golden_path(name: str) -> Path:
    return GOLDEN_DIR / f"{name}.npz"


def astronaut_rgb() -> np.ndarray:
    from skimage import data

    image = np.ascontiguousarray(data.astronaut())
    assert image.shape == (512, 512, 3) and image.dtype == np.uint8
    return image


def face_crop_rgb(size: int) -> np.ndarray:
    """A real face as uint8 RGB [size, size, 3]: the astronaut's head (224) or the
    whole 512×512 portrait (512)."""
    image = astronaut_rgb()
    if size == 224:
        return np.ascontiguousarray(image[20:244, 128:352])
    if size == 512:
        return image
    raise ValueError(f"no face crop of size {size}")


def arcface_crops_rgb() -> np.ndarray:
    """Two 224 face crops [2, 224, 224, 3] uint8: the head and its mirror image."""
    face = face_crop_rgb(224)
    return np.ascontiguousarray(np.stack([face, face[:, ::-1]]))


def to_tensor01(rgb: np.ndarray) -> torch.Tensor:
    """uint8 [..., H, W, 3] → float32 [B, 3, H, W] in [0, 1]."""
    batch = rgb[None] if rgb.ndim == 3 else rgb
    return torch.from_numpy(batch.astype(np.float32) / 255.0).permute(0, 3, 1, 2).contiguous()


def imagenet_112(crops01: torch.Tensor) -> torch.Tensor:
    """ArcFace input from [B,3,224,224] crops: ImageNet mean/std, every second pixel."""
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return ((crops01 - mean) / std)[:, :, ::2, ::2].contiguous()


def identity_vector(seed: int) -> torch.Tensor:
    """A unit-length [1, 512] identity vector (stored in the golden file as well)."""
    gen = np.random.default_rng(seed)
    vec = gen.standard_normal((1, 512)).astype(np.float32)
    return torch.from_numpy(vec / np.linalg.norm(vec, axis=1, keepdims=True))


def sha256_array(array: np.ndarray) -> str:
    array = np.ascontiguousarray(array)
    head = f"{array.dtype.str}{array.shape}".encode()
    return hashlib.sha256(head + array.tobytes()).hexdigest()


def state_digest(state: dict[str, torch.Tensor]) -> str:
    """sha256 over every tensor of a state_dict, in key order (names included)."""
    digest = hashlib.sha256()
    for key in sorted(state):
        digest.update(key.encode())
        digest.update(state[key].detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def summarise_image_output(output: np.ndarray) -> dict[str, np.ndarray]:
    """What a golden file keeps of a generator output [B,3,H,W]."""
    output = np.asarray(output, dtype=np.float32)
    return {
        "grid": np.ascontiguousarray(output[:, :, ::GRID_STEP, ::GRID_STEP]),
        "patch": np.ascontiguousarray(output[:, :, PATCH[0], PATCH[1]]),
        "channel_mean": output.astype(np.float64).mean(axis=(2, 3)),
        "channel_std": output.astype(np.float64).std(axis=(2, 3)),
    }


@dataclass(frozen=True)
class Golden:
    name: str
    values: dict[str, Any]

    def __getitem__(self, key: str) -> Any:
        return self.values[key]


def load_golden(name: str) -> Golden:
    with np.load(golden_path(name), allow_pickle=False) as data:
        return Golden(name, {key: data[key] for key in data.files})


def check_input(golden: Golden, array: np.ndarray) -> None:
    """The rebuilt input must be the one the official code saw."""
    got = sha256_array(array)
    assert got == str(golden["input_sha256"]), (
        f"{golden.name}: the input rebuilt from the astronaut photo differs from the one "
        "the golden numbers were computed on (a different scikit-image sample?); "
        "regenerate with tests/golden/make_golden.py"
    )


def check_weights(golden: Golden, state: dict[str, torch.Tensor]) -> None:
    got = state_digest(state)
    assert got == str(golden["weights_sha256"]), (
        f"{golden.name}: the seeded weights differ from those the golden numbers were "
        "computed on (torch's random generator changed?); regenerate with "
        "tests/golden/make_golden.py"
    )


def compare_image_output(golden: Golden, output: np.ndarray,
                         tolerance: float = TOLERANCE) -> None:
    """Every stored piece of a generator output within ``tolerance`` of the official one."""
    got = summarise_image_output(output)
    for key, value in got.items():
        want = golden[key]
        assert value.shape == want.shape, f"{golden.name} {key}: shape {value.shape}, " \
                                          f"official {want.shape}"
        diff = float(np.max(np.abs(value.astype(np.float64) - want.astype(np.float64))))
        assert diff <= tolerance, (f"{golden.name} {key}: differs from the official output "
                                   f"by {diff:.3e} (max abs), allowed {tolerance:.0e}")


def compare_vectors(golden: Golden, key: str, got: np.ndarray,
                    tolerance: float = TOLERANCE) -> None:
    want = golden[key]
    assert got.shape == want.shape, f"{golden.name} {key}: shape {got.shape}, " \
                                    f"official {want.shape}"
    diff = float(np.max(np.abs(got.astype(np.float64) - want.astype(np.float64))))
    assert diff <= tolerance, (f"{golden.name} {key}: differs from the official output by "
                               f"{diff:.3e} (max abs), allowed {tolerance:.0e}")
