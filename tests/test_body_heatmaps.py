"""BODY_25 heatmaps against the formula of section 4."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bdmm_cli.body import KeypointHeatmaps, keypoint_heatmaps


def formula(x: float, y: float, r: int, c: int, sigma: float = 6.0) -> float:
    return math.exp(-((r - y) ** 2 + (c - x) ** 2) / (2 * sigma**2))


def test_values_follow_the_formula():
    kp = np.zeros((25, 3), dtype=np.float32)
    kp[0] = [10.0, 20.0, 0.9]
    kp[5] = [31.5, 7.25, 0.1]
    kp[7] = [-5.0, 40.0, 0.0]  # off-image: a partly visible blob (official behaviour)
    maps = keypoint_heatmaps(torch.tensor(kp), image_size=48)
    assert maps.shape == (1, 25, 48, 48) and maps.dtype == torch.float32
    for j in (0, 5, 7):
        x, y = kp[j, :2]
        for r, c in [(20, 10), (0, 0), (7, 31), (40, 0), (47, 47), (13, 29)]:
            assert maps[0, j, r, c].item() == pytest.approx(formula(x, y, r, c), rel=1e-5, abs=1e-12)
    assert maps[0, 0, 20, 10].item() == pytest.approx(1.0)  # peak 1 on an integer pixel
    assert maps[0, 0].argmax().item() == 20 * 48 + 10  # row y, column x
    assert maps[0, 7].max() > 0.1  # the off-image joint still draws


def test_missing_rule_is_x_or_y_exactly_zero():
    kp = torch.tensor([[[0.0, 12.0, 1.0], [12.0, 0.0, 1.0], [0.01, 12.0, 1.0], [5.0, 5.0, 0.0]]])
    maps = keypoint_heatmaps(kp, image_size=16)
    assert maps.shape == (1, 4, 16, 16)
    assert (maps[0, 0] == 0).all() and (maps[0, 1] == 0).all()
    assert maps[0, 2].max() > 0.9  # 0.01 is not missing
    assert maps[0, 3].max() == pytest.approx(1.0)  # confidence ignored by default
    strict = keypoint_heatmaps(kp, image_size=16, conf_zero_missing=True)
    assert (strict[0, 3] == 0).all()
    torch.testing.assert_close(strict[0, :3], maps[0, :3])


def test_batched_sigma_module_and_bad_input():
    g = torch.Generator().manual_seed(0)
    kp = torch.rand(3, 25, 3, generator=g) * 30 + 1
    maps = keypoint_heatmaps(kp, image_size=32, sigma=3.0)
    assert maps.shape == (3, 25, 32, 32)
    for b in range(3):
        torch.testing.assert_close(maps[b : b + 1], keypoint_heatmaps(kp[b], image_size=32, sigma=3.0))
    x, y = kp[1, 4, :2].tolist()
    assert maps[1, 4, 9, 17].item() == pytest.approx(formula(x, y, 9, 17, sigma=3.0), rel=1e-5, abs=1e-12)
    torch.testing.assert_close(KeypointHeatmaps(32, 3.0)(kp), maps)
    with pytest.raises(ValueError):
        keypoint_heatmaps(torch.zeros(25), image_size=32)
