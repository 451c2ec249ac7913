"""Spatial and temporal discriminators: shapes, spectral norm semantics, bad input."""

from __future__ import annotations

import copy

import pytest
import torch

from bdmm_cli.model import DiscriminatorConfig, SpatialDiscriminator, SpectralNormConv2d, TemporalDiscriminator

TINY = DiscriminatorConfig(ndf=4, img_f=16)


def _torch_sn_twin(ours: SpectralNormConv2d) -> torch.nn.Conv2d:
    conv = torch.nn.Conv2d(ours.weight_orig.shape[1], ours.weight_orig.shape[0], ours.weight_orig.shape[2])
    conv = torch.nn.utils.spectral_norm(conv)
    with torch.no_grad():
        conv.weight_orig.copy_(ours.weight_orig)
        conv.bias.copy_(ours.bias)
        conv.weight_u.copy_(ours.weight_u)
        conv.weight_v.copy_(ours.weight_v)
    return conv


def test_spectral_norm_matches_torch_in_eval_and_train():
    torch.manual_seed(0)
    ours = SpectralNormConv2d(6, 2, 1)
    twin = _torch_sn_twin(ours)
    x = torch.randn(2, 6, 4, 4)
    ours.eval(), twin.eval()
    u0 = ours.weight_u.clone()
    torch.testing.assert_close(ours(x), twin(x))
    assert torch.equal(ours.weight_u, u0), "eval mode must not touch u"
    # eval uses the stored u, v as they are: sigma = u . W v, not the largest singular value
    w = ours.weight_orig.flatten(1)
    sigma = torch.dot(ours.weight_u, w @ ours.weight_v)
    torch.testing.assert_close(ours.normalized_weight(), ours.weight_orig / sigma)
    ours.train(), twin.train()
    for _ in range(3):
        torch.testing.assert_close(ours(x), twin(x))
    torch.testing.assert_close(ours.weight_u, twin.weight_u)
    torch.testing.assert_close(ours.weight_v, twin.weight_v)
    assert not torch.equal(ours.weight_u, u0)
    ours(x).sum().backward()
    assert ours.weight_orig.grad is not None


def test_spatial_discriminator_shapes_and_keys():
    d = SpatialDiscriminator(TINY)
    out = d(torch.randn(2, 3, 64, 64))
    assert out.shape == (2, 1, 4, 4)
    keys = set(d.state_dict())
    assert {"conv.weight_orig", "conv.weight_u", "conv.weight_v", "conv.bias"} <= keys and "conv.weight" not in keys
    assert len(SpatialDiscriminator().state_dict()) == 28


def test_temporal_discriminator_permutes_and_folds_time():
    torch.manual_seed(1)
    dv = TemporalDiscriminator(TINY).eval()
    video = torch.randn(2, 6, 3, 32, 32)
    out = dv(video)
    assert out.shape == (2, 1, 2, 2)
    # by hand: channels-before-time, 3-D blocks, fold (c, t) -> 2c + t
    x = dv.block1(dv.block0(video.permute(0, 2, 1, 3, 4)))
    assert x.shape == (2, 8, 2, 8, 8)
    folded = torch.stack([x[:, c // 2, c % 2] for c in range(16)], 1)
    ref = dv.conv(dv.nonlinearity(dv.encoder1(dv.encoder0(folded))))
    torch.testing.assert_close(out, ref)
    assert len(TemporalDiscriminator().state_dict()) == 28


def test_discriminators_reject_bad_input():
    d, dv = SpatialDiscriminator(TINY), TemporalDiscriminator(TINY)
    with pytest.raises(ValueError, match=r"\(B, 3, S, S\)"):
        d(torch.randn(1, 4, 32, 32))
    with pytest.raises(ValueError, match="multiple of 16"):
        d(torch.randn(1, 3, 40, 40))
    with pytest.raises(ValueError, match=r"\(B, 6, 3, S, S\)"):
        dv(torch.randn(1, 5, 3, 32, 32))
    with pytest.raises(ValueError, match="DiscriminatorConfig.ndf"):
        DiscriminatorConfig(ndf=0)


def test_discriminator_config_round_trip():
    cfg = DiscriminatorConfig(ndf=8, img_f=32)
    assert DiscriminatorConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown"):
        DiscriminatorConfig.from_dict({"ndf": 8, "bogus": 1})
    d = SpatialDiscriminator(cfg)
    assert d.config is cfg
    assert copy.deepcopy(d).config == cfg
