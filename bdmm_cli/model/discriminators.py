"""The spatial (``ResDiscriminator``) and temporal (``TemporalDiscriminator``) critics.

Both end with LeakyReLU(0.1) and a spectrally normalised 1x1 conv (``conv.weight_orig``,
``conv.weight_u``, ``conv.weight_v``, ``conv.bias``), output (B, 1, S/16, S/16), no sigmoid.
State-dict keys equal the authors' keys.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .layers import LEAKY_SLOPE, IntConfig, check_positive_ints

__all__ = [
    "DiscriminatorConfig",
    "SpectralNormConv2d",
    "ResBlockEncoder",
    "SpatialDiscriminator",
    "TemporalDiscriminator",
]



@dataclass(frozen=True)
class DiscriminatorConfig(IntConfig):
    """Widths of D and D_V (default: the paper's, ndf 32, img_f 128, layers 4, T = 6)."""

    input_nc: int = 3
    ndf: int = 32
    img_f: int = 128
    layers: int = 4
    input_length: int = 6

    def __post_init__(self) -> None:
        check_positive_ints(self)
        if self.layers < 3:
            raise ValueError(f"DiscriminatorConfig.layers must be at least 3, got {self.layers}")
        if self.input_length < 5:
            raise ValueError(f"DiscriminatorConfig.input_length must be at least 5, got {self.input_length}")


class SpectralNormConv2d(nn.Module):
    """Conv2d whose weight is divided by sigma = u . (W v) (classic ``spectral_norm`` layout).

    Parameters ``weight_orig`` (O, I, k, k), ``bias`` (O,); buffers ``weight_u`` (O,),
    ``weight_v`` (I*k*k,). Eval mode: sigma from the stored u, v as they are. Train mode: one
    power iteration first (v <- normalize(W^T u), u <- normalize(W v), eps 1e-12), stored back.
    Same arithmetic as ``torch.nn.utils.spectral_norm`` (dim 0, one iteration).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, eps: float = 1e-12) -> None:
        super().__init__()
        self.padding = kernel_size // 2 if kernel_size > 1 else 0
        conv = nn.Conv2d(in_channels, out_channels, kernel_size)
        self.weight_orig = nn.Parameter(conv.weight.detach().clone())
        self.bias = nn.Parameter(conv.bias.detach().clone())
        self.eps = eps
        fan = in_channels * kernel_size * kernel_size
        self.register_buffer("weight_u", F.normalize(torch.randn(out_channels), dim=0, eps=eps))
        self.register_buffer("weight_v", F.normalize(torch.randn(fan), dim=0, eps=eps))

    def normalized_weight(self) -> Tensor:
        w = self.weight_orig.flatten(1)
        u, v = self.weight_u, self.weight_v
        if self.training:
            with torch.no_grad():
                v = F.normalize(torch.mv(w.t(), u), dim=0, eps=self.eps, out=v)
                u = F.normalize(torch.mv(w, v), dim=0, eps=self.eps, out=u)
            u, v = u.clone(), v.clone()
        sigma = torch.dot(u, torch.mv(w, v))
        return self.weight_orig / sigma

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.normalized_weight(), self.bias, padding=self.padding)


class ResBlockEncoder(nn.Module):
    """model: LReLU -> conv(in->hidden, 3, p1) -> LReLU -> conv(hidden->out, 4, s2, p1);
    shortcut: AvgPool(2) -> conv(in->out, 1). (B, in, H, W) -> (B, out, H/2, W/2).

    ``video=True`` is the authors' 3-D version (their ``ResBlock3DEncoder``): Conv3d, the
    second conv (3,4,4) s(1,2,2) p(0,1,1), the pool (3,2,2) s(1,2,2), so
    (B, in, T, H, W) -> (B, out, T-2, H/2, W/2).
    """

    def __init__(self, in_channels: int, out_channels: int, hidden_channels: int, video: bool = False) -> None:
        super().__init__()
        conv, pool = (nn.Conv3d, nn.AvgPool3d((3, 2, 2), (1, 2, 2))) if video else (nn.Conv2d, nn.AvgPool2d(2, 2))
        down = ((3, 4, 4), (1, 2, 2), (0, 1, 1)) if video else (4, 2, 1)
        self.model = nn.Sequential(
            nn.LeakyReLU(LEAKY_SLOPE),
            conv(in_channels, hidden_channels, 3, 1, 1),
            nn.LeakyReLU(LEAKY_SLOPE),
            conv(hidden_channels, out_channels, *down),
        )
        self.shortcut = nn.Sequential(pool, conv(in_channels, out_channels, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x) + self.shortcut(x)


def _check_side(h: int, w: int, levels: int) -> None:
    f = 2**levels
    if h % f or w % f:
        raise ValueError(f"image side must be a multiple of {f}, got {h}x{w}")


def _add_encoders(module: nn.Module, ndf: int, mult: int, count: int, first_power: int, cap: int) -> int:
    """Register ``encoder0 .. encoder{count-1}`` on `module`: ResBlockEncoders from ``ndf * mult``
    channels to ``ndf * min(2 ** (first_power + i), cap)``; returns the last multiplier."""
    for i in range(count):
        prev, mult = mult, min(2 ** (i + first_power), cap)
        setattr(module, f"encoder{i}", ResBlockEncoder(ndf * prev, ndf * mult, ndf * prev))
    return mult


class SpatialDiscriminator(nn.Module):
    """Authors' ``ResDiscriminator``: img (B, 3, S, S) -> scores (B, 1, S/16, S/16)."""

    def __init__(self, config: DiscriminatorConfig | None = None) -> None:
        super().__init__()
        cfg = DiscriminatorConfig() if config is None else config
        self.config = cfg
        ndf, cap = cfg.ndf, cfg.img_f // cfg.ndf
        self.block0 = ResBlockEncoder(cfg.input_nc, ndf, ndf)
        mult = _add_encoders(self, ndf, 1, cfg.layers - 1, 1, cap)
        self.nonlinearity = nn.LeakyReLU(LEAKY_SLOPE)
        self.conv = SpectralNormConv2d(ndf * mult, 1, 1)

    def forward(self, img: Tensor) -> Tensor:
        cfg = self.config
        if img.ndim != 4 or img.shape[1] != cfg.input_nc:
            raise ValueError(f"SpatialDiscriminator input must be (B, {cfg.input_nc}, S, S), got {tuple(img.shape)}")
        _check_side(img.shape[2], img.shape[3], cfg.layers)
        x = self.block0(img)
        for i in range(cfg.layers - 1):
            x = getattr(self, f"encoder{i}")(x)
        return self.conv(self.nonlinearity(x))


class TemporalDiscriminator(nn.Module):
    """Authors' ``TemporalDiscriminator``: video (B, T, 3, S, S) -> scores (B, 1, S/16, S/16).

    Permutes to (B, 3, T, S, S), two 3-D residual blocks (time T -> T-4), folds time into
    channels (channel = (T-4)*c + t), then ResBlockEncoders and the SN 1x1 conv.
    """

    def __init__(self, config: DiscriminatorConfig | None = None) -> None:
        super().__init__()
        cfg = DiscriminatorConfig() if config is None else config
        self.config = cfg
        ndf, cap = cfg.ndf, cfg.img_f // cfg.ndf
        feature_len = cfg.input_length - 4
        self.block0 = ResBlockEncoder(cfg.input_nc, ndf, ndf, video=True)
        self.block1 = ResBlockEncoder(ndf, 2 * ndf, ndf, video=True)
        mult = _add_encoders(self, ndf, 2 * feature_len, cfg.layers - 2, 2, cap)
        self.nonlinearity = nn.LeakyReLU(LEAKY_SLOPE)
        self.conv = SpectralNormConv2d(ndf * mult, 1, 1)

    def forward(self, video: Tensor) -> Tensor:
        cfg = self.config
        want = (cfg.input_length, cfg.input_nc)
        if video.ndim != 5 or tuple(video.shape[1:3]) != want:
            raise ValueError(
                f"TemporalDiscriminator input must be (B, {cfg.input_length}, {cfg.input_nc}, S, S), got {tuple(video.shape)}"
            )
        _check_side(video.shape[3], video.shape[4], cfg.layers)
        x = video.permute(0, 2, 1, 3, 4)
        x = self.block1(self.block0(x))
        b, c, t, h, w = x.shape
        x = x.reshape(b, c * t, h, w)
        for i in range(cfg.layers - 2):
            x = getattr(self, f"encoder{i}")(x)
        return self.conv(self.nonlinearity(x))
