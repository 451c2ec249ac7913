"""SSIM (Wang et al. 2004) with Gaussian weights, as scikit-image computes it.

For an image pair x, y (one channel) with local Gaussian means mu, variances s^2 and
covariance s_xy (sigma 1.5, population normalisation):

    SSIM = mean over the valid window positions of
           (2 mu_x mu_y + C1)(2 s_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(s_x^2 + s_y^2 + C2)),
    C1 = (0.01 R)^2, C2 = (0.03 R)^2,

and the colour SSIM is the mean over channels. scikit-image filters the whole image and
then crops `(win - 1) / 2` pixels at each border before averaging; a "valid" convolution
with the same 11-tap kernel computes exactly that cropped region.

R (the data range) is the protocol's choice: `bdmm` uses max - min of the generated image
(the authors' `compare_ssim(..., data_range=gen.max() - gen.min())`), `standard` uses 255.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bdmm_cli.errors import InputError


def gaussian_kernel1d(sigma: float = 1.5, truncate: float = 3.5, dtype=torch.float64) -> Tensor:
    """The 1-D kernel of scipy.ndimage.gaussian_filter: radius int(truncate*sigma + 0.5), sum 1."""
    radius = int(truncate * sigma + 0.5)
    x = torch.arange(-radius, radius + 1, dtype=dtype)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def _blur(x: Tensor, k: Tensor) -> Tensor:
    """Separable valid convolution of (B, C, H, W) with the 1-D kernel k along H and W."""
    c = x.shape[1]
    kh = k.view(1, 1, -1, 1).expand(c, 1, -1, 1)
    kw = k.view(1, 1, 1, -1).expand(c, 1, 1, -1)
    return F.conv2d(F.conv2d(x, kh, groups=c), kw, groups=c)


def ssim(
    pred: Tensor,
    gt: Tensor,
    data_range: Tensor | float,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
) -> Tensor:
    """Per-image SSIM.

    pred, gt:   (B, C, H, W) float images (any scale; e.g. 0..255)
    data_range: R, a float or a (B,) tensor (one per image)
    returns:    (B,) mean SSIM over channels and valid window positions (float64)
    """
    if pred.shape != gt.shape or pred.ndim != 4:
        raise InputError(f"SSIM needs two (B,C,H,W) images of one shape, got {tuple(pred.shape)} and {tuple(gt.shape)}")
    k = gaussian_kernel1d(sigma).to(pred.device)
    if min(pred.shape[-2:]) < k.numel():
        raise InputError(f"SSIM needs images of at least {k.numel()}x{k.numel()} pixels, got {pred.shape[-1]}x{pred.shape[-2]}")
    x = pred.to(torch.float64)
    y = gt.to(torch.float64)
    r = torch.as_tensor(data_range, dtype=torch.float64, device=x.device).reshape(-1, 1, 1, 1)
    c1 = (k1 * r) ** 2
    c2 = (k2 * r) ** 2
    mu_x, mu_y = _blur(x, k), _blur(y, k)
    var_x = _blur(x * x, k) - mu_x * mu_x
    var_y = _blur(y * y, k) - mu_y * mu_y
    cov_xy = _blur(x * y, k) - mu_x * mu_y
    s = ((2 * mu_x * mu_y + c1) * (2 * cov_xy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return s.mean(dim=(1, 2, 3))


def data_range_for(pred: Tensor, mode: str, full_range: float = 255.0) -> Tensor:
    """R per image: "pred" = max - min of each generated image (all channels), "full" = 255."""
    if mode == "pred":
        flat = pred.reshape(pred.shape[0], -1).to(torch.float64)
        return flat.amax(dim=1) - flat.amin(dim=1)
    if mode == "full":
        return torch.full((pred.shape[0],), float(full_range), dtype=torch.float64, device=pred.device)
    raise ValueError(f"unknown SSIM range mode {mode!r}")


class SSIM(nn.Module):
    """Module form of :func:`ssim` with the range rule of a protocol ("pred" or "full")."""

    def __init__(self, range_mode: str = "pred", sigma: float = 1.5) -> None:
        super().__init__()
        self.range_mode = range_mode
        self.sigma = sigma

    def forward(self, pred: Tensor, gt: Tensor) -> Tensor:
        """pred, gt: (B, 3, H, W) on 0..255 -> (B,) SSIM."""
        return ssim(pred, gt, data_range_for(pred, self.range_mode), sigma=self.sigma)

