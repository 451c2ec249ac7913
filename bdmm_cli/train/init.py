"""Initialisation of the networks for training from scratch (`TrainConfig.init`).

Three choices (measured in `docs/training_init.md`):

- ``none`` (the default): every layer keeps the initialisation its class gives it.
  PyTorch's own for ``nn.Conv2d``/``nn.Conv3d``/``nn.Linear`` (uniform, bound
  1/sqrt(fan_in)); standard normal scaled at run time by 1/sqrt(fan_in) for the
  StyleGAN2-style layers (``EqualLinear``, ``ModulatedConv2d``, ``ModulatedDeformConv2d``,
  equalised learning rate), ``EqualLinear`` biases 1; the DMM's ``offset_conv`` and
  ``mask_conv`` zero (sampling starts on the regular grid). The signal keeps its scale
  through the generator and the learning check passes.
- ``orthogonal`` with ``init_gain`` 0.02: the authors' ``BaseNetwork.init_weights``
  (`docs/architecture.md` section 6.11), kept to reproduce their setting. It shrinks the
  generator's signal in its decoder: the output starts ~1e-27 in magnitude at the paper's
  widths and the gradients of all layers but the last fall below Adam's epsilon, so
  learning starts late (a tiny model ~100 iterations late).
- ``kaiming``: He normal (fan_in, leaky ReLU 0.2) on the plain convolutions and linear
  layers, zero biases; the equalised-learning-rate layers keep their standard normal weight
  (their run-time scale already is He's), the DMM's offset and mask convs stay zero. At the
  paper's widths the decoder's activations grow to ~19 and the tanh output saturates.

The authors' rule, as `init_weights` reproduces it: after construction every module whose
class name contains "Conv" or "Linear" and that has a `weight` gets an orthogonal weight with
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

#: The values of `TrainConfig.init`.
INITS = ("none", "orthogonal", "kaiming")
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
    """The authors' init: re-initialise `module` in place (orthogonal, `gain`); returns it."""

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


def kaiming_init(module: nn.Module, negative_slope: float = 0.2) -> nn.Module:
    """He normal (fan_in, leaky ReLU `negative_slope`) on plain convs / linears, zero biases;
    the spectral-norm convs through `weight_orig`; all-zero weights (the DMM's offset and
    mask convs) and the equalised-learning-rate layers are left as built. Returns `module`."""

    def init_one(m: nn.Module) -> None:
        plain = isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear))
        if not (plain or type(m).__name__ == "SpectralNormConv2d"):
            return
        weight = _weight_of(m)
        if weight is None or not torch.any(weight):
            return
        with torch.no_grad():
            nn.init.kaiming_normal_(weight, a=negative_slope, mode="fan_in", nonlinearity="leaky_relu")
            bias = getattr(m, "bias", None)
            if isinstance(bias, torch.Tensor):
                bias.zero_()

    module.apply(init_one)
    return module


def initialise(module: nn.Module, kind: str = "none", gain: float = 0.02) -> nn.Module:
    """Apply `TrainConfig.init` (`kind`; `gain` is the orthogonal gain) to `module` in place."""
    if kind == "orthogonal":
        return init_weights(module, gain=gain)
    if kind == "kaiming":
        return kaiming_init(module)
    if kind == "none":
        return module
    raise ValueError(f"unknown init {kind!r}; expected one of {', '.join(INITS)}")
