"""The Frechet distance against a direct scipy computation, and the statistics helpers."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

from bdmm_cli.errors import InputError
from bdmm_cli.metrics.frechet import GaussianStats, frechet_distance, stats_from_features


def _direct(mu1, s1, mu2, s2) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 sqrtm(S1 S2)), written out with scipy."""
    root = scipy.linalg.sqrtm(s1 @ s2)
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(root).real)


def _random_stats(rng, n, d, scale=1.0, shift=0.0):
    a = rng.normal(size=(d, d)) / np.sqrt(d)
    x = rng.normal(size=(n, d)) @ a * scale + shift
    return stats_from_features(x)


@pytest.mark.parametrize("method", ["auto", "eigh", "sqrtm"])
@pytest.mark.parametrize("n1,n2", [(400, 300), (20, 15), (300, 20)])  # full rank, and rank-deficient
def test_frechet_equals_direct_scipy(method, n1, n2):
    rng = np.random.default_rng(0)
    a = _random_stats(rng, n1, 32)
    b = _random_stats(rng, n2, 32, scale=1.7, shift=0.3)
    expected = _direct(a.mu, a.sigma, b.mu, b.sigma)
    assert frechet_distance(a, b, method=method) == pytest.approx(expected, rel=1e-6, abs=1e-8)
    assert frechet_distance(b, a, method=method) == pytest.approx(expected, rel=1e-6, abs=1e-8)


@pytest.mark.parametrize("method", ["auto", "eigh", "sqrtm"])
def test_frechet_zero_for_identical_stats(method):
    rng = np.random.default_rng(1)
    a = _random_stats(rng, 200, 16)
    assert abs(frechet_distance(a, a, method=method)) < 1e-8
    low_rank = _random_stats(rng, 5, 16)
    assert low_rank.factor is not None
    assert abs(frechet_distance(low_rank, low_rank, method=method)) < 1e-6


def test_frechet_analytic_case():
    # N(mu1, s^2 I) vs N(mu2, t^2 I): d^2 = |mu1 - mu2|^2 + D (s - t)^2
    d = 8
    a = GaussianStats(np.zeros(d), 4.0 * np.eye(d))
    b = GaussianStats(np.full(d, 0.5), 9.0 * np.eye(d))
    assert frechet_distance(a, b) == pytest.approx(d * 0.25 + d * 1.0)


def test_stats_match_numpy():
    x = np.random.default_rng(2).normal(size=(50, 6))
    s = stats_from_features(x, ddof=1)
    np.testing.assert_allclose(s.sigma, np.cov(x, rowvar=False))
    np.testing.assert_allclose(s.mu, x.mean(0))
    p = stats_from_features(x, ddof=0)
    np.testing.assert_allclose(p.sigma, np.cov(x, rowvar=False, bias=True))
    assert s.count == 50


def test_stats_file_roundtrip_and_authors_layout(tmp_path):
    s = stats_from_features(np.random.default_rng(3).normal(size=(10, 4)))
    s.save(tmp_path / "s.npz")
    t = GaussianStats.load(tmp_path / "s.npz")
    np.testing.assert_array_equal(t.sigma, s.sigma)
    assert s.factor is None and t.factor is None  # 10 samples > 4 dimensions: no factor
    few = stats_from_features(np.random.default_rng(4).normal(size=(3, 5)))
    few.save(tmp_path / "few.npz")
    np.testing.assert_array_equal(GaussianStats.load(tmp_path / "few.npz").factor, few.factor)
    np.testing.assert_allclose(few.factor.T @ few.factor, few.sigma)

    assert t.count == 10
    # the authors' fid_stat.npz holds only mu and sigma
    np.savez(tmp_path / "fid_stat.npz", mu=s.mu, sigma=s.sigma)
    assert GaussianStats.load(tmp_path / "fid_stat.npz").count == 0
    np.savez(tmp_path / "bad.npz", mu=s.mu)
    with pytest.raises(InputError):
        GaussianStats.load(tmp_path / "bad.npz")


def test_mismatched_dimensions():
    a = GaussianStats(np.zeros(3), np.eye(3))
    b = GaussianStats(np.zeros(4), np.eye(4))
    with pytest.raises(InputError, match="different sizes"):
        frechet_distance(a, b)
