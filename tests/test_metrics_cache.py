"""The real-statistics cache: keyed by data + detector + protocol, stored under cache_dir()."""

from __future__ import annotations

import os

import numpy as np
import torch

from bdmm_cli.metrics import feature_cache
from bdmm_cli.metrics.frechet import stats_from_features
from bdmm_cli.metrics.inputs import load_videos
from bdmm_cli.paths import cache_dir
from tests.metrics_helpers import write_frames


def test_cache_hits_and_keys(tmp_path):
    rng = np.random.default_rng(0)
    write_frames(tmp_path / "gt", [rng.integers(0, 256, (8, 8, 3), dtype=np.uint8) for _ in range(3)])
    _, videos = load_videos(tmp_path / "gt")
    key = {"data": feature_cache.data_fingerprint(videos), "detector": "abc", "protocol": "bdmm"}
    calls = []

    def compute():
        calls.append(1)
        return stats_from_features(rng.normal(size=(5, 4)))

    first, hit1 = feature_cache.cached_stats("fid", key, compute)
    second, hit2 = feature_cache.cached_stats("fid", key, compute)
    assert (hit1, hit2) == (False, True) and len(calls) == 1
    np.testing.assert_array_equal(first.sigma, second.sigma)
    assert feature_cache.cache_path("fid", key).parent == cache_dir() / "metrics"

    # every part of the key matters
    for change in ({"detector": "abd"}, {"protocol": "standard"}):
        assert feature_cache.cache_path("fid", {**key, **change}) != feature_cache.cache_path("fid", key)
    # touching a frame changes the data fingerprint
    frame = videos[0].frame_paths[0]
    os.utime(frame, ns=(1, 1))
    _, again = load_videos(tmp_path / "gt")
    assert feature_cache.data_fingerprint(again) != key["data"]
    # disabled: always recomputes, writes nothing new
    feature_cache.cached_stats("fid", {**key, "x": 1}, compute, enabled=False)
    assert len(calls) == 2 and not feature_cache.cache_path("fid", {**key, "x": 1}).exists()
    # a damaged entry is recomputed
    feature_cache.cache_path("fid", key).write_bytes(b"garbage")
    _, hit3 = feature_cache.cached_stats("fid", key, compute)
    assert hit3 is False and len(calls) == 3


def test_module_fingerprint_follows_weights():
    a = torch.nn.Linear(3, 2)
    fp = feature_cache.module_fingerprint(a)
    assert fp == feature_cache.module_fingerprint(a)
    with torch.no_grad():
        a.weight[0, 0] += 1
    assert feature_cache.module_fingerprint(a) != fp
