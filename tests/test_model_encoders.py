"""The encoders' fast helpers: the channels-last instance norm and run_fast, against
PyTorch's own layers (values, memory format, float64 gradients)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bdmm_cli.model.encoders import EncoderBlock, ResBlock, instance_norm_fast, run_fast

CL = torch.channels_last


def _norm(c: int, dtype=torch.float32) -> nn.InstanceNorm2d:
    g = torch.Generator().manual_seed(c)
    n = nn.InstanceNorm2d(c, affine=True).to(dtype)
    with torch.no_grad():
        n.weight.copy_(torch.randn(c, generator=g))
        n.bias.copy_(torch.randn(c, generator=g))
    return n


@pytest.mark.parametrize("shape", [(1, 64, 128, 128), (3, 28, 40, 24), (2, 5, 1, 7)])
def test_channels_last_instance_norm_is_as_exact_as_pytorchs(shape):
    """Against float64 ground truth, the channels-last two-pass norm errs no more than twice
    PyTorch's own float32 instance norm (maps with means far from zero, where one-pass sums
    lose digits); the result stays channels-last."""
    g = torch.Generator().manual_seed(1)
    c = shape[1]
    x = torch.randn(shape, generator=g) * 2 + 5 * torch.randn(1, c, 1, 1, generator=g)
    n = _norm(c)
    with torch.no_grad():
        truth = F.instance_norm(x.double(), weight=n.weight.double(), bias=n.bias.double(), eps=n.eps)
        ours = instance_norm_fast(x.contiguous(memory_format=CL), n)
        theirs = n(x)
    assert ours.is_contiguous(memory_format=CL) and ours.shape == x.shape
    err_ours = float((ours.double() - truth).abs().max())
    err_theirs = float((theirs.double() - truth).abs().max())
    assert err_ours <= 2 * err_theirs + 1e-7, (err_ours, err_theirs)


def test_contiguous_maps_go_to_pytorchs_instance_norm():
    x = torch.randn(2, 6, 9, 9)
    n = _norm(6)
    with torch.no_grad():
        assert torch.equal(instance_norm_fast(x, n), n(x))


def test_channels_last_instance_norm_gradcheck_float64():
    n = _norm(3, torch.float64)
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64).contiguous(memory_format=CL).requires_grad_()
    assert torch.autograd.gradcheck(lambda t: instance_norm_fast(t, n), (x,))
    # and the same gradients as PyTorch's instance norm, parameters included
    y1 = instance_norm_fast(x, n)
    y2 = n(x.contiguous())
    gy = torch.randn_like(y2)
    for a, b in zip(torch.autograd.grad(y1, (x, n.weight, n.bias), gy), torch.autograd.grad(y2, (x, n.weight, n.bias), gy)):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("fmt", [torch.contiguous_format, CL])
def test_run_fast_equals_the_plain_modules(fmt):
    """EncoderBlock and ResBlock with fast=True (in-place activations, our norm) compute the
    same values as their plain forward, keeping the input's memory format."""
    torch.manual_seed(2)
    for block, cin in ((EncoderBlock(6, 8), 6), (ResBlock(8, 4), 8)):
        block.eval()
        for m in block.modules():
            if isinstance(m, nn.InstanceNorm2d):
                nn.init.normal_(m.weight)
                nn.init.normal_(m.bias)
        x = torch.randn(2, cin, 16, 16).contiguous(memory_format=fmt)
        with torch.no_grad():
            fast, plain = block(x, fast=True), block(x.contiguous())
        torch.testing.assert_close(fast, plain, rtol=1e-5, atol=1e-5)
        assert fast.is_contiguous(memory_format=fmt)
    seq = EncoderBlock(6, 8).model
    with torch.no_grad():
        x = torch.randn(1, 6, 8, 8)
        torch.testing.assert_close(run_fast(seq, x), seq(x))


def test_pose_source_net_levels_and_conv_format():
    """levels=k returns exactly the k shallowest maps of the full forward (deepest first);
    conv_format puts the convolutions (and so the maps) in that format without changing the
    values; the plain and fast forwards agree."""
    torch.manual_seed(3)
    from bdmm_cli.model.encoders import PoseSourceNet

    net = PoseSourceNet(3, 8, 32, 3).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        full = net(x)
        two = net(x, fast=True, levels=2)
        cl = net(x, fast=True, conv_format=CL)
    assert [t.shape for t in two] == [t.shape for t in full[1:]]
    for a, b in zip(two, full[1:]):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    for a, b in zip(cl, full):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
        assert a.is_contiguous(memory_format=CL)
