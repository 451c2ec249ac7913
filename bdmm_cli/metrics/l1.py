"""L1 in the networks' [-1, 1] space: mean |x/127.5 - 1 - (y/127.5 - 1)| per image.

The authors compute it on images mapped to [-1, 1] (so L1 = mean |x - y| / 127.5 on
0..255 values); both protocols use it.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def l1(pred: Tensor, gt: Tensor) -> Tensor:
    """pred, gt: (B, C, H, W) on 0..255 -> (B,) mean absolute difference in [-1, 1] units."""
    a = pred.to(torch.float64) / 127.5 - 1.0
    b = gt.to(torch.float64) / 127.5 - 1.0
    return (a - b).abs().flatten(1).mean(dim=1)


class L1(nn.Module):
    """Module form of :func:`l1`."""

    def forward(self, pred: Tensor, gt: Tensor) -> Tensor:
        return l1(pred, gt)
