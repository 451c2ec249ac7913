"""The DMM op (modulated deformable conv) and the DMM block: analytic cases and gradcheck.

Shapes are checked once at the generator boundary (tests/test_model_generator.py), not per call."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from bdmm_cli.model import DMMBlock, ModulatedDeformConv2d, modulate_weight, modulated_deform_conv2d


def _per_sample_conv(x, w, pad=(1, 1, 1, 1)):
    """Independent reference: one F.conv2d per sample on the zero-padded input."""
    return torch.cat([F.conv2d(F.pad(x[b : b + 1], pad), w[b]) for b in range(x.shape[0])])


def _reference_modulated_weight(base, s, demodulate=True):
    """w_b[o,i,y,x] = base[o,i,y,x] * s_b[i], demodulated with eps 1e-8 (spec sec. 1.6), by loops."""
    out = []
    for b in range(s.shape[0]):
        w = base * s[b].view(1, -1, 1, 1)
        if demodulate:
            w = w / torch.sqrt((w**2).sum(dim=(1, 2, 3), keepdim=True) + 1e-8)
        out.append(w)
    return torch.stack(out)


@pytest.fixture
def data():
    g = torch.Generator().manual_seed(0)
    b, c, o, h, w = 3, 4, 5, 7, 6
    x = torch.randn(b, c, h, w, generator=g)
    base = torch.randn(o, c, 3, 3, generator=g) / math.sqrt(c * 9)
    s = 1 + 0.3 * torch.randn(b, c, generator=g)
    return x, base, s


def test_zero_offset_unit_mask_equals_modulated_conv(data):
    x, base, s = data
    b, _, h, w = x.shape
    weight = modulate_weight(base, s, demodulate=True)
    assert torch.allclose(weight, _reference_modulated_weight(base, s), atol=1e-6)
    out = modulated_deform_conv2d(x, torch.zeros(b, 18, h, w), torch.ones(b, 9, h, w), weight)
    ref = _per_sample_conv(x, _reference_modulated_weight(base, s))
    assert out.shape == (b, base.shape[0], h, w)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_integer_offsets_shift_the_sampling_grid(data):
    """Offset channel 2k is y, 2k+1 is x: +1 in y samples row p+1 (zeros below the map)."""
    x, base, s = data
    b, _, h, w = x.shape
    weight = modulate_weight(base, s, demodulate=True)
    ones = torch.ones(b, 9, h, w)
    off_y = torch.zeros(b, 18, h, w)
    off_y[:, 0::2] = 1.0
    out_y = modulated_deform_conv2d(x, off_y, ones, weight)
    torch.testing.assert_close(out_y, _per_sample_conv(x, weight, pad=(1, 1, 0, 2)), rtol=1e-5, atol=1e-5)
    off_x = torch.zeros(b, 18, h, w)
    off_x[:, 1::2] = -1.0
    out_x = modulated_deform_conv2d(x, off_x, ones, weight)
    torch.testing.assert_close(out_x, _per_sample_conv(x, weight, pad=(2, 0, 1, 1)), rtol=1e-5, atol=1e-5)


def test_half_pixel_offset_is_bilinear(data):
    x, base, s = data
    b, _, h, w = x.shape
    weight = modulate_weight(base, s, demodulate=True)
    off = torch.zeros(b, 18, h, w)
    off[:, 0::2] = 0.5
    out = modulated_deform_conv2d(x, off, torch.ones(b, 9, h, w), weight)
    ref = 0.5 * (_per_sample_conv(x, weight) + _per_sample_conv(x, weight, pad=(1, 1, 0, 2)))
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_mask_weights_each_tap(data):
    x, base, s = data
    b, _, h, w = x.shape
    weight = modulate_weight(base, s, demodulate=False)
    mask = torch.zeros(b, 9, h, w)
    mask[:, 4] = 2.0  # only the centre tap, doubled
    out = modulated_deform_conv2d(x, torch.zeros(b, 18, h, w), mask, weight)
    ref = torch.cat([F.conv2d(x[i : i + 1], 2.0 * weight[i][:, :, 1:2, 1:2]) for i in range(b)])
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_batch_folding_equals_per_sample_calls(data):
    x, base, s = data
    b, _, h, w = x.shape
    g = torch.Generator().manual_seed(1)
    off = 1.7 * torch.randn(b, 18, h, w, generator=g)
    mask = 2 * torch.sigmoid(torch.randn(b, 9, h, w, generator=g))
    weight = modulate_weight(base, s, demodulate=True)
    out = modulated_deform_conv2d(x, off, mask, weight)
    single = torch.cat([modulated_deform_conv2d(x[i : i + 1], off[i : i + 1], mask[i : i + 1], weight[i : i + 1]) for i in range(b)])
    torch.testing.assert_close(out, single, rtol=1e-5, atol=1e-5)
    shared = modulated_deform_conv2d(x, off, mask, base)
    expanded = modulated_deform_conv2d(x, off, mask, base.expand(b, *base.shape))
    torch.testing.assert_close(shared, expanded)


def test_gradcheck_float64():
    g = torch.Generator().manual_seed(2)
    b, c, o, h, w = 2, 2, 3, 4, 4
    x = torch.randn(b, c, h, w, generator=g, dtype=torch.float64, requires_grad=True)
    # fractional offsets keep every sample point away from the integer grid (kinks of bilinear)
    off = (0.3 + 0.4 * torch.rand(b, 18, h, w, generator=g, dtype=torch.float64)).requires_grad_()
    mask = torch.rand(b, 9, h, w, generator=g, dtype=torch.float64).requires_grad_()
    base = torch.randn(o, c, 3, 3, generator=g, dtype=torch.float64, requires_grad=True)
    s = (1 + 0.2 * torch.randn(b, c, generator=g, dtype=torch.float64)).requires_grad_()

    def f(x, off, mask, base, s):
        return modulated_deform_conv2d(x, off, mask, modulate_weight(base, s, demodulate=True))

    assert torch.autograd.gradcheck(f, (x, off, mask, base, s), eps=1e-6, atol=1e-5, fast_mode=True)


def test_module_equals_functional():
    torch.manual_seed(3)
    m = ModulatedDeformConv2d(4, 6, 3, style_dim=8)
    x = torch.randn(2, 4, 5, 5)
    style = torch.randn(2, 8)
    off = torch.randn(2, 18, 5, 5)
    mask = torch.rand(2, 9, 5, 5)
    expected = modulated_deform_conv2d(x, off, mask, modulate_weight(m.weight[0] / math.sqrt(4 * 9), m.modulation(style), True))
    torch.testing.assert_close(m(x, off, mask, style), expected)
    torch.testing.assert_close(m(x, off, mask, weight=m.modulated_weight(style)), expected)
    with pytest.raises(ValueError, match="style"):
        m(x, off, mask)


def test_dmm_block_shapes_and_math():
    torch.manual_seed(4)
    c, sd = 4, 8
    blk = DMMBlock(c, c, sd, flow_in_channel=2 * c, flow_out_channel=c)
    for conv in (blk.offset_conv, blk.mask_conv):  # non-zero, as in a trained model
        torch.nn.init.normal_(conv.weight, std=0.3)
        torch.nn.init.normal_(conv.bias, std=0.3)
    torch.nn.init.normal_(blk.bias)
    torch.nn.init.normal_(blk.activate.bias)
    feat, dec = torch.randn(2, c, 6, 6), torch.randn(2, c, 6, 6)
    style = torch.randn(2, sd)
    flow_fea = torch.cat([dec, feat], 1)
    out = blk(feat, flow_fea, style)
    assert out.shape == (2, c, 6, 6)
    offset, mask = blk.offsets_and_mask(flow_fea)
    assert offset.shape == (2, 18, 6, 6) and mask.shape == (2, 9, 6, 6)
    assert float(mask.detach().min()) > 0 and float(mask.detach().max()) < 2
    hidden = F.relu(F.conv2d(flow_fea, blk.flow_conv[0].weight, blk.flow_conv[0].bias, padding=1))
    torch.testing.assert_close(offset, F.conv2d(hidden, blk.offset_conv.weight, blk.offset_conv.bias, padding=1))
    torch.testing.assert_close(mask, 2 * torch.sigmoid(F.conv2d(hidden, blk.mask_conv.weight, blk.mask_conv.bias, padding=1)))
    y = blk.conv(feat, offset, mask, style) + blk.bias
    expected = F.leaky_relu(y + blk.activate.bias.view(1, -1, 1, 1), 0.2) * math.sqrt(2)
    torch.testing.assert_close(out, expected)
    assert set(k for k, _ in blk.named_buffers()) == {"upsample.kernel"}


def test_dmm_block_zero_init_is_plain_modulated_conv():
    """Freshly built, offsets are 0 and mask is 2*sigmoid(0) = 1: a modulated conv + bias + act."""
    torch.manual_seed(5)
    blk = DMMBlock(3, 3, 8, flow_in_channel=6, flow_out_channel=3)
    feat, style = torch.randn(2, 3, 5, 5), torch.randn(2, 8)
    out = blk(feat, torch.randn(2, 6, 5, 5), style)
    w = _reference_modulated_weight(blk.conv.weight[0] / math.sqrt(27), blk.conv.modulation(style))
    ref = F.leaky_relu(_per_sample_conv(feat, w) + blk.bias + blk.activate.bias.view(1, -1, 1, 1), 0.2) * math.sqrt(2)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("channels_last", [False, True])
def test_dmm_block_folded_equals_literal_values_and_gradients(channels_last):
    """forward_folded (offsets and mask from one stacked convolution, bias in the matmul,
    in-place activation) is the literal forward with the folded kernel, forward and backward,
    in either memory format (channels-last in, channels-last out)."""
    torch.manual_seed(6)
    c, sd = 4, 8
    blk = DMMBlock(c, c, sd, flow_in_channel=2 * c, flow_out_channel=c).double()
    for p in (blk.offset_conv.weight, blk.offset_conv.bias, blk.mask_conv.weight, blk.mask_conv.bias,
              blk.bias, blk.activate.bias):
        torch.nn.init.normal_(p, std=0.3)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    feat = torch.randn(1, c, 8, 8, dtype=torch.float64).contiguous(memory_format=fmt).requires_grad_()
    fea = torch.randn(1, 2 * c, 8, 8, dtype=torch.float64).contiguous(memory_format=fmt).requires_grad_()
    style = torch.randn(1, sd, dtype=torch.float64)
    literal = blk(feat, fea, style)
    folded = blk(feat, fea, folded=blk.folded(style))
    torch.testing.assert_close(folded, literal, rtol=1e-12, atol=1e-12)
    assert folded.is_contiguous(memory_format=fmt)
    g = torch.randn_like(literal)
    want = torch.autograd.grad(literal, (feat, fea, blk.mask_conv.weight, blk.offset_conv.bias), g)
    got = torch.autograd.grad(folded, (feat, fea, blk.mask_conv.weight, blk.offset_conv.bias), g)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
