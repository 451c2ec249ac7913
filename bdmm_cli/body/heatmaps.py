"""BODY_25 keypoint heatmaps, as the official data loader draws them.

Channel i is exp(-((r - y_i)^2 + (c - x_i)^2) / (2 sigma^2)) on the integer pixel grid
(row r, column c) of the S x S crop, sigma 6 px, peak 1; confidence is ignored. A joint is
missing only when x == 0 or y == 0 exactly (all-zero channel). OpenPose's missing joints
are usually mapped to an off-image position by the cropper, and the released weights saw
a (partly visible) blob there; `conf_zero_missing=True` treats confidence 0 as missing
too, for new videos and weights trained that way.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

__all__ = ["keypoint_heatmaps", "KeypointHeatmaps"]


def keypoint_heatmaps(
    keypoints: Tensor | np.ndarray,
    image_size: int = 256,
    sigma: float = 6.0,
    conf_zero_missing: bool = False,
) -> Tensor:
    """Gaussian heatmaps of keypoints.

    Args:
        keypoints: (B, J, 3) or (J, 3) [x, y, conf] in pixels of the S x S crop
            (J = 25 for BODY_25). A numpy array is accepted.
        image_size: S.
        sigma: Gaussian standard deviation in pixels.
        conf_zero_missing: also treat conf == 0 as missing.
    Returns:
        (B, J, S, S) float32 (B = 1 for a (J, 3) input), on the keypoints' device.
    """
    kp = torch.as_tensor(keypoints)
    if kp.ndim == 2:
        kp = kp[None]
    if kp.ndim != 3 or kp.shape[-1] < 2:
        raise ValueError(f"keypoints must have shape (B, J, 3) or (J, 3), got {tuple(kp.shape)}")
    if image_size <= 0 or sigma <= 0:
        raise ValueError("image_size and sigma must be positive")
    kp = kp.to(torch.float32)
    x, y = kp[..., 0], kp[..., 1]  # (B, J)
    missing = (x == 0) | (y == 0)
    if conf_zero_missing and kp.shape[-1] > 2:
        missing = missing | (kp[..., 2] == 0)
    grid = torch.arange(image_size, device=kp.device, dtype=torch.float32)
    # The Gaussian is separable: exp(-(dy^2 + dx^2)/2s^2) = exp(-dy^2/2s^2) * exp(-dx^2/2s^2).
    gy = torch.exp(-((grid - y[..., None]) ** 2) / (2 * sigma**2))  # (B, J, S) over rows
    gx = torch.exp(-((grid - x[..., None]) ** 2) / (2 * sigma**2))  # (B, J, S) over columns
    maps = gy[..., :, None] * gx[..., None, :]
    return torch.where(missing[..., None, None], torch.zeros_like(maps), maps)


class KeypointHeatmaps(nn.Module):
    """Module form of :func:`keypoint_heatmaps`."""

    def __init__(self, image_size: int = 256, sigma: float = 6.0, conf_zero_missing: bool = False):
        super().__init__()
        self.image_size, self.sigma, self.conf_zero_missing = image_size, sigma, conf_zero_missing

    def forward(self, keypoints: Tensor) -> Tensor:
        return keypoint_heatmaps(keypoints, self.image_size, self.sigma, self.conf_zero_missing)
