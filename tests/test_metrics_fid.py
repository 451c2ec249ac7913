"""FID: both Inception feature extractors against independent references, and the pipeline.

protocol bdmm:     torchvision's own Inception3 (transform_input=True, fc removed) on the
                   bilinearly resized input must give our features;
protocol standard: pytorch-fid's InceptionV3 (its own FID blocks) loading the same weights
                   file must give our features.
Weights are random (no pretrained weights are reachable), saved to a file, loaded through
the same loader as the registry's files.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.inception import Inception3

from bdmm_cli.errors import CheckpointError, InputError
from bdmm_cli.metrics.evaluate import EvalConfig, FeatureNetworks, evaluate
from bdmm_cli.metrics.frechet import GaussianStats, stats_from_features
from bdmm_cli.metrics.inception import load_inception
from tests.metrics_helpers import random_inception, read_frames, save_state, write_frames


def _images(n=2, size=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=g)


def test_bdmm_inception_equals_torchvision_transform_input(tmp_path):
    weights = save_state(random_inception("torchvision"), tmp_path / "inception.pth")
    ours = load_inception(weights, "torchvision")
    ref = Inception3(num_classes=1000, aux_logits=True, transform_input=True, init_weights=False)
    ref.load_state_dict(torch.load(weights, weights_only=True))
    ref.fc = nn.Identity()
    ref.eval()
    x = _images()
    with torch.no_grad():
        expected = ref(F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False))
    got = ours(x)
    assert got.shape == (2, 2048)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def test_standard_inception_equals_pytorch_fid(tmp_path, monkeypatch):
    pytorch_fid = pytest.importorskip("pytorch_fid.inception")
    weights = save_state(random_inception("fid"), tmp_path / "pt_inception.pth")
    # pytorch-fid loads its weights through torch.hub's cache: put ours there.
    hub = tmp_path / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    (hub / "pt_inception-2015-12-05-6726825d.pth").write_bytes(weights.read_bytes())
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    ref = pytorch_fid.InceptionV3([3], resize_input=True, normalize_input=True).eval()
    ours = load_inception(weights, "fid")
    x = _images(seed=1)
    with torch.no_grad():
        expected = ref(x)[0].flatten(1)
    torch.testing.assert_close(ours(x), expected, rtol=1e-4, atol=1e-5)
    # and the FID blocks matter: the torchvision layout gives other features
    plain = load_inception(save_state(random_inception("torchvision"), tmp_path / "tv.pth"), "torchvision")
    assert not torch.allclose(plain(x), expected)


def test_inception_rejects_wrong_weights(tmp_path):
    save_state(random_inception("torchvision"), tmp_path / "tv.pth")
    with pytest.raises(CheckpointError, match="fid"):
        load_inception(tmp_path / "tv.pth", "fid")  # 1000 vs 1008 classes, AuxLogits


def test_fid_pipeline_cache_and_fid_stats(tmp_path):
    """evaluate() == FID of features computed here; batch size divides the count (the
    authors' uninitialised-rows case); real stats cached; a given fid_stat.npz is used."""
    rng = np.random.default_rng(0)
    write_frames(tmp_path / "pred", [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(3)])
    write_frames(tmp_path / "gt", [rng.integers(0, 200, (32, 32, 3), dtype=np.uint8) for _ in range(3)])
    weights = save_state(random_inception("torchvision"), tmp_path / "inception.pth")
    nets = FeatureNetworks(inception=weights)
    net = load_inception(weights, "torchvision")

    def feats(folder):
        x = torch.from_numpy(np.stack(read_frames(folder))).permute(0, 3, 1, 2).float() / 255
        return net(x).double().numpy()

    def fid_low_rank(f1, f2, scale2=1.0, shift2=0.0):
        """FID of two sets of N < D features, from their (N x N) cross product:
        Tr((S1 S2)^(1/2)) = sum of singular values of A1 A2^T / sqrt((n1-1)(n2-1))."""
        a1 = f1 - f1.mean(0)
        a2 = (f2 - f2.mean(0)) * np.sqrt(scale2)
        c = np.sqrt((len(f1) - 1) * (len(f2) - 1))
        tr_root = np.linalg.svd(a1 @ a2.T, compute_uv=False).sum() / c
        mu_diff = f1.mean(0) - (f2.mean(0) + shift2)
        return mu_diff @ mu_diff + (a1**2).sum() / (len(f1) - 1) + (a2**2).sum() / (len(f2) - 1) - 2 * tr_root

    f_fake, f_real = feats(tmp_path / "pred"), feats(tmp_path / "gt")
    real = stats_from_features(f_real)
    expected = fid_low_rank(f_fake, f_real)

    first = evaluate(tmp_path / "pred", tmp_path / "gt", EvalConfig(metrics="fid", batch_size=3), nets)
    assert first["fid"] == pytest.approx(expected, rel=1e-4)
    assert first["meta"]["counts"]["fid_fake_images"] == 3
    assert first["meta"]["counts"]["fid_real_images"] == 3
    assert first["meta"]["cache_hits"] == []

    # second run: real statistics come from the cache (keyed by data + detector + protocol)
    second = evaluate(tmp_path / "pred", tmp_path / "gt", EvalConfig(metrics="fid", batch_size=2), nets)
    assert second["meta"]["cache_hits"] == ["fid"]
    assert second["fid"] == pytest.approx(first["fid"], rel=1e-6)

    # the authors' fid_stat.npz (mu, sigma) replaces the ground-truth statistics
    other = GaussianStats(real.mu + 0.01, real.sigma * 1.5)
    np.savez(tmp_path / "fid_stat.npz", mu=other.mu, sigma=other.sigma)
    third = evaluate(tmp_path / "pred", tmp_path / "gt", EvalConfig(metrics="fid", fid_stats=tmp_path / "fid_stat.npz"), nets)
    assert third["fid"] == pytest.approx(fid_low_rank(f_fake, f_real, scale2=1.5, shift2=0.01), rel=1e-4)
    assert third["meta"]["fid_real"].endswith("fid_stat.npz")

    np.savez(tmp_path / "small.npz", mu=np.zeros(8), sigma=np.eye(8))
    with pytest.raises(InputError, match="different sizes"):
        evaluate(tmp_path / "pred", tmp_path / "gt", EvalConfig(metrics="fid", fid_stats=tmp_path / "small.npz"), nets)
