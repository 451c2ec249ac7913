"""The generator's window API on a tiny model built through the real constructor."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch

from bdmm_cli.model import BDMMGenerator, GeneratorConfig, WindowInputs, WindowOutput, WindowState, warp
from bdmm_cli.model.generator import MODULATED_LAYERS

TINY = GeneratorConfig(ngf=8, img_f=32, style_dim=32)
S = 128


def _randomize(g: BDMMGenerator, seed: int = 0) -> BDMMGenerator:
    """Non-trivial weights everywhere (the constructor zeroes offsets/masks and biases)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in g.named_parameters():
            if name.endswith(("offset_conv.weight", "mask_conv.weight")):
                p.copy_(0.05 * torch.randn(p.shape, generator=gen))
            elif name.endswith("bias") and "modulation" not in name:
                p.copy_(0.05 * torch.randn(p.shape, generator=gen))
    return g.eval()


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return _randomize(BDMMGenerator(TINY))


def _inputs(b=1, t=3, seed=0) -> WindowInputs:
    gen = torch.Generator().manual_seed(seed)
    base = torch.stack(torch.meshgrid(torch.linspace(-1, 1, S), torch.linspace(-1, 1, S), indexing="xy"), -1)
    flow = lambda: (base + 0.05 * torch.randn(b, S, S, 2, generator=gen)).clamp(-1, 1)  # noqa: E731
    flows = torch.stack([flow() for _ in range(t)], 1)
    flows[:, :, :8] = -2.0  # uncovered rows
    return WindowInputs(
        source=torch.rand(b, 3, S, S, generator=gen) * 2 - 1,
        heatmaps=torch.rand(b, t, 25, S, S, generator=gen),
        flows=flows,
        flow_pre=flow(),
        flow_post=flow(),
    )


@pytest.fixture(scope="module")
def two_windows(tiny):
    """Two consecutive windows (B=2; T=2, then T=1) through both paths, state carried."""
    a, b = _inputs(b=2, t=2, seed=1), _inputs(b=2, t=1, seed=2)
    with torch.no_grad():
        fa, ra = tiny(a), tiny.forward_reference(a)
        fb, rb = tiny(b, fa.state), tiny.forward_reference(b, ra.state)
    return a, b, fa, ra, fb, rb


def test_window_shapes_and_state(two_windows):
    out = two_windows[2]
    assert isinstance(out, WindowOutput) and isinstance(out.state, WindowState)
    assert out.frames.shape == (2, 2, 3, S, S)
    assert float(out.frames.abs().max()) <= 1.0
    st = out.state
    assert st.last_frame.shape == (2, 3, S, S) and torch.equal(st.last_frame, out.frames[:, -1])
    assert st.structure.shape == (2, 32, S // 8, S // 8)
    assert st.forward_s4.shape == (2, 16, S // 4, S // 4)
    assert st.forward_s2.shape == (2, 8, S // 2, S // 2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        st.structure = st.structure  # type: ignore[misc]


def test_fast_path_equals_reference_path(two_windows):
    _, _, fa, ra, fb, rb = two_windows
    torch.testing.assert_close(fa.frames, ra.frames, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(fb.frames, rb.frames, rtol=1e-5, atol=1e-5)
    for f in ("structure", "forward_s4", "forward_s2"):
        torch.testing.assert_close(getattr(fb.state, f), getattr(rb.state, f), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("layout", [True, False])
def test_every_fast_layout_is_close_to_reference(tiny, two_windows, layout):
    """The explicit layouts of the fast path (True: every map channels-last, False: every
    map contiguous; the default, mixed one is the test above): frames and carried states
    within 1e-5 relative L2 of the literal loop, the S/2 state in the chosen format."""
    a, b, _, ra, _, rb = two_windows
    tiny.fast_channels_last = layout
    try:
        with torch.no_grad():
            fa = tiny(a)
            fb = tiny(b, fa.state)
    finally:
        tiny.fast_channels_last = None
    fmt = torch.channels_last if layout else torch.contiguous_format
    assert fb.state.forward_s2.is_contiguous(memory_format=fmt)
    rel = lambda x, y: float((x - y).norm() / y.norm())  # noqa: E731
    assert rel(fa.frames, ra.frames) < 1e-5 and rel(fb.frames, rb.frames) < 1e-5
    for f in ("structure", "forward_s4", "forward_s2"):
        assert rel(getattr(fb.state, f), getattr(rb.state, f)) < 1e-5


def test_default_layout_by_device(tiny):
    cl, plain = torch.channels_last, torch.contiguous_format
    assert tiny.fast_layout(torch.device("cpu")) == (plain, cl, cl)
    assert tiny.fast_layout(torch.device("meta")) == (plain, plain, plain)
    tiny.fast_channels_last = True
    try:
        assert tiny.fast_layout(torch.device("meta")) == (cl, cl, cl)
    finally:
        tiny.fast_channels_last = None


def test_prepare_is_the_per_photo_step_of_forward():
    """``prepare(source)`` once per photo gives every window exactly what ``forward`` computes
    without it; the windows use the given constants (another photo's change the frames); a
    batch-1 photo serves a batch of windows; autograd reaches the style encoder through it."""
    g = _randomize(BDMMGenerator(TINY), seed=3)
    calls = []
    g.x_ref.register_forward_hook(lambda *_: calls.append(1))
    inp = _inputs(t=1, seed=4)
    with torch.no_grad():
        prepared = g.prepare(inp.source)
        assert prepared.style.shape == (1, TINY.style_dim)
        assert set(prepared.kernels) == set(MODULATED_LAYERS)
        first = g(inp, None, prepared)
        second = g(inp, first.state, prepared)
        assert len(calls) == 1  # no per-window recomputation
        assert torch.equal(first.frames, g(inp).frames)
        assert torch.equal(second.frames, g(inp, first.state).frames)
        other = g.prepare(inp.source.flip(-1))
        assert not torch.allclose(g(inp, None, other).frames, first.frames)
        two = dataclasses.replace(inp, **{f.name: torch.cat([getattr(inp, f.name)] * 2) for f in dataclasses.fields(inp)})
        out2 = g(two, None, prepared)
        torch.testing.assert_close(out2.frames[1], first.frames[0], rtol=1e-4, atol=1e-5)  # batch round-off
        with pytest.raises(ValueError, match="batch of 2, the window has 1"):
            g(inp, None, g.prepare(two.source))
        with pytest.raises(ValueError, match=r"source must be \(B, 3, S, S\)"):
            g.prepare(inp.source[0])
    g(inp).frames.sum().backward()  # training: forward prepares with autograd on
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in g.x_ref.parameters())


def test_window_inputs_and_state_semantics(tiny, two_windows):
    """flow_pre only matters in the first window; flow_post and the carried state always do."""
    a, b, fa, _, fb, _ = two_windows
    one = lambda inp: dataclasses.replace(  # noqa: E731  (sample 0 only, to keep it cheap)
        inp, **{f.name: getattr(inp, f.name)[:1] for f in dataclasses.fields(inp)}
    )
    st0 = WindowState(*(t[:1] for t in dataclasses.astuple(fa.state)))
    a1, b1 = one(a), one(b)
    flip = lambda f: torch.flip(f, [1])  # noqa: E731
    with torch.no_grad():
        assert not torch.allclose(tiny(dataclasses.replace(a1, flow_pre=flip(a1.flow_pre))).frames, fa.frames[:1])
        torch.testing.assert_close(
            tiny(dataclasses.replace(b1, flow_pre=flip(b1.flow_pre)), st0).frames, fb.frames[:1], rtol=1e-4, atol=1e-5
        )
        assert not torch.allclose(tiny(dataclasses.replace(b1, flow_post=flip(b1.flow_post)), st0).frames, fb.frames[:1])
        assert not torch.allclose(tiny(b1).frames, fb.frames[:1])  # a fresh start differs from a carried state


def test_first_window_follows_the_reference_recipe(tiny):
    """Window 0 by hand from the submodules (spec sec. 2.3): x_prev = source, uv = u."""
    inp = _inputs(t=1, seed=7)
    g = tiny
    with torch.no_grad():
        out = g(inp)
        src = inp.source
        style = g.x_ref(src)[0].mean((2, 3))
        _, e4, e2 = g.warp_encoder(warp(src, inp.flows[:, 0]))
        _, p4, p2 = g.warp_encoder(warp(src, inp.flow_pre))
        _, q4, q2 = g.warp_encoder(warp(src, inp.flow_post))
        f4, f2 = g.for_rcnn64(torch.cat([e4, p4], 1)), g.for_rcnn128(torch.cat([e2, p2], 1))
        b4, b2 = g.back_rcnn64(torch.cat([e4, q4], 1)), g.back_rcnn128(torch.cat([e2, q2], 1))
        u = g.x_encoder(torch.cat([inp.heatmaps[:, 0], src], 1))[0]
        x = g.x_rcnn2(g.x_rcnn1(torch.cat([u, u], 1)))
        uv = x
        x = g.conv1up(x, style)
        x = g.directconv1(x, style) + g.forconv1(f4, torch.cat([x, f4], 1), style) + g.backconv1(b4, torch.cat([x, b4], 1), style)
        x = g.conv2up(x, style)
        x = g.directconv2(x, style) + g.forconv2(f2, torch.cat([x, f2], 1), style) + g.backconv2(b2, torch.cat([x, b2], 1), style)
        img = torch.tanh(g.decoder256(g.directconv3(g.conv3up(x, style), style), style))
    torch.testing.assert_close(out.frames[:, 0], img, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out.state.structure, uv, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out.state.forward_s4, f4, rtol=1e-5, atol=1e-5)


def test_gradients_flow_and_detach_cuts_the_graph(tiny):
    g = _randomize(BDMMGenerator(TINY), seed=1).train()
    a, b = _inputs(t=1, seed=8), _inputs(t=1, seed=9)
    out_a = g(a)
    out_b = g(b, out_a.state.detach())
    assert all(not t.requires_grad for t in dataclasses.astuple(out_a.state.detach()))
    out_b.frames.square().mean().backward()
    no_grad = sorted(n for n, p in g.named_parameters() if p.grad is None)
    # only the warp encoder's unused deepest level gets no gradient
    assert no_grad == sorted(n for n, _ in g.named_parameters() if n.startswith("warp_encoder.encoder1."))
    assert g.for_rcnn64.model[2].weight.grad.abs().sum() > 0


def test_check_inputs_rejects_bad_shapes(tiny):
    good = _inputs(b=1, t=1)
    cases = [
        (dataclasses.replace(good, heatmaps=good.heatmaps[:, :, :24]), r"heatmaps must be \(1, T, 25, 128, 128\)"),
        (dataclasses.replace(good, flows=good.flows[:, :0]), r"flows must be \(1, 1, 128, 128, 2\)"),
        (dataclasses.replace(good, flow_post=good.flow_post[..., :1]), r"flow_post must be \(1, 128, 128, 2\)"),
        (dataclasses.replace(good, source=good.source[:, :2]), r"source must be \(B, 3, S, S\)"),
    ]
    for inp, pattern in cases:
        with pytest.raises(ValueError, match=pattern):
            tiny(inp)
    small = WindowInputs(
        torch.zeros(1, 3, 96, 96), torch.zeros(1, 1, 25, 96, 96), torch.zeros(1, 1, 96, 96, 2),
        torch.zeros(1, 96, 96, 2), torch.zeros(1, 96, 96, 2),
    )
    with pytest.raises(ValueError, match="multiple of 64"):
        tiny(small)
    with torch.no_grad():
        st = tiny(good).state
    bad_state = dataclasses.replace(st, structure=st.structure[:, :16])
    with pytest.raises(ValueError, match=r"state.structure must be \(1, 32, 16, 16\)"):
        tiny(good, bad_state)


def test_generator_config_validation_and_round_trip():
    assert GeneratorConfig() == GeneratorConfig(3, 25, 64, 512, 3, 512)
    assert GeneratorConfig.from_dict(TINY.to_dict()) == TINY
    with pytest.raises(ValueError, match="style_dim must equal"):
        GeneratorConfig(ngf=8, img_f=32, style_dim=64)
    with pytest.raises(ValueError, match="layers must be 3"):
        GeneratorConfig(layers=4)
    with pytest.raises(ValueError, match="unknown"):
        GeneratorConfig.from_dict({"ngf": 8, "oops": 1})
    assert BDMMGenerator(TINY).config is TINY
