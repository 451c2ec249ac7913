"""StyleGAN2-style layers written with ordinary ops, against independent formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.signal import convolve2d

from bdmm_cli.model.layers import (
    Blur,
    EqualLinear,
    FusedLeakyReLU,
    ModulatedConv2d,
    StyledConv,
    ToRGB,
    Upsample,
    upfirdn2d,
)

K = np.outer([1, 3, 3, 1], [1, 3, 3, 1]) / 16.0  # the authors' stored blur kernel (sum 4)


def test_blur_kernel_buffer_matches_the_checkpoint_constant():
    blur = Blur((1, 3, 3, 1), pad=(1, 1), upsample_factor=2)
    np.testing.assert_allclose(blur.kernel.numpy(), K, rtol=0, atol=1e-7)
    np.testing.assert_allclose(Upsample().kernel.numpy(), K, rtol=0, atol=1e-7)


def test_blur_equals_scipy_convolution():
    x = torch.randn(2, 3, 9, 8, dtype=torch.float64)
    out = Blur((1, 3, 3, 1), pad=(1, 1), upsample_factor=2).double()(x)
    assert out.shape == (2, 3, 8, 7)
    for b in range(2):
        for c in range(3):
            full = convolve2d(x[b, c].numpy(), K, mode="full")  # side n + 3; pad (1, 1) keeps [2 : n+1]
            np.testing.assert_allclose(out[b, c].numpy(), full[2:-2, 2:-2], rtol=1e-12, atol=1e-12)


def test_upfirdn2d_upsample_equals_zero_insertion_and_scipy():
    x = torch.randn(1, 2, 5, 6, dtype=torch.float64)
    out = Upsample().double()(x)
    assert out.shape == (1, 2, 10, 12)
    for c in range(2):
        z = np.zeros((10, 12))
        z[::2, ::2] = x[0, c].numpy()
        full = convolve2d(z, K, mode="full")  # pad (2, 1): rows [3 - 2 : ...]
        np.testing.assert_allclose(out[0, c].numpy(), full[1:11, 1:13], rtol=1e-12, atol=1e-12)


def test_upfirdn2d_asymmetric_kernel_is_a_true_convolution():
    x = torch.randn(1, 1, 6, 6, dtype=torch.float64)
    k = torch.arange(1.0, 7.0, dtype=torch.float64).view(2, 3)
    out = upfirdn2d(x, k, pad=(0, 0))
    ref = convolve2d(x[0, 0].numpy(), k.numpy(), mode="valid")
    np.testing.assert_allclose(out[0, 0].numpy(), ref, rtol=1e-12)


def test_equal_linear_and_fused_leaky_relu_formulas():
    lin = EqualLinear(8, 5, bias_init=1.0)
    assert torch.all(lin.bias == 1)
    x = torch.randn(3, 8)
    torch.testing.assert_close(lin(x), x @ lin.weight.t() / math.sqrt(8) + lin.bias)
    act = FusedLeakyReLU(4)
    torch.nn.init.normal_(act.bias)
    y = torch.randn(2, 4, 3, 3)
    z = y + act.bias.view(1, 4, 1, 1)
    torch.testing.assert_close(act(y), torch.where(z >= 0, z, 0.2 * z) * math.sqrt(2))


def _per_sample_weights(conv: ModulatedConv2d, style: torch.Tensor) -> torch.Tensor:
    s = F.linear(style, conv.modulation.weight / math.sqrt(style.shape[1]), conv.modulation.bias)
    w = conv.weight[0][None] / math.sqrt(conv.in_channel * conv.kernel_size**2) * s[:, None, :, None, None]
    if conv.demodulate:
        w = w / torch.sqrt(w.pow(2).sum(dim=(2, 3, 4), keepdim=True) + 1e-8)
    return w


@pytest.mark.parametrize("demodulate", [True, False])
def test_modulated_conv_equals_per_sample_conv(demodulate):
    torch.manual_seed(0)
    conv = ModulatedConv2d(4, 6, 3, style_dim=8, demodulate=demodulate)
    x, style = torch.randn(3, 4, 7, 7), torch.randn(3, 8)
    w = _per_sample_weights(conv, style)
    ref = torch.cat([F.conv2d(x[b : b + 1], w[b], padding=1) for b in range(3)])
    torch.testing.assert_close(conv(x, style), ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(conv(x, weight=conv.modulated_weight(style)), conv(x, style))


def test_upsampling_modulated_conv_is_transposed_conv_then_blur():
    """Zero insertion + conv with the spatially flipped kernel (+ pad k-1) equals the
    transposed conv (spec sec. 1.6); then the [1,3,3,1] blur with pad 1: side doubles."""
    torch.manual_seed(1)
    conv = ModulatedConv2d(4, 5, 3, style_dim=8, demodulate=True, upsample=True).double()
    x, style = torch.randn(2, 4, 6, 6, dtype=torch.float64), torch.randn(2, 8, dtype=torch.float64)
    out = conv(x, style)
    assert out.shape == (2, 5, 12, 12)
    w = _per_sample_weights(conv, style)
    refs = []
    for b in range(2):
        z = torch.zeros(1, 4, 11, 11, dtype=torch.float64)
        z[:, :, ::2, ::2] = x[b : b + 1]
        y = F.conv2d(F.pad(z, (2, 2, 2, 2)), torch.flip(w[b], [2, 3]))  # (1, 5, 13, 13)
        ker = torch.from_numpy(K).view(1, 1, 4, 4).expand(5, 1, 4, 4)
        refs.append(F.conv2d(F.pad(y, (1, 1, 1, 1)), ker, groups=5))
    torch.testing.assert_close(out, torch.cat(refs), rtol=1e-10, atol=1e-10)


def test_styled_conv_and_torgb():
    torch.manual_seed(2)
    sc = StyledConv(4, 6, 3, 8, upsample=False, demodulate=False)
    torch.nn.init.normal_(sc.bias)
    torch.nn.init.normal_(sc.activate.bias)
    x, style = torch.randn(2, 4, 5, 5), torch.randn(2, 8)
    z = sc.conv(x, style) + sc.bias + sc.activate.bias.view(1, -1, 1, 1)
    torch.testing.assert_close(sc(x, style), F.leaky_relu(z, 0.2) * math.sqrt(2))
    rgb = ToRGB(4, 8)
    assert rgb.conv.weight.shape == (1, 3, 4, 1, 1) and not rgb.conv.demodulate
    torch.testing.assert_close(rgb(x, style), rgb.conv(x, style) + rgb.bias)
    assert set(dict(sc.state_dict())) == {"bias", "conv.weight", "conv.modulation.weight", "conv.modulation.bias", "activate.bias"}
    up = StyledConv(4, 6, 3, 8, upsample=True)
    assert "conv.blur.kernel" in up.state_dict()
