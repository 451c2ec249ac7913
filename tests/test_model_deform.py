"""Our modulated deformable convolution against torchvision.ops.deform_conv2d (the reference).

Forward and backward on random inputs, offsets far outside the map, on exact pixel
positions and on the border (-1, H-1, H), several sizes (powers of two or not), batch 1
(one channel slice per thread) and batch > 1, shared and per-sample kernels; float64
gradcheck; the implementation switches; CUDA (marked gpu) in fp32, fp16 and bf16.
"""

from __future__ import annotations

import pytest
import torch

from bdmm_cli.model import BDMMGenerator, DMMBlock, GeneratorConfig, WindowInputs
from bdmm_cli.model.deform import default_deform_impl, modulated_deform_conv2d


def _inputs(b, c, o, h, w, offset_kind="random", dtype=torch.float32, seed=0, shared=False, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, c, h, w, generator=g, dtype=dtype)
    if offset_kind == "random":
        off = 2.5 * torch.randn(b, 18, h, w, generator=g, dtype=dtype)
    elif offset_kind == "far":  # most points far outside the map, a few inside
        off = torch.randn(b, 18, h, w, generator=g, dtype=dtype) * torch.tensor([1.0, 40.0, 1e4], dtype=dtype)[
            torch.randint(0, 3, (b, 18, h, w), generator=g)
        ]
    elif offset_kind == "integer":  # every sample point on a pixel centre, many on or past the border
        off = torch.randint(-3, 4, (b, 18, h, w), generator=g).to(dtype)
    elif offset_kind == "border":  # points exactly at -1, 0, H-1, H, W-1, W and half-way
        ys = torch.arange(h, dtype=dtype).view(1, 1, h, 1)
        xs = torch.arange(w, dtype=dtype).view(1, 1, 1, w)
        pick = torch.randint(0, 6, (b, 18, h, w), generator=g)
        targets_y = torch.stack([-1 - ys, -ys, h - 1 - ys, h - ys, -0.5 - ys, h - 0.5 - ys]).expand(6, b, 18, h, w)
        targets_x = torch.stack([-1 - xs, -xs, w - 1 - xs, w - xs, -0.5 - xs, w - 0.5 - xs]).expand(6, b, 18, h, w)
        tgt = torch.where((torch.arange(18) % 2 == 0).view(1, 18, 1, 1), targets_y.gather(0, pick[None])[0], targets_x.gather(0, pick[None])[0])
        # tgt is the position relative to the output pixel; remove the tap's own shift
        tap = torch.arange(3, dtype=dtype) - 1
        shift = torch.stack([tap.repeat_interleave(3), tap.repeat(3)], 1).reshape(18).view(1, 18, 1, 1)
        off = tgt - shift
    else:
        raise AssertionError(offset_kind)
    mask = 2 * torch.rand(b, 9, h, w, generator=g, dtype=dtype)
    wshape = (o, c, 3, 3) if shared else (b, o, c, 3, 3)
    weight = torch.randn(*wshape, generator=g, dtype=dtype) / (3 * c**0.5)
    return [t.to(device) for t in (x, off, mask, weight)]


def _rel(a, b):
    return float((a.double() - b.double()).norm() / b.double().norm().clamp_min(1e-30))


CASES = [
    # (b, c, o, h, w)
    (1, 8, 8, 16, 16),  # batch 1, channels split per thread
    (1, 5, 3, 7, 6),  # odd channels: no split; sizes not powers of two (zero-padded to 8x8)
    (3, 4, 5, 16, 8),
    (2, 6, 4, 5, 9),
    (1, 32, 16, 12, 20),
]


@pytest.mark.parametrize("kind", ["random", "far", "integer", "border"])
@pytest.mark.parametrize("case", CASES)
def test_forward_matches_torchvision(case, kind):
    x, off, mask, w = _inputs(*case, offset_kind=kind)
    ref = modulated_deform_conv2d(x, off, mask, w, impl="torchvision")
    out = modulated_deform_conv2d(x, off, mask, w, impl="torch")
    assert out.shape == ref.shape == (case[0], case[2], case[3], case[4])
    assert _rel(out, ref) < 2e-6
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_shared_kernel_and_float64_match_torchvision():
    x, off, mask, w = _inputs(2, 4, 3, 9, 9, shared=True, dtype=torch.float64)
    ref = modulated_deform_conv2d(x, off, mask, w, impl="torchvision")
    torch.testing.assert_close(modulated_deform_conv2d(x, off, mask, w, impl="torch"), ref, rtol=1e-12, atol=1e-12)


def test_far_outside_everything_is_zero():
    x, off, mask, w = _inputs(1, 4, 4, 8, 8)
    out = modulated_deform_conv2d(x, torch.full_like(off, 1e5), mask, w, impl="torch")
    assert torch.count_nonzero(out) == 0
    out = modulated_deform_conv2d(x, torch.full_like(off, -9.0), mask, w, impl="torch")
    assert torch.count_nonzero(out) == 0


def test_thread_slices_do_not_change_the_result():
    x, off, mask, w = _inputs(1, 8, 6, 16, 16)
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = modulated_deform_conv2d(x, off, mask, w, impl="torch")
        torch.set_num_threads(2)
        two = modulated_deform_conv2d(x, off, mask, w, impl="torch")
    finally:
        torch.set_num_threads(old)
    torch.testing.assert_close(one, two, rtol=1e-6, atol=1e-6)


def _grads(impl, x, off, mask, w, gout):
    leaves = [t.clone().requires_grad_() for t in (x, off, mask, w)]
    out = modulated_deform_conv2d(*leaves, impl=impl)
    grads = torch.autograd.grad(out, leaves, gout)
    return out.detach(), grads


@pytest.mark.parametrize("kind", ["random", "far", "integer", "border"])
@pytest.mark.parametrize("case", [(1, 4, 3, 8, 8), (2, 3, 4, 7, 10), (1, 6, 2, 5, 5)])
def test_backward_matches_torchvision(case, kind):
    """Float64, so the comparison is tight; "integer"/"border" put every point on a kink of
    the bilinear interpolation, where both must take the same one-sided derivative (and
    give 0 for points at -1 or beyond)."""
    x, off, mask, w = _inputs(*case, offset_kind=kind, dtype=torch.float64, seed=3)
    gout = torch.randn(case[0], case[2], case[3], case[4], generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    ref_out, ref = _grads("torchvision", x, off, mask, w, gout)
    out, ours = _grads("torch", x, off, mask, w, gout)
    torch.testing.assert_close(out, ref_out, rtol=1e-10, atol=1e-10)
    for name, a, r in zip(("input", "offset", "mask", "weight"), ours, ref):
        torch.testing.assert_close(a, r, rtol=1e-9, atol=1e-9, msg=lambda m, n=name: f"grad {n}: {m}")


def test_backward_float32_random_matches_torchvision():
    x, off, mask, w = _inputs(1, 16, 8, 16, 16, seed=5)
    gout = torch.randn(1, 8, 16, 16, generator=torch.Generator().manual_seed(6))
    _, ref = _grads("torchvision", x, off, mask, w, gout)
    _, ours = _grads("torch", x, off, mask, w, gout)
    for a, r in zip(ours, ref):
        assert _rel(a, r) < 1e-5


def test_gradcheck_float64():
    g = torch.Generator().manual_seed(2)
    b, c, o, h, w = 2, 3, 2, 5, 4
    x = torch.randn(b, c, h, w, generator=g, dtype=torch.float64, requires_grad=True)
    # fractional positions, away from the integer grid (the kinks of bilinear), some outside
    off = (torch.randint(-4, 4, (b, 18, h, w), generator=g) + 0.2 + 0.6 * torch.rand(b, 18, h, w, generator=g)).double()
    off.requires_grad_()
    mask = torch.rand(b, 9, h, w, generator=g, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(b, o, c, 3, 3, generator=g, dtype=torch.float64, requires_grad=True)

    def f(x, off, mask, weight):
        return modulated_deform_conv2d(x, off, mask, weight, impl="torch")

    assert torch.autograd.gradcheck(f, (x, off, mask, weight), eps=1e-6, atol=1e-6)


def test_bfloat16_input_samples_in_float32():
    x, off, mask, w = _inputs(1, 8, 8, 16, 16, seed=7)
    ref = modulated_deform_conv2d(x, off, mask, w, impl="torchvision")
    out = modulated_deform_conv2d(x.bfloat16(), off.bfloat16(), mask.bfloat16(), w.bfloat16(), impl="torch")
    assert out.dtype == torch.bfloat16
    assert _rel(out.float(), ref) < 3e-2


def test_impl_choice(monkeypatch):
    monkeypatch.delenv("BDMM_DEFORM_IMPL", raising=False)
    assert default_deform_impl() == "torch"
    monkeypatch.setenv("BDMM_DEFORM_IMPL", "torchvision")
    assert default_deform_impl() == "torchvision"
    monkeypatch.setenv("BDMM_DEFORM_IMPL", "cuda-magic")
    with pytest.raises(ValueError, match="BDMM_DEFORM_IMPL must be one of torch, torchvision"):
        default_deform_impl()
    x, off, mask, w = _inputs(1, 2, 2, 4, 4)
    with pytest.raises(ValueError, match="deform impl must be one of"):
        modulated_deform_conv2d(x, off, mask, w, impl="nope")
    with pytest.raises(ValueError, match="BDMM_DEFORM_IMPL must be one of"):  # checked when a block is built
        DMMBlock(4, 4, 8, flow_in_channel=8, flow_out_channel=4)
    monkeypatch.delenv("BDMM_DEFORM_IMPL")
    blk = DMMBlock(4, 4, 8, flow_in_channel=8, flow_out_channel=4)
    assert blk.deform_impl is None and blk.conv.impl == "torch"
    blk.deform_impl = "torchvision"
    assert blk.conv.deform_impl == "torchvision" and blk.conv.impl == "torchvision"
    with pytest.raises(ValueError, match="deform impl must be one of"):
        blk.deform_impl = "nope"


def test_blocks_read_the_impl_setting_once(monkeypatch):
    """The variable is read when a block is built or told None, not per call: a later bad
    value does not reach a built block's forward; set_deform_impl(None) reads it again."""
    monkeypatch.setenv("BDMM_DEFORM_IMPL", "torchvision")
    gen = BDMMGenerator(GeneratorConfig(ngf=8, img_f=32, style_dim=32)).eval()
    assert all(getattr(gen, n).conv.impl == "torchvision" for n in gen.DMM_BLOCKS)
    monkeypatch.setenv("BDMM_DEFORM_IMPL", "cuda-magic")
    with torch.no_grad():
        out = gen(_window(gen.config, t=1))
    assert torch.isfinite(out.frames).all()
    monkeypatch.setenv("BDMM_DEFORM_IMPL", "torch")
    gen.set_deform_impl(None)
    assert all(getattr(gen, n).conv.impl == "torch" and getattr(gen, n).deform_impl is None for n in gen.DMM_BLOCKS)


def _window(cfg, b=1, t=2, s=128, seed=0):
    g = torch.Generator().manual_seed(seed)
    ident = torch.stack(torch.meshgrid(torch.linspace(-1, 1, s), torch.linspace(-1, 1, s), indexing="xy"), -1)
    fl = (ident + 0.05 * torch.randn(b, t + 2, s, s, 2, generator=g)).clamp(-1, 1)
    return WindowInputs(
        torch.rand(b, cfg.image_nc, s, s, generator=g) * 2 - 1,
        torch.rand(b, t, cfg.structure_nc, s, s, generator=g),
        fl[:, :t],
        fl[:, t],
        fl[:, t + 1],
    )


def test_generator_impls_agree_with_trained_like_offsets():
    """Tiny generator with non-zero offset/mask convs: our op vs torchvision's, two windows."""
    torch.manual_seed(0)
    cfg = GeneratorConfig(ngf=8, img_f=32, style_dim=32)
    gen = BDMMGenerator(cfg).eval()
    for name in gen.DMM_BLOCKS:
        blk = getattr(gen, name)
        for conv in (blk.offset_conv, blk.mask_conv):
            torch.nn.init.normal_(conv.weight, std=0.2)
            torch.nn.init.normal_(conv.bias, std=0.5)
    a, b = _window(cfg, seed=1), _window(cfg, seed=2)
    with torch.no_grad():
        gen.set_deform_impl("torchvision")
        r1 = gen.forward_reference(a)
        r2 = gen.forward_reference(b, r1.state)
        gen.set_deform_impl("torch")
        o1 = gen(a)
        o2 = gen(b, o1.state)
    assert _rel(o1.frames, r1.frames) < 1e-5
    assert _rel(o2.frames, r2.frames) < 1e-5
    assert all(getattr(gen, n).deform_impl == "torch" for n in gen.DMM_BLOCKS)


# ------------------------------------------------------------------ CUDA


def _cuda_case(dtype):
    x, off, mask, w = _inputs(2, 64, 64, 32, 48, device="cuda", seed=11)
    ref = modulated_deform_conv2d(x, off, mask, w, impl="torchvision")
    out = modulated_deform_conv2d(x.to(dtype), off.to(dtype), mask.to(dtype), w.to(dtype), impl="torch")
    return out, ref


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_float32_matches_torchvision():
    out, ref = _cuda_case(torch.float32)
    assert out.is_cuda and _rel(out, ref) < 1e-5


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("dtype, tol", [(torch.float16, 3e-3), (torch.bfloat16, 2e-2)])
def test_cuda_half_matches_torchvision_float32(dtype, tol):
    out, ref = _cuda_case(dtype)
    assert out.dtype == dtype and _rel(out, ref) < tol


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_backward_matches_torchvision():
    x, off, mask, w = _inputs(1, 16, 8, 16, 16, device="cuda", seed=12)
    gout = torch.randn(1, 8, 16, 16, device="cuda")
    _, ref = _grads("torchvision", x, off, mask, w, gout)
    _, ours = _grads("torch", x, off, mask, w, gout)
    for a, r in zip(ours, ref):
        assert _rel(a, r) < 1e-4


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_autocast_bf16_runs_in_low_precision_matmul():
    x, off, mask, w = _inputs(1, 64, 64, 32, 32, device="cuda", seed=13)
    ref = modulated_deform_conv2d(x, off, mask, w, impl="torchvision")
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out = modulated_deform_conv2d(x, off, mask, w, impl="torch")
    assert out.dtype == torch.bfloat16 and _rel(out.float(), ref) < 2e-2


def test_row_bands_give_the_same_values_and_gradients(monkeypatch):
    """Sampling in bands of output rows (COLS_BLOCK_BYTES, here forced to a few rows, an
    uneven split included) changes nothing: values and gradients equal one whole block."""
    import bdmm_cli.model.deform as deform

    g = torch.Generator().manual_seed(11)
    x = torch.randn(1, 4, 13, 9, dtype=torch.float64, generator=g).requires_grad_()
    off = (2 * torch.randn(1, 18, 13, 9, dtype=torch.float64, generator=g)).requires_grad_()
    m = torch.rand(1, 9, 13, 9, dtype=torch.float64, generator=g).requires_grad_()
    w = torch.randn(1, 5, 4, 3, 3, dtype=torch.float64, generator=g).requires_grad_()
    b = torch.randn(5, dtype=torch.float64, generator=g)

    def run():
        y = deform.modulated_deform_conv2d(x, off, m, w, "torch", bias=b)
        return (y, *torch.autograd.grad(y.square().sum(), (x, off, m, w)))

    whole = run()
    monkeypatch.setattr(deform, "COLS_BLOCK_BYTES", 4 * 9 * 9 * 8 * 4)  # bands of 4 rows: 4+4+4+1
    banded = run()
    for a, c in zip(banded, whole):
        torch.testing.assert_close(a, c, rtol=1e-12, atol=1e-12)
