"""Benchmark: BDMM generator window time, ratios, per-op profile and peak memory.

    python benchmarks/bench_generator.py                      # 256x256, batch 1, CPU fp32
    python benchmarks/bench_generator.py --rounds 5 --markdown benchmarks/results/generator.md
    python benchmarks/bench_generator.py --device cuda --batch 8 # + fp16/bf16 autocast, compile

Paths (paper widths, random weights with trained-like small offsets, seeded inputs):
  reference          ``forward_reference`` (the authors' loop literally: one warp-encoder call
                     per image, kernels modulated in every layer call) with torchvision's
                     ``deform_conv2d`` -- the baseline of every ratio
  reference+ours     the same loop with our deformable conv
  fast+torchvision   ``forward`` (the fast path, default layout) with torchvision's op
  fast               ``forward`` as shipped (the default: our op; on the CPU the S/2 branch and
                     the decoder channels-last, the rest contiguous)
  fast+contiguous    ``forward`` with ``fast_channels_last = False`` (every map contiguous)
  fast+cl            ``forward`` with ``fast_channels_last = True`` (every map channels-last)
  (cuda) fast+fp16, fast+bf16 (autocast), fast+compile (torch.compile)

Timing: all paths live in one process and are timed in alternating rounds (each round runs
every path for ``--windows`` windows, state carried, in rotating order), so a load change on
a shared machine hits all of them; the table keeps the best and the median window per
path, and the ratio is reference time / path time. "rel L2" is the relative L2 distance of
the first window's frames from ``reference``. The windows of one path share the source
photo, as in a video, so each fast path prepares the style code and folded kernels once
(``BDMMGenerator.prepare``, in its untimed warm-up window) and passes them to every window,
as the animate pipeline does; the literal loop recomputes them. The
profile table (torch.profiler, one window) and the peak memory (one subprocess per path,
one warm-up + one window) are separate runs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from machine import machine_line  # noqa: E402

CPU_PATHS = ("reference", "reference+ours", "fast+torchvision", "fast", "fast+contiguous", "fast+cl")
GPU_PATHS = ("reference", "fast+torchvision", "fast", "fast+cl", "fast+fp16", "fast+bf16", "fast+compile")


def build(device: str, seed: int = 0):
    import torch

    from bdmm_cli.model import BDMMGenerator

    torch.manual_seed(seed)
    g = BDMMGenerator().eval().to(device)
    with torch.no_grad():  # trained-like: small non-zero offsets and masks
        for name, p in g.named_parameters():
            if name.endswith(("offset_conv.weight", "mask_conv.weight")):
                p.normal_(0.0, 0.01)
    return g


def make_windows(n: int, b: int, t: int, s: int, device: str, seed: int = 1):
    import torch

    from bdmm_cli.model import WindowInputs

    gen = torch.Generator().manual_seed(seed)
    ident = torch.stack(torch.meshgrid(torch.linspace(-1, 1, s), torch.linspace(-1, 1, s), indexing="xy"), -1)
    src = torch.rand(b, 3, s, s, generator=gen) * 2 - 1
    out = []
    for _ in range(n):
        fr = (ident + 0.02 * torch.randn(b, t + 2, s, s, 2, generator=gen)).clamp(-1, 1)
        hm = torch.rand(b, t, 25, s, s, generator=gen)
        out.append(WindowInputs(src.to(device), hm.to(device), fr[:, :t].to(device), fr[:, t].to(device),
                                fr[:, t + 1].to(device)))
    return out


def path_runner(g, path: str, device: str):
    """A callable (inputs, state) -> WindowOutput for one path (sets the generator's switches
    on every call, so paths sharing one generator do not leak settings)."""
    import torch

    deform = "torchvision" if path in ("reference", "fast+torchvision") else "torch"
    fmt = {"fast+cl": True, "fast+contiguous": False}.get(path)  # None: the default layout
    amp = {"fast+fp16": torch.float16, "fast+bf16": torch.bfloat16}.get(path)
    fn = g.forward_reference if path.startswith("reference") else g.forward
    if path == "fast+compile":
        fn = torch.compile(g.forward)

    prepared = []  # the photo's constants under this path's settings (windows share one photo)

    def run(inputs, state):
        g.set_deform_impl(deform)
        g.fast_channels_last = fmt
        with torch.autocast(device.split(":")[0], dtype=amp, enabled=amp is not None):
            if path.startswith("reference"):
                return fn(inputs, state)
            if not prepared:
                prepared.append(g.prepare(inputs.source))
            return fn(inputs, state, prepared[0])

    return run


def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_paths(args) -> dict:
    import torch

    g = build(args.device)
    wins = make_windows(1 + args.windows, args.batch, args.frames, args.size, args.device)
    runners = {p: path_runner(g, p, args.device) for p in args.paths}
    times: dict[str, list[float]] = {p: [] for p in args.paths}
    first: dict[str, torch.Tensor] = {}
    with torch.inference_mode():
        for p, run in runners.items():  # warm-up window, also the frames for rel L2
            first[p] = run(wins[0], None).frames.float().cpu()
        for r in range(args.rounds):
            order = list(args.paths[r % len(args.paths):]) + list(args.paths[: r % len(args.paths)])
            for p in order:
                state = None
                for w in wins[1:]:
                    sync(args.device)
                    t0 = time.perf_counter()
                    state = runners[p](w, state).state
                    sync(args.device)
                    times[p].append(time.perf_counter() - t0)
            print(f"  round {r + 1}/{args.rounds}: " + ", ".join(f"{p} {times[p][-1]:.2f}s" for p in args.paths),
                  flush=True)
    ref = first["reference"]
    out = {}
    for p in args.paths:
        out[p] = {
            "best": min(times[p]),
            "median": statistics.median(times[p]),
            "rel_l2": float((first[p] - ref).norm() / ref.norm()),
        }
    return out


def profile_paths(args, paths: list[str], rows: int) -> dict[str, list[tuple[str, float, int]]]:
    import torch
    from torch.profiler import ProfilerActivity, profile

    g = build(args.device)
    w = make_windows(2, args.batch, args.frames, args.size, args.device)
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if args.device.startswith("cuda") else [])
    result = {}
    with torch.inference_mode():
        for p in paths:
            run = path_runner(g, p, args.device)
            run(w[0], None)
            sync(args.device)
            with profile(activities=acts) as prof:
                run(w[1], None)
                sync(args.device)
            key = "self_device_time_total" if args.device.startswith("cuda") else "self_cpu_time_total"
            avg = [e for e in prof.key_averages() if getattr(e, key) > 0]
            total = sum(getattr(e, key) for e in avg)
            avg.sort(key=lambda e: -getattr(e, key))
            result[p] = [(e.key, getattr(e, key) / total, e.count) for e in avg[:rows]]
            result[p].append(("(total, s)", total / 1e6, 0))
    return result


def memory_worker(args) -> None:
    import torch

    g = build(args.device)
    wins = make_windows(2, args.batch, args.frames, args.size, args.device)
    run = path_runner(g, args.path, args.device)
    loaded = _rss_mb("VmRSS")
    with torch.inference_mode():
        state = run(wins[0], None).state
        if args.device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        run(wins[1], state)
    res = {"path": args.path, "peak_rss_mb": _rss_mb("VmHWM"), "loaded_mb": loaded}
    if args.device.startswith("cuda"):
        res["peak_cuda_mb"] = torch.cuda.max_memory_allocated() / 2**20
    print("RESULT " + json.dumps(res))


def _rss_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def memory_paths(args) -> dict[str, dict]:
    out = {}
    for p in args.paths:
        cmd = [sys.executable, __file__, "--memory-worker", "--path", p, "--device", args.device, "--size",
               str(args.size), "--batch", str(args.batch), "--frames", str(args.frames)]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
        out[p] = json.loads(line[-1][7:]) if line else {"error": (proc.stderr.strip().splitlines() or ["?"])[-1]}
        print(f"  memory {p}: {out[p]}", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--frames", type=int, default=6, help="window length T")
    ap.add_argument("--windows", type=int, default=1, help="timed windows per path and round (state carried)")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    ap.add_argument("--paths", nargs="+", default=None)
    ap.add_argument("--no-profile", action="store_true")
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--profile-rows", type=int, default=12)
    ap.add_argument("--markdown", type=Path, default=None, help="also write the tables here")
    ap.add_argument("--memory-worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--path", default="fast", help=argparse.SUPPRESS)
    args = ap.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device is None:
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.memory_worker:
        memory_worker(args)
        return
    paths = list(args.paths or (GPU_PATHS if args.device.startswith("cuda") else CPU_PATHS))
    if "reference" not in paths:
        paths.insert(0, "reference")
    args.paths = paths
    head = machine_line(args.device)
    print(head, flush=True)
    timing = time_paths(args)
    mem = {} if args.no_memory else memory_paths(args)
    prof = {} if args.no_profile else profile_paths(args, ["reference", "fast"], args.profile_rows)
    lines = [
        f"machine: {head} (at start); load average at end {os.getloadavg()[0]:.1f}",
        f"S={args.size}, batch {args.batch}, T={args.frames}, {args.rounds} alternating rounds x {args.windows} window(s)",
        "",
        "| path | best s/window | median s/window | frames/s (best) | x reference (best) | x reference (median) "
        "| peak RSS MB | peak CUDA MB | rel L2 vs reference |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    ref = timing["reference"]
    for p in paths:
        r, m = timing[p], mem.get(p, {})
        lines.append(
            f"| {p} | {r['best']:.2f} | {r['median']:.2f} | {args.batch * args.frames / r['best']:.2f} | "
            f"{ref['best'] / r['best']:.2f} | {ref['median'] / r['median']:.2f} | "
            f"{m.get('peak_rss_mb', float('nan')):.0f} | {m.get('peak_cuda_mb', float('nan')):.0f} | {r['rel_l2']:.1e} |"
        )
    for p, rows in prof.items():
        total = rows[-1][1]
        lines += ["", f"profile of one window, path `{p}` ({total:.2f} s of op self time):", "",
                  "| op | share | calls |", "|---|---|---|"]
        lines += [f"| `{k}` | {share * 100:.1f}% | {n} |" for k, share, n in rows[:-1]]
    table = "\n".join(lines)
    print(table)
    if args.markdown:
        args.markdown.write_text(table + "\n")


if __name__ == "__main__":
    main()
