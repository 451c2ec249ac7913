"""Loading the authors' state dicts (and ours: the keys are the same) with strict checks."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

from ..errors import CheckpointError
from ..state_dict import check_layout, few as _few

__all__ = ["load_official_state_dict", "normalize_state_dict"]

def normalize_state_dict(state_dict: Mapping) -> dict[str, torch.Tensor]:
    """{key: tensor} from a mapping of numpy arrays or tensors, with a ``module.`` prefix
    (DataParallel) stripped. CheckpointError if it is not such a mapping."""
    if not isinstance(state_dict, Mapping):
        raise CheckpointError(f"checkpoint is not a state dict (got {type(state_dict).__name__})")
    out: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        if not isinstance(key, str):
            raise CheckpointError(f"checkpoint has a non-string key {key!r}")
        name = key[len("module.") :] if key.startswith("module.") else key
        if isinstance(value, torch.Tensor):
            tensor = value
        elif isinstance(value, np.ndarray | np.generic):
            tensor = torch.from_numpy(np.ascontiguousarray(value))
        else:
            raise CheckpointError(f"checkpoint entry {key!r} is not a tensor (got {type(value).__name__})")
        if name in out:
            raise CheckpointError(f"checkpoint has key {name!r} twice (with and without 'module.')")
        out[name] = tensor
    return out


def load_official_state_dict(module: nn.Module, state_dict: Mapping) -> None:
    """Load ``state_dict`` (the authors' key layout, numpy arrays or tensors) into ``module``.

    Strict: any missing, unexpected or misshaped key raises CheckpointError naming the first
    few of each and their count. Values are copied (and cast to the module's dtypes).
    """
    sd = normalize_state_dict(state_dict)
    check_layout(sd, module.state_dict(), f"checkpoint does not fit {type(module).__name__}")
    nonfloat = [k for k, v in sd.items() if not (v.is_floating_point())]
    if nonfloat:
        raise CheckpointError(f"checkpoint has non-float tensors: {_few(nonfloat)}")
    module.load_state_dict(sd, strict=True)
