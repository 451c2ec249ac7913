"""Deformable Motion Modulation (DMM): a style-modulated deformable convolution.

The op (kornia style: a function plus thin modules):

    modulated_deform_conv2d(input, offset, mask, weight) -> (B, O, H, W)

runs a 3x3 (or k x k) DCNv2 convolution (``torchvision.ops.deform_conv2d``) where every
sample b uses its own kernel ``weight[b]`` (the style-modulated, demodulated kernel), its
own offsets and masks. The DMM block of the paper (authors' ``ModulatedDCN2dBLKv2``)
predicts the offsets and masks from a "flow feature" and adds bias + fused leaky ReLU.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torchvision.ops import deform_conv2d

from .layers import EqualLinear, FusedLeakyReLU, Upsample, modulate_weight

__all__ = ["modulated_deform_conv2d", "ModulatedDeformConv2d", "DMMBlock"]


def _shape(t: Tensor) -> str:
    return "(" + ", ".join(str(s) for s in t.shape) + ")"


def modulated_deform_conv2d(input: Tensor, offset: Tensor, mask: Tensor, weight: Tensor) -> Tensor:
    """Modulated deformable convolution, stride 1, "same" padding, per-sample kernels.

    Args:
        input: (B, C, H, W) the feature being deformed.
        offset: (B, 2*k*k, H, W); channel 2j is the vertical (y) and 2j+1 the horizontal (x)
            displacement, in pixels, of tap j = k*ky + kx (torchvision / DCNv2 layout).
        mask: (B, k*k, H, W) per-tap modulation scalars (BDMM uses 2*sigmoid, in (0, 2)).
        weight: (B, O, C, k, k) one kernel per sample (e.g. from ``modulate_weight``), or
            (O, C, k, k) shared by all samples; k odd.

    Returns:
        (B, O, H, W): out[b, o, p] = sum_{c, j} weight[b, o, c, j] * mask[b, j, p]
        * bilinear(input[b, c], p + tap_j - (k-1)/2 + offset[b, j, p]) (zeros outside).
    """
    if input.ndim != 4:
        raise ValueError(f"input must be (B, C, H, W), got {_shape(input)}")
    b, c, h, w = input.shape
    if weight.ndim == 4:
        weight = weight.unsqueeze(0).expand(b, *weight.shape)
    if weight.ndim != 5:
        raise ValueError(f"weight must be (B, O, C, k, k) or (O, C, k, k), got {_shape(weight)}")
    if weight.shape[0] != b or weight.shape[2] != c:
        raise ValueError(f"weight must be ({b}, O, {c}, k, k) for input {_shape(input)}, got {_shape(weight)}")
    _, o, _, kh, kw = weight.shape
    if kh != kw or kh % 2 != 1:
        raise ValueError(f"kernel must be square with an odd side, got {kh}x{kw}")
    taps = kh * kw
    if offset.ndim != 4 or tuple(offset.shape) != (b, 2 * taps, h, w):
        raise ValueError(f"offset must be ({b}, {2 * taps}, {h}, {w}) for input {_shape(input)}, got {_shape(offset)}")
    if mask.ndim != 4 or tuple(mask.shape) != (b, taps, h, w):
        raise ValueError(f"mask must be ({b}, {taps}, {h}, {w}) for input {_shape(input)}, got {_shape(mask)}")
    pad = kh // 2
    if b == 1:
        return deform_conv2d(input, offset, weight[0], padding=(pad, pad), mask=mask)
    # Fold the batch into groups: one offset group and one weight group per sample.
    out = deform_conv2d(
        input.reshape(1, b * c, h, w),
        offset.reshape(1, b * 2 * taps, h, w),
        weight.reshape(b * o, c, kh, kw),
        padding=(pad, pad),
        mask=mask.reshape(1, b * taps, h, w),
    )
    return out.reshape(b, o, h, w)


class ModulatedDeformConv2d(nn.Module):
    """Thin module over :func:`modulated_deform_conv2d` with the modulation of the kernel.

    Parameters: ``weight`` (1, O, C, k, k) scaled at run time by 1/sqrt(C*k*k);
    ``modulation`` EqualLinear(style_dim -> C, bias 1); demodulation eps 1e-8.
    forward(input (B,C,H,W), offset (B,2kk,H,W), mask (B,kk,H,W), style (B,style_dim))
    -> (B, O, H, W); a precomputed ``weight`` (B, O, C, k, k) may replace ``style``.
    """

    def __init__(self, in_channel: int, out_channel: int, kernel_size: int, style_dim: int, demodulate: bool = True) -> None:
        super().__init__()
        self.in_channel, self.out_channel, self.kernel_size = in_channel, out_channel, kernel_size
        self.demodulate = demodulate
        self.scale = 1.0 / math.sqrt(in_channel * kernel_size**2)
        self.weight = nn.Parameter(torch.randn(1, out_channel, in_channel, kernel_size, kernel_size))
        self.modulation = EqualLinear(style_dim, in_channel, bias_init=1.0)

    def modulated_weight(self, style: Tensor) -> Tensor:
        """(B, style_dim) -> per-sample kernel (B, O, C, k, k)."""
        return modulate_weight(self.weight[0] * self.scale, self.modulation(style), self.demodulate)

    def forward(
        self, input: Tensor, offset: Tensor, mask: Tensor, style: Tensor | None = None, weight: Tensor | None = None
    ) -> Tensor:
        if weight is None:
            if style is None:
                raise ValueError("ModulatedDeformConv2d needs a style (B, style_dim) or a precomputed weight")
            weight = self.modulated_weight(style)
        return modulated_deform_conv2d(input, offset, mask, weight)


class DMMBlock(nn.Module):
    """The DMM block (authors' ``ModulatedDCN2dBLKv2``), C -> C channels at one resolution.

    hidden = relu(flow_conv(flow_fea)); offset = offset_conv(hidden) (2kk ch);
    mask = 2 * sigmoid(mask_conv(hidden)) (kk ch);
    out = fused_leaky_relu(modulated_deform_conv2d(feature, offset, mask, w(style)) + bias).

    forward(feature (B, C, H, W), flow_fea (B, flow_in, H, W), style (B, style_dim)) -> (B, C, H, W).
    In BDMM flow_fea = concat[decoder feature, feature] (flow_in = 2C).
    ``upsample.kernel`` is a buffer of the authors' checkpoint that the block never uses.
    """

    def __init__(
        self,
        in_channel: int,
        out_channel: int,
        style_dim: int,
        flow_in_channel: int,
        flow_out_channel: int,
        kernel_size: int = 3,
    ) -> None:
        super().__init__()
        taps = kernel_size**2
        pad = kernel_size // 2
        self.in_channel, self.flow_in_channel = in_channel, flow_in_channel
        self.flow_conv = nn.Sequential(nn.Conv2d(flow_in_channel, flow_out_channel, kernel_size, 1, pad), nn.ReLU())
        self.offset_conv = nn.Conv2d(flow_out_channel, 2 * taps, kernel_size, 1, pad)
        self.mask_conv = nn.Conv2d(flow_out_channel, taps, kernel_size, 1, pad)
        for conv in (self.offset_conv, self.mask_conv):
            nn.init.zeros_(conv.weight)
            nn.init.zeros_(conv.bias)
        self.conv = ModulatedDeformConv2d(in_channel, out_channel, kernel_size, style_dim, demodulate=True)
        self.bias = nn.Parameter(torch.zeros(1, out_channel, 1, 1))
        self.activate = FusedLeakyReLU(out_channel)
        self.upsample = Upsample((1, 3, 3, 1), factor=2)

    def offsets_and_mask(self, flow_fea: Tensor) -> tuple[Tensor, Tensor]:
        """flow_fea (B, flow_in, H, W) -> offset (B, 2kk, H, W), mask (B, kk, H, W) in (0, 2)."""
        if flow_fea.ndim != 4 or flow_fea.shape[1] != self.flow_in_channel:
            raise ValueError(f"flow_fea must be (B, {self.flow_in_channel}, H, W), got {_shape(flow_fea)}")
        hidden = self.flow_conv(flow_fea)
        offset = self.offset_conv(hidden)
        mask = 2.0 * torch.sigmoid(self.mask_conv(hidden))
        return offset, mask

    def forward(
        self, feature: Tensor, flow_fea: Tensor, style: Tensor | None = None, weight: Tensor | None = None
    ) -> Tensor:
        if feature.ndim != 4 or feature.shape[1] != self.in_channel:
            raise ValueError(f"feature must be (B, {self.in_channel}, H, W), got {_shape(feature)}")
        if flow_fea.ndim == 4 and (flow_fea.shape[0] != feature.shape[0] or flow_fea.shape[2:] != feature.shape[2:]):
            raise ValueError(
                f"flow_fea must be ({feature.shape[0]}, {self.flow_in_channel}, {feature.shape[2]}, {feature.shape[3]}), "
                f"got {_shape(flow_fea)}"
            )
        offset, mask = self.offsets_and_mask(flow_fea)
        out = self.conv(feature, offset, mask, style, weight)
        return self.activate(out + self.bias)

