"""Test helpers for the metrics: tiny frame folders and random-weight feature networks.

No pretrained weights are reachable in tests, so the networks are built with random
weights through the real constructors, saved to files and loaded through the same code
as the registry's files.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn


def write_frames(folder: Path, frames, names=None) -> Path:
    """Write (H, W, 3) uint8 frames as frame_00000.png ... (or the given names)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(frames):
        name = names[i] if names is not None else f"frame_{i:05d}.png"
        Image.fromarray(np.asarray(frame, dtype=np.uint8)).save(folder / name)
    return folder


def read_frames(folder: Path) -> list[np.ndarray]:
    return [np.asarray(Image.open(p).convert("RGB")) for p in sorted(folder.glob("*.png"))]


def noisy(frames, rng, amount=30):
    """A plausible 'generated' version of frames: shifted by noise, clipped."""
    out = []
    for f in frames:
        n = rng.integers(-amount, amount + 1, size=f.shape)
        out.append(np.clip(f.astype(np.int64) + n, 0, 255).astype(np.uint8))
    return out


def smooth_video(rng, num_frames: int, size: int = 16) -> np.ndarray:
    """(T, S, S, 3) uint8 of a moving gradient plus noise (a little temporal structure)."""
    y, x = np.mgrid[0:size, 0:size]
    phase = rng.uniform(0, 2 * np.pi, size=3)
    frames = []
    for t in range(num_frames):
        chans = [127 + 100 * np.sin(0.4 * x + 0.3 * y + 0.2 * t * (c + 1) + phase[c]) for c in range(3)]
        img = np.stack(chans, -1) + rng.normal(0, 10, size=(size, size, 3))
        frames.append(np.clip(img, 0, 255).astype(np.uint8))
    return np.stack(frames)


class TinyI3D(nn.Module):
    """Stand-in for StyleGAN-V's I3D TorchScript: same call signature, 6-d features."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(3, 6, kernel_size=3, stride=(1, 2, 2))

    def forward(self, x: torch.Tensor, rescale: bool = False, resize: bool = False,
                return_features: bool = False) -> torch.Tensor:
        x = x.float()
        if rescale:
            x = x / 127.5 - 1.0
        if resize:
            x = F.interpolate(x, size=(x.shape[2], 12, 12), mode="trilinear", align_corners=False)
        h = torch.tanh(self.conv(x))
        feats = h.mean(dim=(2, 3, 4)) + h.std(dim=(2, 3, 4))
        if return_features:
            return feats
        return torch.softmax(feats, dim=1)


def save_tiny_i3d(path: Path, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # TorchScript: the real detector is one
        torch.jit.script(TinyI3D()).save(str(path))
    return path


def random_inception(kind: str, seed: int = 0):
    """Inception3 of the given layout with random weights that keep activations O(1)."""
    from bdmm_cli.metrics.inception import build_inception

    torch.manual_seed(seed)
    net = build_inception(kind)
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
    return net.eval()


def save_state(module: nn.Module, path: Path) -> Path:
    torch.save(module.state_dict(), path)
    return path
