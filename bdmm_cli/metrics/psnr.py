"""PSNR on 0..255 images: PSNR = 20 log10(255 / sqrt(MSE)) per image, averaged over images.

This is the authors' formula and also scikit-image's `peak_signal_noise_ratio` with
`data_range=255` (10 log10(255^2 / MSE)); both protocols use it. Identical images give +inf.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def psnr(pred: Tensor, gt: Tensor, peak: float = 255.0) -> Tensor:
    """pred, gt: (B, C, H, W) on 0..peak -> (B,) PSNR in dB (float64; +inf when equal)."""
    diff = pred.to(torch.float64) - gt.to(torch.float64)
    mse = diff.pow(2).flatten(1).mean(dim=1)
    return 20.0 * torch.log10(peak / torch.sqrt(mse))


class PSNR(nn.Module):
    """Module form of :func:`psnr`."""

    def __init__(self, peak: float = 255.0) -> None:
        super().__init__()
        self.peak = peak

    def forward(self, pred: Tensor, gt: Tensor) -> Tensor:
        return psnr(pred, gt, self.peak)
