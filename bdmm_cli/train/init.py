"""Training-from-scratch initialisation, as the authors' `BaseNetwork.init_weights`.

(`docs/architecture.md` section 6.11.) After construction every module whose class
name contains "Conv" or "Linear" and that has a `weight` gets an orthogonal weight with
gain 0.02 and a zero bias: `nn.Conv2d`/`nn.Conv3d` (also the DMM's `offset_conv` and
`mask_conv`, whose zero init is overwritten; the spectral-norm convs through their
`weight_orig`), `ModulatedConv2d` (its (1, O, I, k, k) weight flattens to one row, so it
becomes one random direction of norm 0.02) and `EqualLinear` (bias 0, overriding its
bias_init 1). The authors' deformable conv (`ModulatedDCN2dv2`, no "Conv" in its name;
ours is `ModulatedDeformConv2d`) keeps its standard normal weight; norms keep 1 and 0.
The random draws come from torch's global generator (seed it first).
"""

from __future__ import annotations

import torch
from torch import nn

#: Our classes that the authors' name test would not match (their class has another name).
SKIP_CLASSES = frozenset({"ModulatedDeformConv2d"})


def _weight_of(m: nn.Module) -> torch.Tensor | None:
    """The tensor the authors' `m.weight.data` refers to (spectral norm: `weight_orig`)."""
    if hasattr(m, "parametrizations") and "weight" in m.parametrizations:  # parametrize API
        return m.parametrizations.weight.original
    if isinstance(getattr(m, "weight_orig", None), torch.Tensor):        # nn.utils.spectral_norm
        return m.weight_orig
    w = getattr(m, "weight", None)
    return w if isinstance(w, torch.Tensor) else None


def init_weights(module: nn.Module, gain: float = 0.02) -> nn.Module:
    """Re-initialise `module` in place (orthogonal, `gain`); returns it."""

    def init_one(m: nn.Module) -> None:
        name = type(m).__name__
        if name in SKIP_CLASSES or not ("Conv" in name or "Linear" in name):
            return
        weight = _weight_of(m)
        if weight is None:
            return
        with torch.no_grad():
            nn.init.orthogonal_(weight, gain=gain)
            bias = getattr(m, "bias", None)
            if isinstance(bias, torch.Tensor):
                bias.zero_()

    module.apply(init_one)
    return module
