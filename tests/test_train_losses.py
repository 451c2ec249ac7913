"""The training losses against direct formulas, hand-computed cases and torchvision's VGG19."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from bdmm_cli.errors import CheckpointError, MissingResourceError
from bdmm_cli.train.losses import (AUTHORS_LAYERS, CONTEXTUAL_LAYERS, PERCEPTUAL_LAYERS, STYLE_LAYERS, LossWeights,
                                   ReconstructionLoss, VGG19Features, contextual_loss, gram_matrix, load_vgg19,
                                   lsgan_d_loss, lsgan_g_loss, style_loss)


def test_gram_matrix_is_f_ft_over_chw():
    f = torch.randn(2, 3, 4, 5, dtype=torch.float64)
    expect = torch.einsum("bchw,bdhw->bcd", f, f) / (3 * 4 * 5)
    torch.testing.assert_close(gram_matrix(f), expect)
    # one entry written out
    assert gram_matrix(f)[1, 0, 2].item() == pytest.approx((f[1, 0] * f[1, 2]).sum().item() / 60)


def test_style_loss_is_mean_abs_gram_difference():
    a, b = torch.randn(2, 4, 3, 3), torch.randn(2, 4, 3, 3)
    ga, gb = gram_matrix(a), gram_matrix(b)
    assert style_loss(a, b).item() == pytest.approx((ga - gb).abs().mean().item(), rel=1e-6)


def test_contextual_loss_hand_computed_case():
    # x (generated) positions (2,1), (0,1); y (target) positions (1,2), (3,1); C = 2, H = 1, W = 2.
    # Centred by the mean of x (1, 1): x -> (1,0), (-1,0); y -> (0,1), (2,0) ~ (1,0).
    # cos[x_j, y_i] = [[0, 1], [0, -1]] -> d = (1 - cos) / 2 = [[.5, 0], [.5, 1]].
    # For y_1 both relative distances are equal -> cx = 1/2, 1/2; for y_2 x_1 has d~ = 0 and
    # x_2 has d~ = 1e5 -> cx = 1, 0. CX = mean_j max_i cx = (1 + 0.5) / 2 = 0.75.
    x = torch.tensor([[2.0, 0.0], [1.0, 1.0]]).view(1, 2, 1, 2)
    y = torch.tensor([[1.0, 3.0], [2.0, 1.0]]).view(1, 2, 1, 2)
    assert contextual_loss(x, y, bandwidth=0.5).item() == pytest.approx(-math.log(0.75), abs=1e-4)


def _cx_loops(x, y, h):
    """The contextual loss written out with loops over positions (one sample)."""
    c = x.shape[0]
    xs = x.reshape(c, -1).t().tolist()
    ys = y.reshape(c, -1).t().tolist()
    mu = [sum(v[k] for v in xs) / len(xs) for k in range(c)]

    def unit(v):
        v = [a - m for a, m in zip(v, mu)]
        n = math.sqrt(sum(a * a for a in v))
        return [a / n for a in v]

    xs, ys = [unit(v) for v in xs], [unit(v) for v in ys]
    d = [[(1 - sum(a * b for a, b in zip(xj, yi))) / 2 for yi in ys] for xj in xs]
    cx = [[0.0] * len(ys) for _ in xs]
    for i in range(len(ys)):
        dmin = min(d[j][i] for j in range(len(xs)))
        w = [math.exp((1 - d[j][i] / (dmin + 1e-5)) / h) for j in range(len(xs))]
        for j in range(len(xs)):
            cx[j][i] = w[j] / sum(w)
    return -math.log(sum(max(row) for row in cx) / len(xs))


def test_contextual_loss_matches_loop_formula_and_batch_mean():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 5, 3, 4, generator=g, dtype=torch.float64)
    y = torch.randn(2, 5, 3, 4, generator=g, dtype=torch.float64)
    expect = (_cx_loops(x[0], y[0], 0.5) + _cx_loops(x[1], y[1], 0.5)) / 2
    assert contextual_loss(x, y, 0.5).item() == pytest.approx(expect, rel=1e-5)


def test_contextual_loss_of_identical_features_is_near_zero_and_grows_with_difference():
    x = torch.randn(1, 8, 4, 4)
    assert contextual_loss(x, x.clone()).item() < 1e-3
    assert contextual_loss(x, torch.randn(1, 8, 4, 4)).item() > 0.1


def test_contextual_loss_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="contextual_loss"):
        contextual_loss(torch.randn(1, 2, 3, 3), torch.randn(1, 2, 3, 4))


def test_lsgan_losses_match_the_least_squares_formulas():
    real, fake = torch.randn(2, 1, 4, 4), torch.randn(2, 1, 4, 4)
    assert lsgan_d_loss(real, fake).item() == pytest.approx(
        0.5 * (((real - 1) ** 2).mean() + (fake ** 2).mean()).item(), rel=1e-6)
    assert lsgan_g_loss(fake).item() == pytest.approx(((fake - 1) ** 2).mean().item(), rel=1e-6)
    assert lsgan_d_loss(torch.ones(3), torch.zeros(3)).item() == 0.0


def test_vgg19_layout_matches_torchvision_and_keeps_the_authors_relu3_2():
    from torchvision.models.vgg import cfgs, make_layers

    tv = make_layers(cfgs["E"], batch_norm=False)
    ours = VGG19Features()
    tv_sd = {k: v for k, v in tv.state_dict().items() if int(k.split(".")[0]) < len(ours.features)}
    assert {k: tuple(v.shape) for k, v in ours.features.state_dict().items()} == {k: tuple(v.shape) for k, v in tv_sd.items()}
    ours.features.load_state_dict(tv_sd)
    x = torch.rand(1, 3, 32, 32) * 2 - 1  # [-1, 1], fed without normalisation
    feats = ours(x)
    with torch.no_grad():
        torch.testing.assert_close(feats["relu1_1"], tv[:2](x))
        torch.testing.assert_close(feats["relu3_2"], tv[:16](x))   # = relu3_3: the authors' slice
        torch.testing.assert_close(feats["relu5_2"], tv[:32](x))
    assert AUTHORS_LAYERS["relu3_2"] == 15
    assert all(not p.requires_grad for p in ours.parameters())


def test_load_vgg19_from_a_local_torchvision_style_file(tmp_path):
    net = VGG19Features(width_divisor=16)
    torch.nn.init.normal_(net.features[0].weight)
    torch.save({f"features.{k}": v for k, v in net.features.state_dict().items()}, tmp_path / "vgg.pth")
    loaded = load_vgg19(str(tmp_path / "vgg.pth"), width_divisor=16)
    torch.testing.assert_close(loaded.features[0].weight, net.features[0].weight)
    with pytest.raises(CheckpointError, match="shape"):
        load_vgg19(str(tmp_path / "vgg.pth"), width_divisor=8)
    (tmp_path / "bad.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read VGG19"):
        load_vgg19(str(tmp_path / "bad.pth"))


def test_vgg19_weights_unavailable_offline_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(MissingResourceError, match="vgg19"):
        load_vgg19("vgg19")


def test_reconstruction_loss_equals_the_authors_per_frame_sum():
    torch.manual_seed(0)
    vgg = load_vgg19("random", width_divisor=16)
    w = LossWeights()
    fake, real = torch.rand(2, 3, 3, 64, 64) * 2 - 1, torch.rand(2, 3, 3, 64, 64) * 2 - 1
    terms = ReconstructionLoss(vgg, w)(fake, real)
    # the authors' backward_G: a loop over the window's frames, each loss a batch mean, summed
    expect = dict(l1=0.0, perceptual=0.0, style=0.0, contextual=0.0)
    for t in range(3):
        fx, fy = vgg(fake[:, t]), vgg(real[:, t])
        expect["l1"] += F.l1_loss(fake[:, t], real[:, t]).item() * w.l1
        expect["perceptual"] += sum(F.l1_loss(fx[n], fy[n]) for n in PERCEPTUAL_LAYERS).item() * w.perceptual
        expect["style"] += sum(style_loss(fx[n], fy[n]) for n in STYLE_LAYERS).item() * w.style
        expect["contextual"] += sum(contextual_loss(fx[n], fy[n], 0.5) for n in CONTEXTUAL_LAYERS).item() * w.contextual
    for k, v in expect.items():
        assert terms[k].item() == pytest.approx(v, rel=1e-4), k
    # gradients reach the generated frames, not the VGG
    fake.requires_grad_(True)
    sum(ReconstructionLoss(vgg, w)(fake, real).values()).backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0
    assert all(p.grad is None for p in vgg.parameters())
