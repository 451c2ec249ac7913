"""Frechet Video Distance with StyleGAN-V's I3D detector and clip rules.

One clip per video, from the first `max_videos` videos that are long enough:

  * a video shorter than T * stride frames is dropped;
  * a generated clip starts at frame 0; a real clip starts at a uniform random frame in
    [0, L - T*stride + stride - 1] (protocol bdmm), or at frame 0 (protocol standard);
  * clip frames are start, start + stride, ..., start + (T-1)*stride;
  * the detector sees uint8 videos (B, C, T, H, W) and is called as
    detector(videos, rescale=True, resize=True, return_features=True) -> (B, F);
  * statistics use the population covariance, FVD = Frechet distance (see frechet.py).

A variant runs `runs` times with new random real clips (generated features are computed
once, as their clips never change) and reports the mean and std of the runs. Run r draws
its starts from numpy's PCG64 seeded with (seed, variant, r), so results are reproducible.
"""

from __future__ import annotations

import warnings
import zlib
from typing import Callable, Sequence

import numpy as np
import torch

from bdmm_cli.errors import CheckpointError
from bdmm_cli.metrics.frechet import GaussianStats, frechet_distance
from bdmm_cli.metrics.inputs import Video
from bdmm_cli.metrics.protocol import FVDVariant

DETECTOR_KWARGS = {"rescale": True, "resize": True, "return_features": True}


def load_i3d(weights, device: str | torch.device = "cpu") -> torch.nn.Module:
    """The I3D detector: a registry name or a TorchScript file (`torch.jit.load`), or a module."""
    from bdmm_cli.hub.resolve import resolve_weights

    if isinstance(weights, torch.nn.Module):
        return weights.eval().to(device)
    path = resolve_weights(weights, "i3d")  # a TorchScript program, not a state dict: torch.jit.load
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # TorchScript is deprecated; the detector is one
            return torch.jit.load(str(path), map_location="cpu").eval().to(device)
    except Exception as exc:
        raise CheckpointError(f"{path} is not a TorchScript I3D detector: {' '.join(str(exc).split())[:200]}") from exc


def usable_videos(videos: Sequence[Video], variant: FVDVariant, max_videos: int) -> list[Video]:
    """The first `max_videos` videos with at least T * stride frames."""
    return [v for v in videos if v.num_frames >= variant.span][:max_videos]


def random_start(length: int, variant: FVDVariant, rng: np.random.Generator) -> int:
    """Uniform start in [0, L - T*stride + stride - 1] (StyleGAN-V's random offset)."""
    if length < variant.span:
        raise ValueError(f"a {length}-frame video is too short for {variant.name}")
    high = length - variant.span + variant.stride - 1
    return int(rng.integers(0, high + 1))


def clip_indices(start: int, variant: FVDVariant) -> np.ndarray:
    """Frame indices of a clip: start + stride * arange(T)."""
    return start + variant.stride * np.arange(variant.num_frames)


def run_rng(seed: int, variant: FVDVariant, run: int) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(variant.name.encode()), run])


def clip_features(
    detector: torch.nn.Module,
    videos: Sequence[Video],
    starts: Sequence[int],
    variant: FVDVariant,
    device: str | torch.device = "cpu",
    frames_per_batch: int = 128,
    advance: Callable[[int], None] | None = None,
) -> np.ndarray:
    """(N, F) detector features of one clip per video (clip i starts at starts[i])."""
    per_batch = max(1, frames_per_batch // variant.num_frames)
    out = []
    for b in range(0, len(videos), per_batch):
        clips = []
        for video, start in zip(videos[b:b + per_batch], starts[b:b + per_batch]):
            frames = list(video.frames(clip_indices(start, variant)))
            clips.append(np.stack(frames))  # (T, H, W, 3)
        x = torch.from_numpy(np.stack(clips)).permute(0, 4, 1, 2, 3).contiguous()  # (B, C, T, H, W)
        with torch.no_grad():
            feats = detector(x.to(device), **DETECTOR_KWARGS)
        out.append(feats.detach().double().cpu().numpy())
        if advance is not None:
            advance(len(clips))
    return np.concatenate(out, axis=0)


def compute_fvd(
    fake_stats: GaussianStats,
    real_stats_for_run: Callable[[int], GaussianStats],
    runs: int,
) -> tuple[float, float, tuple[float, ...]]:
    """(mean, std, per-run values) of FVD between fixed fake stats and each run's real stats."""
    values = tuple(frechet_distance(fake_stats, real_stats_for_run(r)) for r in range(runs))
    return float(np.mean(values)), float(np.std(values)), values

