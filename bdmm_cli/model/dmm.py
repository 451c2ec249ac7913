"""Deformable Motion Modulation (DMM): a style-modulated deformable convolution.

The op (kornia style: a function plus thin modules):

    modulated_deform_conv2d(input, offset, mask, weight) -> (B, O, H, W)

runs a 3x3 (or k x k) DCNv2 convolution (see ``deform.py``: our own grid_sample + matmul
implementation by default, ``torchvision.ops.deform_conv2d`` as the reference) where every
sample b uses its own kernel ``weight[b]`` (the style-modulated, demodulated kernel), its
own offsets and masks. The DMM block of the paper (authors' ``ModulatedDCN2dBLKv2``)
predicts the offsets and masks from a "flow feature" and adds bias + fused leaky ReLU.
Shapes are checked once per window at the generator boundary, not in these layers.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .deform import DEFORM_IMPLS, default_deform_impl, modulated_deform_conv2d
from .layers import EqualLinear, FusedLeakyReLU, Upsample, fold_activation, modulate_weight

__all__ = ["modulated_deform_conv2d", "ModulatedDeformConv2d", "DMMBlock"]


class ModulatedDeformConv2d(nn.Module):
    """Thin module over :func:`modulated_deform_conv2d` with the modulation of the kernel.

    Parameters: ``weight`` (1, O, C, k, k) scaled at run time by 1/sqrt(C*k*k);
    ``modulation`` EqualLinear(style_dim -> C, bias 1); demodulation eps 1e-8.
    forward(input (B,C,H,W), offset (B,2kk,H,W), mask (B,kk,H,W), style (B,style_dim))
    -> (B, O, H, W); a precomputed ``weight`` (B, O, C, k, k) may replace ``style``.
    ``deform_impl``: "torch", "torchvision" or None (= ``default_deform_impl()``, i.e.
    ``$BDMM_DEFORM_IMPL`` or "torch", read when set: at construction or when set to None
    again); ``impl`` is the resolved choice every call uses (no setting is read per call).
    """

    def __init__(self, in_channel: int, out_channel: int, kernel_size: int, style_dim: int, demodulate: bool = True) -> None:
        super().__init__()
        self.in_channel, self.out_channel, self.kernel_size = in_channel, out_channel, kernel_size
        self.demodulate = demodulate
        self.scale = 1.0 / math.sqrt(in_channel * kernel_size**2)
        self.weight = nn.Parameter(torch.randn(1, out_channel, in_channel, kernel_size, kernel_size))
        self.modulation = EqualLinear(style_dim, in_channel, bias_init=1.0)
        self.deform_impl = None

    @property
    def deform_impl(self) -> str | None:
        """The chosen implementation ("torch", "torchvision" or None: the default)."""
        return self._deform_choice

    @deform_impl.setter
    def deform_impl(self, impl: str | None) -> None:
        if impl is not None and impl not in DEFORM_IMPLS:
            raise ValueError(f"deform impl must be one of {', '.join(DEFORM_IMPLS)}, got {impl!r}")
        self._deform_choice = impl
        self.impl: str = default_deform_impl() if impl is None else impl

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
        return modulated_deform_conv2d(input, offset, mask, weight, self.impl)


class DMMBlock(nn.Module):
    """The DMM block (authors' ``ModulatedDCN2dBLKv2``), C -> C channels at one resolution.

    hidden = relu(flow_conv(flow_fea)); offset = offset_conv(hidden) (2kk ch);
    mask = 2 * sigmoid(mask_conv(hidden)) (kk ch);
    out = fused_leaky_relu(modulated_deform_conv2d(feature, offset, mask, w(style)) + bias).

    forward(feature (B, C, H, W), flow_fea (B, flow_in, H, W), style (B, style_dim)) -> (B, C, H, W).
    In BDMM flow_fea = concat[decoder feature, feature] (flow_in = 2C).
    ``upsample.kernel`` is a buffer of the authors' checkpoint that the block never uses.
    ``deform_impl`` (property) selects the deformable-conv implementation of ``conv``.
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

    @property
    def deform_impl(self) -> str | None:
        return self.conv.deform_impl

    @deform_impl.setter
    def deform_impl(self, impl: str | None) -> None:
        self.conv.deform_impl = impl

    def offsets_and_mask(self, flow_fea: Tensor) -> tuple[Tensor, Tensor]:
        """flow_fea (B, flow_in, H, W) -> offset (B, 2kk, H, W), mask (B, kk, H, W) in (0, 2)."""
        hidden = self.flow_conv(flow_fea)
        offset = self.offset_conv(hidden)
        mask = 2.0 * torch.sigmoid(self.mask_conv(hidden))
        return offset, mask

    def forward(
        self, feature: Tensor, flow_fea: Tensor, style: Tensor | None = None, weight: Tensor | None = None,
        folded: tuple[Tensor, Tensor] | None = None,
    ) -> Tensor:
        """Literal from ``style`` (or a modulated ``weight``); with ``folded`` (from
        :meth:`folded`) the same value by :meth:`forward_folded`."""
        if folded is not None:
            return self.forward_folded(feature, flow_fea, *folded)
        offset, mask = self.offsets_and_mask(flow_fea)
        out = self.conv(feature, offset, mask, style, weight)
        return self.activate(out + self.bias)

    def folded(self, style: Tensor) -> tuple[Tensor, Tensor]:
        """(gain * modulated kernel (B, C, C, k, k), gain * (bias + activate.bias) (C,)) for
        :meth:`forward_folded`."""
        return fold_activation(self.conv.modulated_weight(style), self.bias, self.activate)

    def forward_folded(self, feature: Tensor, flow_fea: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
        """Same value as ``forward`` with the :meth:`folded` kernel: offsets and mask come from
        one convolution (``offset_conv`` and ``mask_conv`` stacked), the bias goes into the
        deformable conv's matrix multiply, the leaky ReLU runs in place."""
        conv0 = self.flow_conv[0]
        hidden = F.relu(conv0(flow_fea), inplace=True)
        taps2 = self.offset_conv.out_channels  # offsets and mask logits in one convolution
        both = F.conv2d(
            hidden, torch.cat([self.offset_conv.weight, self.mask_conv.weight]),
            torch.cat([self.offset_conv.bias, self.mask_conv.bias]), padding=self.offset_conv.padding,
        )
        offset = both[:, :taps2]
        mask = 2.0 * torch.sigmoid(both[:, taps2:])
        out = modulated_deform_conv2d(feature, offset, mask, weight, self.conv.impl, bias=bias)
        return F.leaky_relu(out, self.activate.negative_slope, inplace=True)

