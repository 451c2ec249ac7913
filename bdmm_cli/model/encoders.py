"""Convolutional encoders of the generator: EncoderBlock, PoseSourceNet, ResBlock.

All use pre-activation (InstanceNorm(affine) + LeakyReLU(0.1) before each conv), as the
authors' ``base_function.py``. Key layout: ``model.{0,2,3,5}.{weight,bias}`` and
``shortcut.0.{weight,bias}``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .layers import LEAKY_SLOPE

__all__ = ["EncoderBlock", "PoseSourceNet", "ResBlock", "LEAKY_SLOPE", "conv1x1_fast", "instance_norm_fast", "run_fast"]



def instance_norm_fast(x: Tensor, norm: nn.InstanceNorm2d) -> Tensor:
    """``norm(x)`` (affine, no running stats), keeping the memory format of ``x``.

    Contiguous maps go to PyTorch's instance norm. PyTorch's instance norm is several times
    slower on channels-last maps, and its batch-norm kernel (equal to instance norm at
    batch 1, and fast there) sums in an order ~10x less exact; so a channels-last sample is
    normalised here in two passes over its (H*W, C) view: the mean, then the mean squared
    deviation (each a cascade sum, as exact as PyTorch's own instance norm), then one
    ``x * scale + shift`` with per-channel scale = weight / sqrt(var + eps)."""
    if not (x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()):
        return norm(x)
    b, c, h, w = x.shape
    rows = x.permute(0, 2, 3, 1).reshape(b, h * w, c)  # a view: channels-last is (B, H*W, C)
    mean = rows.mean(1, keepdim=True)
    dev = rows - mean
    var = (dev * dev if dev.requires_grad else dev.mul_(dev)).mean(1)  # (B, C)
    scale = torch.rsqrt(var + norm.eps) * norm.weight
    shift = norm.bias - mean[:, 0] * scale
    return torch.addcmul(shift.view(b, c, 1, 1), x, scale.view(b, c, 1, 1))


def conv1x1_fast(x: Tensor, conv: nn.Conv2d) -> Tensor:
    """``conv(x)`` for a 1x1 conv; on a channels-last sample it is one matrix multiply
    (H*W, C) @ (C, O) + bias, several times faster than the CPU convolution PyTorch picks."""
    b, c, h, w = x.shape
    if b == 1 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        o = conv.out_channels
        y = torch.addmm(conv.bias, x.permute(0, 2, 3, 1).reshape(h * w, c), conv.weight.view(o, c).t())
        return y.view(1, h, w, o).permute(0, 3, 1, 2)
    return conv(x)


def run_fast(seq: nn.Sequential, x: Tensor, conv_format: torch.memory_format | None = None) -> Tensor:
    """``seq(x)`` for the IN -> LeakyReLU -> conv stacks here: instance norm by
    :func:`instance_norm_fast`, each LeakyReLU in place on the fresh normalised map (same
    values, one map fewer allocated and written; autograd-safe: the norm's backward does not
    read its output). Keeps the memory format of ``x``, or with ``conv_format`` turns the map
    into that format just before each convolution (after the norm and activation of the
    input, so an input image is normalised in its own format)."""
    for layer in seq:
        if isinstance(layer, nn.LeakyReLU):
            x = F.leaky_relu(x, layer.negative_slope, inplace=True)
        elif isinstance(layer, nn.InstanceNorm2d):
            x = instance_norm_fast(x, layer)
        else:
            x = layer(x if conv_format is None else x.contiguous(memory_format=conv_format))
    return x


def pre_activated_conv(
    in_channels: int, out_channels: int, kernel: int, stride: int = 1, padding: int = 1
) -> list[nn.Module]:
    """[InstanceNorm(in, affine), LeakyReLU, Conv2d(in -> out)]: one pre-activation unit."""
    return [nn.InstanceNorm2d(in_channels, affine=True), nn.LeakyReLU(LEAKY_SLOPE),
            nn.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=padding)]


class EncoderBlock(nn.Module):
    """IN -> LReLU -> conv(k4, s2, p1) -> IN -> LReLU -> conv(k3, s1, p1).

    (B, in, H, W) -> (B, out, H/2, W/2).
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.model = nn.Sequential(
            *pre_activated_conv(in_channels, out_channels, 4, stride=2),
            *pre_activated_conv(out_channels, out_channels, 3),
        )

    def forward(self, x: Tensor, fast: bool = False, conv_format: torch.memory_format | None = None) -> Tensor:
        return run_fast(self.model, x, conv_format) if fast else self.model(x)


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

    def forward(
        self, x: Tensor, fast: bool = False, levels: int | None = None, conv_format: torch.memory_format | None = None
    ) -> list[Tensor]:
        """``fast``: the same values with in-place activations (:func:`run_fast`), the
        convolutions in ``conv_format`` if given. ``levels``: only the first (shallowest)
        ``levels`` levels are computed and returned (still deepest first)."""
        out = self.block0(x, fast, conv_format) if fast else self.block0(x)
        maps = [out]
        for i in range(min(self.layers, levels or self.layers) - 1):
            block = getattr(self, f"encoder{i}")
            out = block(out, fast, conv_format) if fast else block(out)
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
            *pre_activated_conv(in_channels, hidden, 3), *pre_activated_conv(hidden, out_channels, 3)
        )
        self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1))

    def forward(self, x: Tensor, fast: bool = False) -> Tensor:
        """``fast``: the same values with in-place activations and the shortcut added in place."""
        if fast:
            return run_fast(self.model, x).add_(conv1x1_fast(x, self.shortcut[0]))
        return self.model(x) + self.shortcut(x)
