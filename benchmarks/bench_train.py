"""Seconds per 6-frame training window at the paper's size (S = 256, full widths).

One window = what `Trainer.train_window` does: G forward, D + D_V LSGAN update, G update
with L1 + VGG19 perceptual/style/contextual + both adversarial terms (backward of all).
Also timed separately in the same run: G forward+backward alone, and D + D_V
forward+backward, to give the share of each. fp32 on CPU; on CUDA also bf16 and fp16
autocast (ratios against fp32 in the same run). VGG19 has random weights (the timing does
not depend on them); flows are random grids (the rasterizer is benchmarked in bench_flow).

    python benchmarks/bench_train.py                 # CPU fp32, 1 warm-up + 2 timed windows
    python benchmarks/bench_train.py --repeats 5 --size 256 --device cuda
"""

from __future__ import annotations

import argparse
import time

import torch

from bdmm_cli.model import WindowInputs
from bdmm_cli.train.config import TrainConfig
from bdmm_cli.train.distributed import DistInfo
from bdmm_cli.train.loop import Trainer, WindowLog, amp_autocast, build_networks
from bdmm_cli.train.losses import load_vgg19


def inputs(b: int, t: int, s: int, device: str, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    win = WindowInputs(
        source=torch.rand(b, 3, s, s, generator=g) * 2 - 1,
        heatmaps=torch.rand(b, t, 25, s, s, generator=g),
        flows=torch.rand(b, t, s, s, 2, generator=g) * 2 - 1,
        flow_pre=torch.rand(b, s, s, 2, generator=g) * 2 - 1,
        flow_post=torch.rand(b, s, s, 2, generator=g) * 2 - 1,
    )
    win = WindowInputs(*(x.to(device) for x in (win.source, win.heatmaps, win.flows, win.flow_pre, win.flow_post)))
    real = (torch.rand(b, t, 3, s, s, generator=g) * 2 - 1).to(device)
    return win, real


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(fn, repeats: int, device: str) -> float:
    fn()  # warm-up
    sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return min(times)


def measure(amp: str, size: int, repeats: int, dev: str) -> tuple[str, float, float, float]:
    """(amp, s per window, s for G forward+backward, s for D + D_V forward+backward)."""
    cfg = TrainConfig(image_size=size, device=dev, amp=amp, vgg_weights="random")
    nets = build_networks(cfg, dev)
    trainer = Trainer(cfg, DistInfo(device=dev), nets, load_vgg19("random", device=dev), body=None)
    win, real = inputs(1, cfg.window, size, dev)
    rng = torch.Generator().manual_seed(0)

    def window():
        trainer.train_window(win, real, None, rng, WindowLog())

    def g_only():
        with amp_autocast(dev, amp):
            out = nets.G(win, None)
        out.frames.float().square().mean().backward()
        nets.G.zero_grad(set_to_none=True)

    def critics():
        with amp_autocast(dev, amp):
            loss = nets.D(real[:, 0]).float().mean() + nets.D_V(real).float().mean()
        loss.backward()
        nets.D.zero_grad(set_to_none=True)
        nets.D_V.zero_grad(set_to_none=True)

    name = "fp32" if amp == "off" else amp
    t_win = timed(window, repeats, dev)
    print(f"  {name}: window {t_win:.3f} s", flush=True)
    t_g = timed(g_only, repeats, dev)
    print(f"  {name}: G forward+backward {t_g:.3f} s", flush=True)
    t_d = timed(critics, repeats, dev)
    print(f"  {name}: D + D_V forward+backward {t_d:.3f} s", flush=True)
    return amp, t_win, t_g, t_d


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = args.device
    precisions = ["off"] + (["bf16", "fp16"] if dev.startswith("cuda") else [])
    print(f"device {dev}, S = {args.size}, threads {torch.get_num_threads()}, best of {args.repeats} after 1 warm-up",
          flush=True)
    rows = [measure(amp, args.size, args.repeats, dev) for amp in precisions]
    base = rows[0][1]
    print(f"{'precision':<10} {'window s':>10} {'G fwd+bwd s':>12} {'D+D_V s':>9} {'G share':>8} {'vs fp32':>8}")
    for amp, t_win, t_g, t_d in rows:
        name = "fp32" if amp == "off" else amp
        print(f"{name:<10} {t_win:>10.3f} {t_g:>12.3f} {t_d:>9.3f} {t_g / t_win:>8.2f} {base / t_win:>7.2f}x")


if __name__ == "__main__":
    main()
