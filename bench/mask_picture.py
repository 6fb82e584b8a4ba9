"""Cited by docs/using.md, "Masks and colour".

Draw docs/parsing_mask.png: an aligned target crop, the parser's class map, the soft
parsing mask, and the box mask it is multiplied with (docs/using.md, "Masks and colour").

``python -m bench.mask_picture [--models-dir DIR] [--output docs/parsing_mask.png]``: with
an installed ``face-parsing`` model the picture shows its real parse; without one it uses
the seeded random-weight BiSeNet and says so in the picture.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np


def _panel(image: np.ndarray, title: str) -> np.ndarray:
    out = cv2.resize(image, (256, 256), interpolation=cv2.INTER_NEAREST)
    bar = np.full((28, 256, 3), 255, np.uint8)
    cv2.putText(bar, title, (6, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([bar, out])


def main(argv: list[str] | None = None) -> int:
    import torch

    from realtime.faces.align import warp_face
    from realtime.faces.detect import make_detector
    from realtime.frame.composite import crop_mask
    from realtime.frame.masks import KEPT_CLASSES, face_mask, parser_input
    from realtime.frame.parsing import load_parser, parser_installed
    from realtime.io.clip import source_portrait

    parser = argparse.ArgumentParser(description="draw the parsing-mask picture")
    parser.add_argument("--models-dir", type=Path, default=None)
    parser.add_argument("--output", type=Path, default=Path("docs/parsing_mask.png"))
    opts = parser.parse_args(argv)
    image = source_portrait()
    detector = make_detector("auto", opts.models_dir or Path("/nonexistent"))
    face = max(detector.detect(image), key=lambda d: d.area)
    crop = warp_face(image, face.landmarks, "simswap-224").crop
    if opts.models_dir is not None and parser_installed(opts.models_dir):
        logits = load_parser(opts.models_dir).logits(parser_input([crop]))[0]
        note = "real face-parsing weights"
    else:
        from export.random_models import make_parser

        with torch.inference_mode():
            logits = make_parser(0)(torch.from_numpy(parser_input([crop]))).numpy()[0]
        note = "RANDOM-weight BiSeNet (no real weights here): the parse is meaningless"
    classes = logits.argmax(axis=0)
    palette = np.random.default_rng(3).integers(40, 255, (19, 3)).astype(np.uint8)
    palette[0] = 0
    colour = cv2.resize(palette[classes], (224, 224), interpolation=cv2.INTER_NEAREST)
    kept = np.isin(classes, KEPT_CLASSES)
    soft = face_mask(classes, 224)
    soft = np.zeros((224, 224), np.float32) if soft is None else soft
    box = crop_mask(224, 0.08)
    grey = lambda m: cv2.cvtColor((m * 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)  # noqa: E731
    row = np.hstack([_panel(crop, "target crop"), _panel(colour, "class map"),
                     _panel(grey(cv2.resize(kept.astype(np.float32), (224, 224))), "kept classes"),
                     _panel(grey(soft), "soft-eroded mask"),
                     _panel(grey(box * soft), "x box mask")])
    foot = np.full((30, row.shape[1], 3), 255, np.uint8)
    cv2.putText(foot, note, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 200), 1, cv2.LINE_AA)
    opts.output.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(opts.output), np.vstack([row, foot]))
    print(f"wrote {opts.output} ({note})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
