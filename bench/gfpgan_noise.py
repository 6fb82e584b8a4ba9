"""Cited by docs/performance.md, "Face enhancer".

GFPGAN 1.4 with its stored noise vs the official fresh noise per call, on real face crops.

    .venv/bin/python bench/gfpgan_noise.py --weights GFPGANv1.4.pth [--draws 3]

The official ``GFPGANer.enhance`` draws new StyleGAN noise on every call
(``randomize_noise=True``); swapcam uses the checkpoint's stored noise buffers so the output
is reproducible and exportable. For the astronaut and Grace Hopper (FFHQ-aligned 512 crops
through the RetinaFace detector), this prints the PSNR and the largest pixel difference
(0–255 images, after the official clamp) between the stored-noise output and each of
``--draws`` fresh-noise outputs, and between two fresh-noise outputs (the official code's own
call-to-call variation).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def crops() -> dict[str, np.ndarray]:
    import cv2
    from matplotlib import cbook
    from skimage import data

    from realtime.faces.align import warp_face
    from realtime.faces.detect import make_detector

    grace = cv2.imread(str(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))
    assert grace is not None
    images = {"astronaut": np.ascontiguousarray(data.astronaut()[:, :, ::-1]),
              "grace_hopper": grace}
    detector = make_detector("retinaface", Path("/nonexistent"), engine="onnxruntime-cpu")
    out = {}
    for name, image in images.items():
        best = max(detector.detect(image), key=lambda d: d.area)
        out[name] = warp_face(image, best.landmarks, "simswap-512").crop  # the FFHQ template
    return out


def to_pixels(out: np.ndarray) -> np.ndarray:
    return np.round((np.clip(out, -1, 1) + 1) * 127.5)


def psnr255(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, required=True)
    parser.add_argument("--draws", type=int, default=3)
    args = parser.parse_args(argv)
    import torch

    from export.gfpgan import load_gfpgan

    net = load_gfpgan(args.weights)
    torch.manual_seed(0)
    for name, crop in crops().items():
        rgb = crop[:, :, ::-1].astype(np.float32) / 255.0
        x = torch.from_numpy(((rgb - 0.5) / 0.5).transpose(2, 0, 1)[None].copy())
        with torch.inference_mode():
            stored = to_pixels(net(x, randomize_noise=False).numpy())
            fresh = [to_pixels(net(x, randomize_noise=True).numpy()) for _ in range(args.draws)]
        rows = [(psnr255(stored, f), float(np.abs(stored - f).max())) for f in fresh]
        between = psnr255(fresh[0], fresh[1]) if len(fresh) > 1 else float("nan")
        print(f"{name}: stored vs fresh noise PSNR "
              f"{', '.join(f'{p:.1f}' for p, _ in rows)} dB, max |diff| "
              f"{', '.join(f'{m:.0f}' for _, m in rows)} of 255; fresh vs fresh "
              f"{between:.1f} dB", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
