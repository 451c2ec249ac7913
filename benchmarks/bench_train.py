"""Seconds per 6-frame training window at the paper's size (S = 256, full widths).

One window = what `Trainer.train_window` does: G forward, D + D_V LSGAN update, G update
with L1 + VGG19 perceptual/style/contextual + both adversarial terms (backward of all).
Also timed separately in the same run: G forward+backward alone, and D + D_V
forward+backward, to give the share of each. fp32 on CPU; on CUDA also bf16 and fp16
autocast (ratios against fp32 in the same run). VGG19 has random weights (the timing does
not depend on them); flows are random grids (the rasterizer is benchmarked in bench_flow).

The generator's deformable convolution is timed both ways in the same run, alternating
round by round: ``torch`` (ours, the default) and ``torchvision`` (the reference op); the
ratio column is torchvision time / ours.

    python benchmarks/bench_train.py                 # CPU fp32, 1 warm-up + 2 timed rounds
    python benchmarks/bench_train.py --repeats 5 --size 256 --device cuda
    python benchmarks/bench_train.py --parts G --layouts default contiguous   # memory layouts
"""

from __future__ import annotations

import argparse
import os
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


#: --layouts: the generator's fast-path memory layout (BDMMGenerator.fast_channels_last)
LAYOUTS = {"default": None, "contiguous": False, "cl": True}


def measure(amp: str, size: int, repeats: int, dev: str, impls: list[str], parts: list[str],
            layouts: list[str] = ("default",)) -> dict:
    """{(variant, part): best seconds} for part in window / G / critics; the variants (deform
    impl, and the layout when more than one is asked) alternate round by round."""
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

    fns = {"window": window, "G": g_only, "critics": critics}
    name = "fp32" if amp == "off" else amp
    best: dict[tuple[str, str], float] = {}
    variants = [(i, lay) for lay in layouts for i in impls]
    for part in parts:
        for r in range(repeats + 1):  # round 0 is the warm-up
            for impl, lay in variants if r % 2 == 0 else variants[::-1]:
                nets.G.set_deform_impl(impl)
                nets.G.fast_channels_last = LAYOUTS[lay]
                key = impl if len(layouts) == 1 else f"{impl}, {lay}"
                sync(dev)
                t0 = time.perf_counter()
                fns[part]()
                sync(dev)
                dt = time.perf_counter() - t0
                if r:
                    best[(key, part)] = min(best.get((key, part), float("inf")), dt)
                    print(f"  {name} {part} deform={key}: {dt:.3f} s", flush=True)
    nets.G.set_deform_impl(None)
    nets.G.fast_channels_last = None
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=2, help="timed rounds (after one warm-up round)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    ap.add_argument("--impls", nargs="+", default=["torch", "torchvision"], help="deformable-conv implementations")
    ap.add_argument("--layouts", nargs="+", default=["default"], choices=list(LAYOUTS),
                    help="generator memory layouts to alternate (default: the shipped one)")
    ap.add_argument("--parts", nargs="+", default=["window", "G", "critics"], choices=["window", "G", "critics"])
    ap.add_argument("--precisions", nargs="+", default=None, help="off (fp32), bf16, fp16; default: fp32 on CPU, all on CUDA")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = args.device
    precisions = args.precisions or (["off"] + (["bf16", "fp16"] if dev.startswith("cuda") else []))
    print(f"device {dev}, S = {args.size}, threads {torch.get_num_threads()}, best of {args.repeats} after 1 warm-up, "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)
    results = {amp: measure(amp, args.size, args.repeats, dev, args.impls, args.parts, args.layouts)
               for amp in precisions}
    keys = [i if len(args.layouts) == 1 else f"{i}, {lay}" for lay in args.layouts for i in args.impls]
    ref_impl = next((k for k in keys if k.startswith("torchvision")), keys[0])
    print(f"\nload average at end {os.getloadavg()[0]:.1f}\n")
    print("| precision | deform | " + " | ".join(f"{p} s" for p in args.parts) + " | "
          + " | ".join(f"{p} x {ref_impl}" for p in args.parts) + " |")
    print("|---|---|" + "---|" * (2 * len(args.parts)))
    for amp, best in results.items():
        name = "fp32" if amp == "off" else amp
        for impl in keys:
            secs = " | ".join(f"{best[(impl, p)]:.3f}" for p in args.parts)
            ratios = " | ".join(f"{best[(ref_impl, p)] / best[(impl, p)]:.2f}" for p in args.parts)
            print(f"| {name} | {impl} | {secs} | {ratios} |")


if __name__ == "__main__":
    main()
