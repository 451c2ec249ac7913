"""LPIPS v0.1 with the AlexNet backbone (Zhang et al. 2018), images in [-1, 1].

    x' = (x - shift) / scale                          (v0.1 scaling layer)
    f_l = AlexNet ReLU outputs l = 1..5 of x', y'     (64, 192, 384, 256, 256 channels)
    n_l = f_l / (||f_l||_channels + 1e-10)            (unit length per pixel)
    LPIPS = sum_l mean_{h,w} w_l . (n_l(x) - n_l(y))^2

w_l are the learned 1x1 "linear" layers (keys `lin{l}.model.1.weight`, shipped by the
`lpips` package as `weights/v0.1/alex.pth`). The authors call `lpips.LPIPS(net='alex')`
on x/127.5 - 1; this module computes the same from the same weights (tests compare it to
the `lpips` package), so the package is not needed at run time.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn
from torchvision.models import AlexNet

from bdmm_cli.errors import InputError, MissingResourceError
from bdmm_cli.state_dict import check_weights

SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
# AlexNet.features indices that end each of the five LPIPS stages (after the ReLU).
STAGES = ((0, 2), (2, 5), (5, 8), (8, 10), (10, 12))
CHANNELS = (64, 192, 384, 256, 256)
MIN_SIZE = 31  # smaller inputs vanish before AlexNet's fifth stage


def normalize_channels(x: Tensor, eps: float = 1e-10) -> Tensor:
    """Divide each pixel's feature vector by its L2 norm (+ eps)."""
    return x / (torch.sqrt(torch.sum(x * x, dim=1, keepdim=True)) + eps)


class LPIPS(nn.Module):
    """forward(x (B, 3, H, W), y (B, 3, H, W), both in [-1, 1]) -> (B,) distance."""

    def __init__(self, features: nn.Sequential, linear: dict[str, Tensor]) -> None:
        super().__init__()
        self.stages = nn.ModuleList(nn.Sequential(*[features[i] for i in range(a, b)]) for a, b in STAGES)
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1), persistent=False)
        keys = [f"lin{i}.model.1.weight" for i in range(len(CHANNELS))]
        check_weights(linear, {k: (1, c, 1, 1) for k, c in zip(keys, CHANNELS)}, "these are not LPIPS linear weights")
        self.lin = nn.ParameterList(nn.Parameter(linear[k].detach().clone().float(), requires_grad=False) for k in keys)
        self.eval().requires_grad_(False)

    def _features(self, x: Tensor) -> list[Tensor]:
        h = (x - self.shift) / self.scale
        out = []
        for stage in self.stages:
            h = stage(h)
            out.append(normalize_channels(h))
        return out

    @torch.no_grad()
    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        if min(x.shape[-2:]) < MIN_SIZE:
            raise InputError(f"LPIPS needs images of at least {MIN_SIZE}x{MIN_SIZE} pixels, got {x.shape[-1]}x{x.shape[-2]}")
        total = torch.zeros(x.shape[0], device=x.device)
        for fx, fy, w in zip(self._features(x.float()), self._features(y.float()), self.lin):
            d = (fx - fy) ** 2
            total = total + (d * w).sum(dim=1).mean(dim=(1, 2))
        return total


def _packaged_linear() -> Path | None:
    """The v0.1 AlexNet linear layers shipped inside the `lpips` package, if installed."""
    try:
        import importlib.resources as resources

        path = Path(str(resources.files("lpips") / "weights" / "v0.1" / "alex.pth"))
    except (ImportError, ModuleNotFoundError, TypeError):
        return None
    return path if path.is_file() else None


def load_lpips(
    backbone: str | Path | nn.Module = "alexnet",
    linear: str | Path | dict[str, Tensor] = "lpips-alex",
    device: str | torch.device = "cpu",
) -> LPIPS:
    """LPIPS from an AlexNet (registry name, weights file, or AlexNet module) and linear layers.

    `linear` is a registry name, a file, or a state dict. When the registry cannot provide
    the linear layers and the `lpips` package is installed, its shipped file is used.
    """
    from bdmm_cli.hub.resolve import resolve_weights
    from bdmm_cli.metrics.networks import load_weights
    from bdmm_cli.state_dict import read_checkpoint_file

    if isinstance(backbone, nn.Module):
        net = backbone
    else:
        net = load_weights(AlexNet(), backbone, "alexnet", "AlexNet")
    features = net.features if isinstance(net, AlexNet) else net
    if not isinstance(linear, dict):
        try:
            path = resolve_weights(linear, "lpips_linear")
        except MissingResourceError:
            path = _packaged_linear() if linear == "lpips-alex" else None
            if path is None:
                raise
        linear = read_checkpoint_file(path).state_dict
    return LPIPS(features, linear).to(device)
