"""FVD pipeline on tiny generated videos with a small stand-in I3D (TorchScript, same call
signature as StyleGAN-V's i3d_torchscript.pt), loaded from a file through the same code."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from bdmm_cli.errors import CheckpointError
from bdmm_cli.metrics.evaluate import EvalConfig, FeatureNetworks, evaluate
from bdmm_cli.metrics.fvd import clip_indices, load_i3d, random_start, run_rng, usable_videos
from bdmm_cli.metrics.inputs import load_videos
from bdmm_cli.metrics.protocol import BDMM, STANDARD, FVDVariant
from tests.metrics_helpers import save_tiny_i3d, smooth_video, write_frames


def _direct_fvd(detector, fake_clips, real_clips) -> float:
    """Population statistics of detector features, Frechet distance with scipy.linalg.sqrtm."""
    def stats(clips):
        x = torch.from_numpy(np.stack(clips)).permute(0, 4, 1, 2, 3)  # (B, C, T, H, W) uint8
        with torch.no_grad():
            f = detector(x, rescale=True, resize=True, return_features=True).double().numpy()
        return f.mean(0), np.cov(f, rowvar=False, bias=True)

    (m1, s1), (m2, s2) = stats(fake_clips), stats(real_clips)
    root = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((m1 - m2) ** 2).sum() + np.trace(s1 + s2 - 2 * root))


def _make(tmp_path, lengths, seed, side):
    rng = np.random.default_rng(seed)
    videos = {}
    for i, n in enumerate(lengths):
        frames = smooth_video(rng, n, size=12)
        write_frames(tmp_path / side / f"video{i}", frames)
        videos[f"video{i}"] = frames
    return videos


@pytest.fixture()
def detector_file(tmp_path):
    return save_tiny_i3d(tmp_path / "i3d_torchscript.pt")


def test_clip_rules():
    v16 = FVDVariant("fvd_16f", 16, 1, 1)
    sub = FVDVariant("fvd_128f_subsample8f", 16, 8, 1)
    rng = np.random.default_rng(0)
    # real start uniform in [0, L - T*stride + stride - 1]: every value, and nothing else
    starts = {random_start(20, v16, rng) for _ in range(400)}
    assert starts == set(range(5))
    starts = {random_start(130, sub, rng) for _ in range(2000)}
    assert starts == set(range(10))  # 130 - 128 + 8 - 1 = 9
    assert clip_indices(9, sub)[-1] == 129  # the last start still fits
    np.testing.assert_array_equal(clip_indices(3, sub), 3 + 8 * np.arange(16))
    with pytest.raises(ValueError):
        random_start(127, sub, rng)


def test_short_videos_dropped_and_capped(tmp_path):
    _make(tmp_path, [16, 15, 20, 40], 0, "v")
    _, videos = load_videos(tmp_path / "v")
    v16 = FVDVariant("fvd_16f", 16, 1, 1)
    assert [v.name for v in usable_videos(videos, v16, 2048)] == ["video0", "video2", "video3"]
    assert [v.name for v in usable_videos(videos, v16, 2)] == ["video0", "video2"]
    v32 = FVDVariant("fvd_32f", 16, 2, 1)
    assert [v.name for v in usable_videos(videos, v32, 2048)] == ["video3"]


def test_fvd_equals_direct_computation(tmp_path, detector_file):
    """Videos of exactly 16 frames: every clip starts at 0, so runs agree (std 0) and the
    value equals the FVD computed here; 128-frame variants have no usable video."""
    fake = _make(tmp_path, [16] * 5, 1, "pred")
    real = _make(tmp_path, [16] * 5, 2, "gt")
    result = evaluate(tmp_path / "pred", tmp_path / "gt", EvalConfig(metrics="fvd", seed=3, fvd_runs=3),
                      FeatureNetworks(i3d=detector_file))
    detector = load_i3d(detector_file)
    expected = _direct_fvd(detector, list(fake.values()), list(real.values()))
    assert list(result) == ["fvd_16f", "fvd_128f", "fvd_128f_subsample8f", "meta"]
    assert result["fvd_16f"]["mean"] == pytest.approx(expected, rel=1e-6)
    assert result["fvd_16f"]["std"] == pytest.approx(0.0, abs=1e-9)
    assert result["fvd_128f"] is None and result["fvd_128f_subsample8f"] is None
    info = result["meta"]["fvd"]
    assert info["fvd_16f"]["runs"] == 3 and info["fvd_16f"]["videos_real"] == 5
    assert "128 frames" in info["fvd_128f"]["skipped"]


def test_fvd_random_real_clips_deterministic_with_seed(tmp_path, detector_file):
    fake = _make(tmp_path, [140, 135, 20], 3, "pred")
    real = _make(tmp_path, [140, 135, 20], 4, "gt")
    nets = FeatureNetworks(i3d=detector_file)
    a = evaluate(tmp_path / "pred", tmp_path / "gt", EvalConfig(metrics="fvd", seed=7, fvd_runs=2, use_cache=False), nets)
    b = evaluate(tmp_path / "pred", tmp_path / "gt", EvalConfig(metrics="fvd", seed=7, fvd_runs=2), nets)
    c = evaluate(tmp_path / "pred", tmp_path / "gt", EvalConfig(metrics="fvd", seed=8, fvd_runs=2), nets)
    for key in ("fvd_16f", "fvd_128f", "fvd_128f_subsample8f"):
        assert a[key] == b[key]
        assert a[key]["std"] > 0  # the two runs drew different real clips
    assert a["fvd_16f"] != c["fvd_16f"]
    assert a["meta"]["fvd"]["fvd_16f"]["videos_fake"] == 3
    assert a["meta"]["fvd"]["fvd_128f"]["videos_fake"] == 2  # the 20-frame video is dropped
    # a second identical call reads every run's real statistics from the cache
    d = evaluate(tmp_path / "pred", tmp_path / "gt", EvalConfig(metrics="fvd", seed=7, fvd_runs=2), nets)
    assert d["fvd_128f"] == a["fvd_128f"]
    assert any(h.startswith("fvd_128f_subsample8f (2/2") for h in d["meta"]["cache_hits"])

    # independent check of the subsample variant: generated clips from frame 0 every 8th
    # frame, real clips from the seeded uniform starts, StyleGAN-V's statistics
    detector = load_i3d(detector_file)
    sub = BDMM.fvd_variants[2]
    names = ["video0", "video1"]
    fake_clips = [fake[n][clip_indices(0, sub)] for n in names]
    runs = []
    for r in range(2):
        rng = run_rng(7, sub, r)
        starts = [random_start(len(real[n]), sub, rng) for n in names]
        runs.append(_direct_fvd(detector, fake_clips, [real[n][clip_indices(s, sub)] for n, s in zip(names, starts)]))
    assert a["fvd_128f_subsample8f"]["mean"] == pytest.approx(np.mean(runs), rel=1e-6)
    # the std is a difference of two close runs: each run is exact to ~1e-6 of its value,
    # so the std is compared at that absolute scale, not relative to itself
    assert a["fvd_128f_subsample8f"]["std"] == pytest.approx(np.std(runs), rel=0, abs=1e-6 * np.mean(runs))


def test_fvd_standard_protocol_uses_first_frames(tmp_path, detector_file):
    fake = _make(tmp_path, [20, 24], 5, "pred")
    real = _make(tmp_path, [30, 18], 6, "gt")
    result = evaluate(tmp_path / "pred", tmp_path / "gt", EvalConfig(metrics="fvd", protocol="standard", seed=1),
                      FeatureNetworks(i3d=detector_file))
    assert list(result) == ["fvd_16f", "meta"]
    assert result["meta"]["fvd"]["fvd_16f"]["runs"] == 1
    v = STANDARD.fvd_variants[0]
    expected = _direct_fvd(load_i3d(detector_file), [f[:16] for f in fake.values()], [f[:16] for f in real.values()])
    assert result["fvd_16f"] == {"mean": pytest.approx(expected, rel=1e-6), "std": 0.0}
    assert v.num_frames == 16


def test_bad_detector_file(tmp_path):
    (tmp_path / "i3d.pt").write_bytes(b"not torchscript")
    with pytest.raises(CheckpointError, match="TorchScript"):
        load_i3d(tmp_path / "i3d.pt")
