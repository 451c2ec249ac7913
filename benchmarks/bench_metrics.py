"""Feature-extraction throughput of the metrics (CPU, and CUDA when present).

    python benchmarks/bench_metrics.py                     # default sizes
    python benchmarks/bench_metrics.py --quick             # fewer images
    python benchmarks/bench_metrics.py --i3d i3d_torchscript.pt   # time the real FVD detector

Rows:

- `FID features (bdmm)`: torchvision Inception-v3 at 299 on 256x256 frames, images/s, for
  batch 1 (the baseline of the FID ratios) and the default batch 16;
- `FID features (standard)`: the FID Inception (pytorch-fid layout), batch 16;
- `FVD clips`: one 16-frame 256x256 clip per item through `clip_features` (frame decode
  from PNG + batching + detector), clips/s. Without `--i3d` the detector is a tiny
  stand-in (no I3D weights are reachable here), so that row measures the input pipeline
  only; with `--i3d FILE` it measures the real detector;
- `Frechet distance`: d-dimensional statistics, eigendecomposition route (default) vs
  scipy.linalg.sqrtm (the baseline), seconds per call.

Inception weights are random (kaiming-initialised so activations stay O(1); the speed of
a dense network does not depend on the values of its weights).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bdmm_cli.metrics.frechet import frechet_distance, stats_from_features  # noqa: E402
from bdmm_cli.metrics.fvd import clip_features, load_i3d  # noqa: E402
from bdmm_cli.metrics.inception import InceptionFeatures, build_inception  # noqa: E402
from bdmm_cli.metrics.inputs import load_videos  # noqa: E402
from bdmm_cli.metrics.protocol import FVDVariant  # noqa: E402


def _inception(kind: str, device) -> InceptionFeatures:
    torch.manual_seed(0)
    net = build_inception(kind)
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
    return InceptionFeatures(net, kind).to(device)


def _sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def bench_fid(kind: str, batch: int, n_images: int, device) -> float:
    net = _inception(kind, device)
    x = torch.rand(batch, 3, 256, 256, device=device)
    net(x[:1])  # warm-up
    _sync(device)
    done = 0
    t = time.perf_counter()
    while done < n_images:
        net(x)
        done += batch
    _sync(device)
    return done / (time.perf_counter() - t)


class _StandIn(nn.Module):
    def forward(self, x, rescale: bool = False, resize: bool = False, return_features: bool = False):
        x = x.float()
        if rescale:
            x = x / 127.5 - 1
        return x.mean(dim=(2, 3, 4))


def bench_fvd(detector, n_clips: int, device, folder: Path) -> float:
    from PIL import Image

    rng = np.random.default_rng(0)
    for v in range(n_clips):
        d = folder / f"video{v}"
        d.mkdir(parents=True)
        for i in range(16):
            Image.fromarray(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)).save(d / f"frame_{i:05d}.png")
    _, videos = load_videos(folder)
    variant = FVDVariant("fvd_16f", 16, 1, 1)
    clip_features(detector, videos[:1], [0], variant, device)  # warm-up
    _sync(device)
    t = time.perf_counter()
    clip_features(detector, videos, [0] * len(videos), variant, device)
    _sync(device)
    return len(videos) / (time.perf_counter() - t)


def bench_frechet(dim: int, method: str) -> float:
    rng = np.random.default_rng(0)
    a = stats_from_features(rng.normal(size=(2 * dim, dim)))
    b = stats_from_features(rng.normal(size=(2 * dim, dim)) * 1.1)
    t = time.perf_counter()
    frechet_distance(a, b, method=method)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--i3d", type=Path, default=None, help="a real i3d_torchscript.pt to time")
    ap.add_argument("--frechet-dim", type=int, default=512)
    args = ap.parse_args()
    n_images = 16 if args.quick else 48
    n_clips = 4 if args.quick else 16
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}")
    print("| device | row | value | ratio |")
    print("| --- | --- | --- | --- |")
    for device in devices:
        n = n_images * (8 if device.type == "cuda" else 1)
        base = bench_fid("torchvision", 1, max(4, n // 4), device)
        print(f"| {device.type} | FID features (bdmm), batch 1 | {base:.2f} images/s | 1.00 |")
        for kind in ("torchvision", "fid"):
            ips = bench_fid(kind, 16, n, device)
            label = "bdmm" if kind == "torchvision" else "standard"
            print(f"| {device.type} | FID features ({label}), batch 16 | {ips:.2f} images/s | {ips / base:.2f} |")
        detector = load_i3d(args.i3d, device) if args.i3d else _StandIn().to(device)
        with tempfile.TemporaryDirectory() as tmp:
            cps = bench_fvd(detector, n_clips, device, Path(tmp))
        what = "I3D" if args.i3d else "stand-in detector (input pipeline only)"
        print(f"| {device.type} | FVD clips, 16x256x256, {what} | {cps:.2f} clips/s | - |")
    base = bench_frechet(args.frechet_dim, "sqrtm")
    fast = bench_frechet(args.frechet_dim, "eigh")
    print(f"| cpu | Frechet distance d={args.frechet_dim}, scipy sqrtm | {base:.2f} s | 1.00 |")
    print(f"| cpu | Frechet distance d={args.frechet_dim}, eigh (default) | {fast:.2f} s | {base / fast:.1f}x faster |")


if __name__ == "__main__":
    main()
