"""StyleGAN2-style building blocks, written with ordinary PyTorch ops.

The authors' code uses compiled ``upfirdn2d`` and ``fused_leaky_relu`` kernels; here the
same arithmetic is expressed with ``F.pad`` + depthwise ``F.conv2d`` and
``F.leaky_relu``, so nothing has to be compiled. State-dict names follow the authors'
modules (``conv.weight``, ``conv.modulation.*``, ``conv.blur.kernel``, ``bias``,
``activate.bias``) so their checkpoints load unchanged.

Shapes: B batch, C channels, H/W spatial size, ``style`` is (B, style_dim).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "LEAKY_SLOPE",
    "IntConfig",
    "check_positive_ints",
    "EqualLinear",
    "FusedLeakyReLU",
    "fused_leaky_relu",
    "fold_activation",
    "make_kernel",
    "upfirdn2d",
    "Blur",
    "Upsample",
    "modulate_weight",
    "modulated_conv2d",
    "ModulatedConv2d",
    "StyledConv",
    "ToRGB",
]

#: Negative slope of the encoders' and discriminators' LeakyReLU (the authors' 0.1).
LEAKY_SLOPE = 0.1


class IntConfig:
    """Mixin of the networks' frozen dataclass configs (all fields positive ints):
    ``to_dict`` / ``from_dict`` (unknown fields are a ValueError naming them)."""

    def to_dict(self) -> dict[str, int]:
        from dataclasses import asdict

        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict):
        from dataclasses import fields

        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"unknown {cls.__name__} field(s): {', '.join(unknown)}")
        return cls(**data)


def check_positive_ints(config) -> None:
    """ValueError naming the field unless every field of the dataclass `config` is a positive
    int (not a bool); the shared check of GeneratorConfig and DiscriminatorConfig."""
    from dataclasses import fields

    for f in fields(config):
        v = getattr(config, f.name)
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{type(config).__name__}.{f.name} must be a positive integer, got {v!r}")


def fused_leaky_relu(x: Tensor, bias: Tensor, negative_slope: float = 0.2, scale: float = math.sqrt(2)) -> Tensor:
    """leaky_relu(x + bias_c, 0.2) * sqrt(2); ``bias`` (C,) is broadcast over dim 1 of x (B, C, ...)."""
    shape = (1, bias.shape[0]) + (1,) * (x.ndim - 2)
    return F.leaky_relu(x + bias.view(shape), negative_slope) * scale


def fold_activation(weight: Tensor, bias: Tensor, activate: FusedLeakyReLU) -> tuple[Tensor, Tensor]:
    """Fold a layer's ``bias`` (1, O, 1, 1) and its FusedLeakyReLU's bias and gain into the
    kernel (B, O, I, k, k) and one bias (O,): returns (gain * weight, gain * (bias + act.bias))."""
    g = activate.scale
    return weight * g, (bias.view(-1) + activate.bias) * g


class FusedLeakyReLU(nn.Module):
    """Bias + leaky ReLU(0.2) + gain sqrt(2), with its own bias vector ``bias`` (C,)."""

    def __init__(self, channels: int, negative_slope: float = 0.2, scale: float = math.sqrt(2)) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))
        self.negative_slope = negative_slope
        self.scale = scale

    def forward(self, x: Tensor) -> Tensor:
        return fused_leaky_relu(x, self.bias, self.negative_slope, self.scale)


class EqualLinear(nn.Module):
    """Equalised linear layer: y = x @ (weight / sqrt(in_dim) * lr_mul)^T + bias * lr_mul.

    weight (out_dim, in_dim), bias (out_dim,) initialised to ``bias_init``.
    """

    def __init__(self, in_dim: int, out_dim: int, bias_init: float = 1.0, lr_mul: float = 1.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init)))
        self.scale = lr_mul / math.sqrt(in_dim)
        self.lr_mul = lr_mul

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)


def make_kernel(taps: Sequence[float]) -> Tensor:
    """Separable 2-D FIR kernel: outer(taps, taps), normalised to sum 1. (k, k) float32."""
    k = torch.tensor(list(taps), dtype=torch.float32)
    k = k[None, :] * k[:, None]
    return k / k.sum()


def upfirdn2d(
    x: Tensor, kernel: Tensor, up: int = 1, down: int = 1, pad: tuple[int, int] = (0, 0), bias: Tensor | None = None
) -> Tensor:
    """Upsample (zero insertion), pad, FIR-filter (true convolution), downsample; per channel.

    x (B, C, H, W), kernel (kh, kw). Output side: (H*up + pad0 + pad1 - kh) // down + 1.
    ``bias`` (C,), if given, is added to the filtered map (inside the convolution).
    """
    b, c, h, w = x.shape
    if up > 1:
        z = x.new_zeros(b, c, h, up, w, up)
        z[:, :, :, 0, :, 0] = x
        x = z.view(b, c, h * up, w * up)
    p0, p1 = pad
    weight = torch.flip(kernel, [0, 1]).to(x.dtype)[None, None].expand(c, 1, *kernel.shape)
    if p0 == p1 >= 0:  # symmetric zero padding: let the conv pad (no padded copy)
        return F.conv2d(x, weight, bias, stride=down, padding=p0, groups=c)
    x = F.pad(x, (max(p0, 0), max(p1, 0), max(p0, 0), max(p1, 0)))
    if p0 < 0 or p1 < 0:
        x = x[:, :, max(-p0, 0) : x.shape[2] - max(-p1, 0), max(-p0, 0) : x.shape[3] - max(-p1, 0)]
    return F.conv2d(x, weight, bias, stride=down, groups=c)


class Blur(nn.Module):
    """FIR blur with the fixed buffer ``kernel`` (k, k) (times up_factor**2), zero pad ``pad``."""

    def __init__(self, taps: Sequence[float], pad: tuple[int, int], upsample_factor: int = 1) -> None:
        super().__init__()
        self.register_buffer("kernel", make_kernel(taps) * upsample_factor**2)
        self.pad = pad

    def forward(self, x: Tensor, bias: Tensor | None = None) -> Tensor:
        return upfirdn2d(x, self.kernel, pad=self.pad, bias=bias)


class Upsample(nn.Module):
    """2x FIR upsampling (zero insertion + blur). In BDMM only its buffer ``kernel`` is used
    (it is part of the DMM blocks' state dict); the block itself never upsamples."""

    def __init__(self, taps: Sequence[float] = (1, 3, 3, 1), factor: int = 2) -> None:
        super().__init__()
        self.factor = factor
        self.register_buffer("kernel", make_kernel(taps) * factor**2)
        p = len(taps) - factor
        self.pad = ((p + 1) // 2 + factor - 1, p // 2)

    def forward(self, x: Tensor) -> Tensor:
        return upfirdn2d(x, self.kernel, up=self.factor, pad=self.pad)


def modulate_weight(weight: Tensor, s: Tensor, demodulate: bool, eps: float = 1e-8) -> Tensor:
    """Per-sample modulated (and optionally demodulated) kernel.

    weight (O, I, kh, kw) shared kernel (already fan-in scaled); s (B, I) per-sample input
    scales. Returns (B, O, I, kh, kw): w_b = weight * s_b[i], then, if ``demodulate``,
    w_b[o] *= rsqrt(sum_{i,y,x} w_b[o]^2 + eps).
    """
    w = weight[None] * s[:, None, :, None, None]
    if demodulate:
        w = w * torch.rsqrt(w.pow(2).sum(dim=(2, 3, 4), keepdim=True) + eps)
    return w


def modulated_conv2d(
    x: Tensor, weight: Tensor, padding: int = 0, upsample: bool = False, bias: Tensor | None = None
) -> Tensor:
    """One convolution per sample with that sample's kernel (batch folded into groups).

    x (B, I, H, W); weight (B, O, I, k, k). Without ``upsample``: conv2d, stride 1, output
    (B, O, H', W'). With ``upsample``: transposed conv (stride 2, padding 0) with the kernel's
    first two axes swapped, output (B, O, 2H+k-2, 2W+k-2) (the caller blurs it).
    ``bias`` (O,), if given, is added inside the convolution.
    """
    b, i, h, w = x.shape
    _, o, _, kh, kw = weight.shape
    if b == 1:  # no grouping needed (keeps the memory format of x)
        if upsample:
            return F.conv_transpose2d(x, weight[0].transpose(0, 1), bias, stride=2, padding=0)
        return F.conv2d(x, weight[0], bias, padding=padding)
    xg = x.reshape(1, b * i, h, w)
    bg = None if bias is None else bias.repeat(b)
    if upsample:
        wt = weight.transpose(1, 2).reshape(b * i, o, kh, kw)
        out = F.conv_transpose2d(xg, wt, bg, stride=2, padding=0, groups=b)
    else:
        out = F.conv2d(xg, weight.reshape(b * o, i, kh, kw), bg, padding=padding, groups=b)
    return out.reshape(b, o, out.shape[-2], out.shape[-1])


class ModulatedConv2d(nn.Module):
    """StyleGAN2 modulated convolution (no bias of its own).

    Parameters: ``weight`` (1, O, I, k, k), standard normal, scaled at run time by
    1/sqrt(I*k*k); ``modulation`` EqualLinear(style_dim -> I, bias 1). With ``upsample`` a
    stride-2 transposed conv followed by ``blur`` (kernel [1,3,3,1], gain 4) doubles the side.

    forward(x (B, I, H, W), style (B, style_dim)) -> (B, O, H or 2H, W or 2W). Instead of
    ``style`` a precomputed ``weight`` (B, O, I, k, k) from :meth:`modulated_weight` may be
    given (the style is constant within a window, so the generator computes it once).
    """

    def __init__(
        self,
        in_channel: int,
        out_channel: int,
        kernel_size: int,
        style_dim: int,
        demodulate: bool = True,
        upsample: bool = False,
        blur_taps: Sequence[float] = (1, 3, 3, 1),
    ) -> None:
        super().__init__()
        self.in_channel, self.out_channel, self.kernel_size = in_channel, out_channel, kernel_size
        self.demodulate, self.upsample = demodulate, upsample
        self.scale = 1.0 / math.sqrt(in_channel * kernel_size**2)
        self.padding = kernel_size // 2
        self.weight = nn.Parameter(torch.randn(1, out_channel, in_channel, kernel_size, kernel_size))
        self.modulation = EqualLinear(style_dim, in_channel, bias_init=1.0)
        if upsample:
            p = (len(blur_taps) - 2) - (kernel_size - 1)
            self.blur = Blur(blur_taps, pad=((p + 1) // 2 + 1, p // 2 + 1), upsample_factor=2)

    def modulated_weight(self, style: Tensor) -> Tensor:
        """(B, style_dim) -> per-sample kernel (B, O, I, k, k)."""
        return modulate_weight(self.weight[0] * self.scale, self.modulation(style), self.demodulate)

    def forward(self, x: Tensor, style: Tensor | None = None, weight: Tensor | None = None) -> Tensor:
        if weight is None:
            if style is None:
                raise ValueError("ModulatedConv2d needs a style (B, style_dim) or a precomputed weight")
            weight = self.modulated_weight(style)
        return self.apply_kernel(x, weight)

    def apply_kernel(self, x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
        """The convolution with a given per-sample kernel (B, O, I, k, k) and optional bias (O,)
        (added after the blur when upsampling)."""
        if self.upsample:
            return self.blur(modulated_conv2d(x, weight, upsample=True), bias)
        return modulated_conv2d(x, weight, padding=self.padding, bias=bias)


class StyledConv(nn.Module):
    """Modulated conv, then + ``bias`` (1, O, 1, 1), then FusedLeakyReLU with ``activate.bias``."""

    def __init__(
        self,
        in_channel: int,
        out_channel: int,
        kernel_size: int,
        style_dim: int,
        upsample: bool = False,
        demodulate: bool = True,
    ) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_channel, out_channel, kernel_size, style_dim, demodulate, upsample)
        self.bias = nn.Parameter(torch.zeros(1, out_channel, 1, 1))
        self.activate = FusedLeakyReLU(out_channel)

    def forward(
        self, x: Tensor, style: Tensor | None = None, weight: Tensor | None = None,
        folded: tuple[Tensor, Tensor] | None = None,
    ) -> Tensor:
        """Literal: conv, + bias, FusedLeakyReLU. With ``folded`` (from :meth:`folded`): the
        same value by :meth:`forward_folded`."""
        if folded is not None:
            return self.forward_folded(x, *folded)
        return self.activate(self.conv(x, style, weight) + self.bias)

    def folded(self, style: Tensor) -> tuple[Tensor, Tensor]:
        """Everything fixed by the style, folded for :meth:`forward_folded`: the modulated
        kernel times the activation gain, and gain * (bias + activate.bias) (O,)."""
        return fold_activation(self.conv.modulated_weight(style), self.bias, self.activate)

    def forward_folded(self, x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
        """Same value as ``forward`` with the :meth:`folded` kernel: one convolution with the
        bias inside, then an in-place leaky ReLU (leaky_relu(g z) = g leaky_relu(z), g > 0)."""
        return F.leaky_relu(self.conv.apply_kernel(x, weight, bias), self.activate.negative_slope, inplace=True)


class ToRGB(nn.Module):
    """1x1 modulated conv without demodulation, + ``bias`` (1, 3, 1, 1); no activation, no skip."""

    def __init__(self, in_channel: int, style_dim: int, out_channel: int = 3) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_channel, out_channel, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, out_channel, 1, 1))

    def forward(
        self, x: Tensor, style: Tensor | None = None, weight: Tensor | None = None,
        folded: tuple[Tensor, Tensor] | None = None,
    ) -> Tensor:
        if folded is not None:
            return self.forward_folded(x, *folded)
        return self.conv(x, style, weight) + self.bias

    def folded(self, style: Tensor) -> tuple[Tensor, Tensor]:
        """(modulated kernel (B, 3, I, 1, 1), bias (3,)) for :meth:`forward_folded`."""
        return self.conv.modulated_weight(style), self.bias.view(-1)

    def forward_folded(self, x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
        return self.conv.apply_kernel(x, weight, bias)
