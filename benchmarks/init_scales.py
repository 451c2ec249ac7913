"""Activation and gradient scales at initialisation, block by block, per `TrainConfig.init`.

For the generator, the spatial discriminator D and the temporal discriminator D_V at the
given widths (default: the paper's), on one window of a synthetic clip (S = 128 by default,
real mesh flows and heatmaps): one forward and one backward of the training losses
(G: 5 L1 + 0.5 perceptual + 500 style + 0.1 contextual with a random VGG19, + 2 LSGAN(D) +
2 LSGAN(D_V); D and D_V: their LSGAN loss on the real window and the detached fake).

Per block (forward hooks on the encoder/decoder blocks): mean |output| (averaged over the
calls of the window), and the root mean square of the gradient of the block's own
parameters; `< eps` marks gradients below Adam's epsilon (1e-8), where Adam's step shrinks
to lr x grad / eps instead of ~lr.

    python benchmarks/init_scales.py                         # paper widths, 4 inits, markdown
    python benchmarks/init_scales.py --widths tiny --inits none orthogonal
    python benchmarks/init_scales.py --widths paper --inits orthogonal \
        --checkpoint runs/learn/paper_orthogonal/checkpoints/latest.pt   # + the same after training

With --checkpoint, a column pair "<init>@<step>" gives the scales of that run's G, D and D_V
(trained from one of --inits) on the same window: which blocks have come alive.
"""

from __future__ import annotations

import argparse
import tempfile
from collections import defaultdict
from pathlib import Path

import torch

from bench_learning import WIDTHS, learning_config, one_clip
from machine import machine_line

#: Blocks reported (class names); every other module is folded into its enclosing block.
BLOCKS = {"EncoderBlock", "ResBlock", "StyledConv", "DMMBlock", "ToRGB", "ResBlockEncoder", "SpectralNormConv2d"}


def _first_tensor(out):
    while isinstance(out, (list, tuple)):
        out = out[0]
    return out if isinstance(out, torch.Tensor) else None


def hook_blocks(net: torch.nn.Module, acts: dict) -> list:
    handles = []
    for name, m in net.named_modules():
        if type(m).__name__ in BLOCKS:
            def hook(mod, args, out, name=name):
                t = _first_tensor(out)
                if t is not None:
                    acts[name].append(float(t.detach().abs().mean()))
            handles.append(m.register_forward_hook(hook))
    return handles


def grad_rms(net: torch.nn.Module, prefix: str) -> float:
    grads = [p.grad.detach().flatten() for n, p in net.named_parameters()
             if (n == prefix or n.startswith(prefix + ".")) and p.grad is not None]
    if not grads:
        return float("nan")
    g = torch.cat(grads)
    return float(g.pow(2).mean().sqrt())


def measure(cfg, state: dict | None = None) -> dict:
    """{net: [(block, mean |out|, grad rms)]} plus the output's mean |x|, for one init (or the
    networks of a training checkpoint, `state`)."""
    from bdmm_cli.body import load_body_model
    from bdmm_cli.dataset.layout import OfficialDataset
    from bdmm_cli.train.data import ClipDataset, ClipSampler, clip_windows, window_inputs
    from bdmm_cli.train.loop import build_networks
    from bdmm_cli.train.losses import LossWeights, ReconstructionLoss, load_vgg19, lsgan_d_loss, lsgan_g_loss

    ds = ClipDataset(OfficialDataset(cfg.data, "train").videos, cfg.image_size, cfg.clip_len, cfg.source_first_n)
    batch = {k: v[None] for k, v in ds[ClipSampler(1, 1, cfg.seed).keys(0)[0]].items()}
    inputs, real = window_inputs(batch, load_body_model(Path(cfg.body_model)), clip_windows(batch, cfg.window)[0])
    nets = build_networks(cfg)
    if state is not None:
        for k in ("G", "D", "D_V"):
            getattr(nets, k).load_state_dict(state[k])
    vgg = load_vgg19("random", cfg.vgg_width_divisor)
    recon = ReconstructionLoss(vgg, LossWeights(cfg.w_l1, cfg.w_perceptual, cfg.w_style, cfg.w_contextual, cfg.cx_bandwidth))
    acts = {k: defaultdict(list) for k in ("G", "D", "D_V")}
    handles = [h for k in acts for h in hook_blocks(getattr(nets, k), acts[k])]
    fake = nets.G(inputs).frames
    loss_g = sum(recon(fake, real).values()) + cfg.w_adv * lsgan_g_loss(nets.D(fake[:, 0])) \
        + cfg.w_adv_video * lsgan_g_loss(nets.D_V(fake))
    loss_g.backward()
    for k in ("D", "D_V"):  # the critics' own losses (their grads from loss_g are discarded)
        getattr(nets, k).zero_grad()
    loss_d = lsgan_d_loss(nets.D(real[:, 0]), nets.D(fake[:, 0].detach())) \
        + lsgan_d_loss(nets.D_V(real), nets.D_V(fake.detach()))
    loss_d.backward()
    for h in handles:
        h.remove()
    table = {k: [(name, sum(v) / len(v), grad_rms(getattr(nets, k), name)) for name, v in acts[k].items()]
             for k in acts}
    return {"blocks": table, "out_abs": float(fake.detach().abs().mean()),
            "d_out": float(nets.D(real[:, 0]).detach().abs().mean()),
            "dv_out": float(nets.D_V(real).detach().abs().mean())}


def fmt(x: float) -> str:
    if x != x:
        return "-"
    return f"{x:.1e}" + (" <eps" if 0 < x < 1e-8 or x == 0 else "")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--widths", default="paper", choices=sorted(WIDTHS))
    ap.add_argument("--inits", nargs="+", default=["orthogonal", "orthogonal:1", "none", "kaiming"])
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--checkpoint", type=Path, nargs="*", default=[],
                    help="training checkpoints (latest.pt of bench_learning.py --work runs) to measure as well")
    args = ap.parse_args()
    print(machine_line("cpu"))
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        root, body = one_clip(Path(tmp), args.size)
        for init in args.inits:
            spec = init.split(":")
            extra = {"init_gain": float(spec[1])} if len(spec) > 1 else {}
            cfg = learning_config(root, body, args.widths, spec[0], 1, args.size, **extra)
            torch.manual_seed(0)
            results[init] = measure(cfg)
            print(f"{init}: mean |G out| {results[init]['out_abs']:.2e}", flush=True)
        for path in args.checkpoint:
            from bdmm_cli.train.checkpoint import load_checkpoint

            state = load_checkpoint(path, map_location="cpu")
            init = f"{state['config']['init']}@{state['step']}"
            cfg = learning_config(root, body, args.widths, state["config"]["init"], 1, args.size,
                                  init_gain=state["config"]["init_gain"])
            torch.manual_seed(0)
            results[init] = measure(cfg, state)
            print(f"{init}: mean |G out| {results[init]['out_abs']:.2e}", flush=True)
    names = list(results)
    print(f"\n{args.widths} widths, S = {args.size}; columns: mean |output| / gradient RMS of the block's parameters\n")
    print("| net | block | " + " | ".join(f"{n} act | {n} grad" for n in names) + " |")
    print("|---|---|" + "---|---|" * len(names))
    first = results[names[0]]["blocks"]
    for net in ("G", "D", "D_V"):
        for i, (block, _, _) in enumerate(first[net]):
            cells = []
            for n in names:
                _, a, g = results[n]["blocks"][net][i]
                cells += [f"{a:.1e}", fmt(g)]
            print(f"| {net} | {block} | " + " | ".join(cells) + " |")
    print("\n| | " + " | ".join(names) + " |\n|---|" + "---|" * len(names))
    for key, label in (("out_abs", "mean abs G output"), ("d_out", "mean abs D(real)"), ("dv_out", "mean abs D_V(real)")):
        print(f"| {label} | " + " | ".join(f"{results[n][key]:.1e}" for n in names) + " |")


if __name__ == "__main__":
    main()
