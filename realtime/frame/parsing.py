"""The face parser behind the parsing mask: BiSeNet (``face-parsing``) on an engine.

``FaceParser.masks`` turns aligned target crops into soft face masks in crop space
(``realtime.frame.masks`` does the maths); ``masks_torch`` does the same on a torch device
when the engine takes tensors (TensorRT, a CUDA TorchEngine), so the GPU frame path keeps
the masks on the device. Which mask a session uses is ``resolve_mask_mode``'s choice.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from realtime.frame.masks import (
    N_CLASSES,
    PARSE_SIZE,
    masks_from_logits,
    masks_from_logits_torch,
    parser_input,
    parser_input_torch,
)
from realtime.types import ValueTypeError

if TYPE_CHECKING:
    import torch

    from engines.base import Engine

log = logging.getLogger(__name__)

PARSER_MODEL = "face-parsing"
MASK_MODES: tuple[str, ...] = ("auto", "box", "parsing")


class ParserMissing(RuntimeError):
    """``--mask parsing`` was asked for but the ``face-parsing`` model is not installed."""


class FaceParser:
    """BiSeNet on one engine: input [N, 3, 512, 512] (RGB, ImageNet-normalised), first
    output [N, 19, 512, 512] logits. Calls the engine once per batch of crops."""

    def __init__(self, engine: Engine) -> None:
        if len(engine.inputs) != 1 or len(engine.outputs) < 1:
            raise ValueTypeError(
                f"face parser: expected one input and at least one output, got "
                f"{[s.name for s in engine.inputs]} → {[s.name for s in engine.outputs]}")
        spec = engine.inputs[0]
        fixed = [d for d in spec.shape[1:] if isinstance(d, int) and d > 0]
        if len(spec.shape) != 4 or (fixed and tuple(fixed) != (3, PARSE_SIZE, PARSE_SIZE)):
            raise ValueTypeError(f"face parser: expected input [N, 3, {PARSE_SIZE}, "
                                 f"{PARSE_SIZE}], got {spec.shape}")
        self.engine = engine
        self.backend = engine.backend
        self._input = spec.name
        self._output = engine.outputs[0].name
        batch = spec.shape[0]
        self.batched = not isinstance(batch, int) or batch <= 0

    def logits(self, batch: np.ndarray) -> np.ndarray:
        """Run the parser on a prepared [N, 3, 512, 512] batch → [N, 19, 512, 512]."""
        if self.batched:
            out = self.engine.run({self._input: batch})[self._output]
        else:
            out = np.concatenate([self.engine.run({self._input: batch[i:i + 1]})[self._output]
                                  for i in range(len(batch))])
        out = np.asarray(out)
        if out.shape != (len(batch), N_CLASSES, PARSE_SIZE, PARSE_SIZE):
            raise ValueTypeError(f"face parser output: expected [{len(batch)}, {N_CLASSES}, "
                                 f"{PARSE_SIZE}, {PARSE_SIZE}], got {out.shape}")
        return out

    def masks(self, crops: Sequence[np.ndarray]) -> list[np.ndarray | None]:
        """Soft face masks (float32 (S, S)) of BGR uint8 crops; ``None`` where the parser
        found (almost) no face, so that face keeps the box mask as in the official code."""
        if not crops:
            return []
        size = int(crops[0].shape[0])
        return masks_from_logits(self.logits(parser_input(list(crops))), size)

    @property
    def takes_tensors(self) -> bool:
        return callable(getattr(self.engine, "run_torch", None))

    def masks_torch(self, crops: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """``masks`` for device crops (uint8 (S, S, 3) BGR): (float32 [N, S, S], found
        bool [N]) on the crops' device. An engine without ``run_torch`` goes through the
        host (one download of the crops, one upload of the masks)."""
        import torch

        stack = torch.stack(list(crops))
        size = int(stack.shape[1])
        if not self.takes_tensors:
            found_masks = self.masks([c.cpu().numpy() for c in crops])
            host = np.stack([np.zeros((size, size), np.float32) if m is None else m
                             for m in found_masks])
            found = torch.tensor([m is not None for m in found_masks], device=stack.device)
            return torch.from_numpy(host).to(stack.device), found
        batch = parser_input_torch(stack)
        run_torch: Any = self.engine.run_torch  # type: ignore[attr-defined]
        if self.batched:
            logits = self._logits_torch(run_torch({self._input: batch}))
        else:
            logits = torch.cat([self._logits_torch(run_torch({self._input: batch[i:i + 1]}))
                                for i in range(int(batch.shape[0]))])
        return masks_from_logits_torch(logits, size)

    def _logits_torch(self, result: Mapping[str, torch.Tensor]) -> torch.Tensor:
        import torch

        # Read at once: TensorRT's outputs are bound buffers rewritten by the next call.
        return result[self._output].to(torch.float32).clone()

    def close(self) -> None:
        self.engine.close()


def parser_installed(models_dir: Path) -> bool:
    from engines.models import model_status

    return model_status(Path(models_dir), PARSER_MODEL) in ("present", "verified")


def resolve_mask_mode(mode: str, models_dir: Path) -> str:
    """``box`` or ``parsing`` for the setting ``mode`` (auto: parsing when the parser is
    installed). Raises ``ParserMissing`` for ``parsing`` without the model."""
    if mode not in MASK_MODES:
        raise ValueError(f"mask: expected one of {', '.join(MASK_MODES)}, got {mode!r}")
    if mode == "box":
        return "box"
    installed = parser_installed(models_dir)
    if mode == "parsing" and not installed:
        raise ParserMissing(
            f"--mask parsing needs the {PARSER_MODEL} model (79999_iter.pth), not installed in "
            f"{models_dir}: run `python main.py models download {PARSER_MODEL}` or "
            f"`python main.py models import 79999_iter.pth` (or use --mask box)")
    return "parsing" if installed else "box"


def load_parser(models_dir: Path, *, engine: str = "auto",
                threads: int | None = None) -> FaceParser:
    """Open ``face-parsing`` (exported to ONNX from the checkpoint on first use)."""
    from export.onnx import ensure_onnx
    from realtime.faces.identity import open_model_engine

    path = ensure_onnx(Path(models_dir), PARSER_MODEL)
    parser = FaceParser(open_model_engine(path, engine, Path(models_dir), threads))
    log.info("face parser on %s (batched=%s)", parser.backend, parser.batched)
    return parser


def load_mask_parser(mode: str, models_dir: Path, *, engine: str = "auto",
                     threads: int | None = None) -> FaceParser | None:
    """The parser a session needs for the mask setting ``mode`` (None: box mask)."""
    if resolve_mask_mode(mode, models_dir) == "box":
        return None
    return load_parser(models_dir, engine=engine, threads=threads)
