"""Convolutional encoders of the generator: EncoderBlock, PoseSourceNet, ResBlock.

All use pre-activation (InstanceNorm(affine) + LeakyReLU(0.1) before each conv), as the
authors' ``base_function.py``. Key layout: ``model.{0,2,3,5}.{weight,bias}`` and
``shortcut.0.{weight,bias}``.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["EncoderBlock", "PoseSourceNet", "ResBlock", "LEAKY_SLOPE", "run_fast"]

LEAKY_SLOPE = 0.1


def run_fast(seq: nn.Sequential, x: Tensor) -> Tensor:
    """``seq(x)`` for the IN -> LeakyReLU -> conv stacks here, with each LeakyReLU applied in
    place to the fresh instance-norm output (same values, one map fewer allocated and
    written; autograd-safe: instance norm's backward does not read its output)."""
    for layer in seq:
        if isinstance(layer, nn.LeakyReLU):
            x = F.leaky_relu(x, layer.negative_slope, inplace=True)
        else:
            x = layer(x)
    return x


def _norm(channels: int) -> nn.InstanceNorm2d:
    return nn.InstanceNorm2d(channels, affine=True)


class EncoderBlock(nn.Module):
    """IN -> LReLU -> conv(k4, s2, p1) -> IN -> LReLU -> conv(k3, s1, p1).

    (B, in, H, W) -> (B, out, H/2, W/2).
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.model = nn.Sequential(
            _norm(in_channels),
            nn.LeakyReLU(LEAKY_SLOPE),
            nn.Conv2d(in_channels, out_channels, 4, stride=2, padding=1),
            _norm(out_channels),
            nn.LeakyReLU(LEAKY_SLOPE),
            nn.Conv2d(out_channels, out_channels, 3, stride=1, padding=1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)

    def forward_fast(self, x: Tensor) -> Tensor:
        return run_fast(self.model, x)


class PoseSourceNet(nn.Module):
    """``layers`` EncoderBlocks (``block0``, ``encoder0`` ... ``encoder{layers-2}``).

    Level i has ngf * min(2**i, img_f // ngf) channels at side S / 2**(i+1).
    forward(x (B, input_nc, S, S)) -> list of every level's output, deepest first.
    """

    def __init__(self, input_nc: int, ngf: int, img_f: int, layers: int) -> None:
        super().__init__()
        self.block0 = EncoderBlock(input_nc, ngf)
        mult = 1
        for i in range(layers - 1):
            prev = mult
            mult = min(2 ** (i + 1), img_f // ngf)
            setattr(self, f"encoder{i}", EncoderBlock(ngf * prev, ngf * mult))
        self.layers = layers
        self.out_channels = [ngf * min(2**i, img_f // ngf) for i in range(layers)][::-1]

    def forward(self, x: Tensor) -> list[Tensor]:
        out = self.block0(x)
        maps = [out]
        for i in range(self.layers - 1):
            out = getattr(self, f"encoder{i}")(out)
            maps.append(out)
        return maps[::-1]

    def forward_fast(self, x: Tensor) -> list[Tensor]:
        """``forward`` with in-place activations (:func:`run_fast`)."""
        out = self.block0.forward_fast(x)
        maps = [out]
        for i in range(self.layers - 1):
            out = getattr(self, f"encoder{i}").forward_fast(out)
            maps.append(out)
        return maps[::-1]


class ResBlock(nn.Module):
    """Pre-activation residual block with a learnable 1x1 shortcut.

    model: IN(in) -> LReLU -> conv(in->hidden, 3) -> IN(hidden) -> LReLU -> conv(hidden->out, 3);
    shortcut: conv(in->out, 1) on the raw input. (B, in, H, W) -> (B, out, H, W).
    """

    def __init__(self, in_channels: int, out_channels: int, hidden_channels: int | None = None) -> None:
        super().__init__()
        hidden = in_channels if hidden_channels is None else hidden_channels
        self.model = nn.Sequential(
            _norm(in_channels),
            nn.LeakyReLU(LEAKY_SLOPE),
            nn.Conv2d(in_channels, hidden, 3, stride=1, padding=1),
            _norm(hidden),
            nn.LeakyReLU(LEAKY_SLOPE),
            nn.Conv2d(hidden, out_channels, 3, stride=1, padding=1),
        )
        self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x) + self.shortcut(x)

    def forward_fast(self, x: Tensor) -> Tensor:
        """``forward`` with in-place activations and the shortcut added in place."""
        return run_fast(self.model, x).add_(self.shortcut(x))
