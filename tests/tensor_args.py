"""The tensors among a torch call's arguments (shared by ``tests.fake_cuda`` and
``tests.cuda_copies``, which import each other's state: this module imports neither)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch


def tensors_in(args: Sequence[Any], kwargs: Mapping[str, Any]) -> list[Any]:
    """The tensors passed directly or inside a tuple or list argument."""
    found = []
    for value in (*args, *kwargs.values()):
        if isinstance(value, torch.Tensor):
            found.append(value)
        elif isinstance(value, (tuple, list)):
            found.extend(v for v in value if isinstance(v, torch.Tensor))
    return found
