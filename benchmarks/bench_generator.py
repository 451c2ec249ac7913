"""Benchmark: BDMM generator throughput (frames/s) and peak memory per window.

    python benchmarks/bench_generator.py                      # 256x256, batch 1 and 8, CPU fp32
    python benchmarks/bench_generator.py --batches 1 --frames 6 --windows 2
    python benchmarks/bench_generator.py --device cuda         # + fp16/bf16 autocast, channels_last, torch.compile

Every (batch, path) runs in its own subprocess (so the peak memory of one does not hide
another's), with the default (paper) widths and random weights, on the same seeded inputs.
Paths:
  reference        ``BDMMGenerator.forward_reference``: the authors' loop literally (one
                   warp_encoder call per image, modulated kernels recomputed in every call)
  fast             ``BDMMGenerator.forward`` (the default): kernels once per window, all warped
                   images of a window encoded in one batched call
  fast+cl          ``forward`` with the model and inputs in channels_last memory format
  (cuda) fast+fp16 / fast+bf16 (autocast), fast+compile (torch.compile of the model; on the
                   CPU only when named in --paths)
Ratios are frames/s relative to ``reference`` in the same run, and the relative L2 difference
of the first window's frames against ``reference`` shows that the path keeps parity
(fp16/bf16 are expected not to).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CPU_PATHS = ("reference", "fast", "fast+cl")
GPU_PATHS = ("reference", "fast", "fast+cl", "fast+fp16", "fast+bf16", "fast+compile")


def _rss_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def worker(args: argparse.Namespace) -> None:
    import torch

    sys.path.insert(0, str(ROOT))
    from bdmm_cli.model import BDMMGenerator, WindowInputs

    torch.manual_seed(0)
    device = torch.device(args.device)
    g = BDMMGenerator().eval().to(device)
    s, b, t = args.size, args.batch, args.frames
    gen = torch.Generator().manual_seed(1)
    ident = torch.stack(torch.meshgrid(torch.linspace(-1, 1, s), torch.linspace(-1, 1, s), indexing="xy"), -1)

    def flows(n: int) -> torch.Tensor:
        return (ident + 0.02 * torch.randn(b, n, s, s, 2, generator=gen)).clamp(-1, 1)

    windows = []
    for _ in range(args.warmup + args.windows):
        fr = flows(t + 2)
        windows.append(
            WindowInputs(
                source=(torch.rand(b, 3, s, s, generator=gen) * 2 - 1),
                heatmaps=torch.rand(b, t, 25, s, s, generator=gen),
                flows=fr[:, :t],
                flow_pre=fr[:, t],
                flow_post=fr[:, t + 1],
            )
        )
    path = args.path
    run = g.forward_reference if path == "reference" else g.forward
    autocast = None
    if path.endswith("+cl"):
        for p in g.parameters():  # the 4-D conv kernels (modulated kernels are 5-D)
            if p.ndim == 4:
                p.data = p.data.contiguous(memory_format=torch.channels_last)
        run = g.forward
    if path == "fast+fp16":
        autocast = torch.float16
    if path == "fast+bf16":
        autocast = torch.bfloat16
    if path == "fast+compile":
        run = torch.compile(g)

    def to_dev(w: WindowInputs) -> WindowInputs:
        src, hm = w.source.to(device), w.heatmaps.to(device)
        if path.endswith("+cl"):
            src = src.contiguous(memory_format=torch.channels_last)
        return WindowInputs(src, hm, w.flows.to(device), w.flow_pre.to(device), w.flow_post.to(device))

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    windows = [to_dev(w) for w in windows]
    rss_loaded = _rss_mb("VmRSS")  # model + inputs, before any window
    first_frames = None
    with torch.inference_mode():
        state = None
        for w in windows[: args.warmup]:
            with torch.autocast(device.type, dtype=autocast, enabled=autocast is not None):
                state = run(w, state).state
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        rss_before = _rss_mb("VmRSS")
        sync()
        t0 = time.perf_counter()
        for w in windows[args.warmup :]:
            with torch.autocast(device.type, dtype=autocast, enabled=autocast is not None):
                out = run(w, state)
            state = out.state
            if first_frames is None:
                first_frames = out.frames.float().cpu().clone()
        sync()
        elapsed = time.perf_counter() - t0
    result = {
        "path": path,
        "batch": b,
        "size": s,
        "frames": t,
        "windows": args.windows,
        "seconds": elapsed,
        "fps": b * t * args.windows / elapsed,
        "peak_rss_mb": _rss_mb("VmHWM"),
        "rss_before_mb": rss_before,
        "rss_loaded_mb": rss_loaded,
        "threads": torch.get_num_threads(),
    }
    if device.type == "cuda":
        result["peak_cuda_mb"] = torch.cuda.max_memory_allocated() / 2**20
    if args.save_frames and first_frames is not None:
        torch.save(first_frames, args.save_frames)
    print("RESULT " + json.dumps(result))


def run_worker(args: argparse.Namespace, batch: int, path: str, frames_file: Path) -> dict:
    cmd = [
        sys.executable, __file__, "--worker", "--device", args.device, "--size", str(args.size),
        "--batch", str(batch), "--frames", str(args.frames), "--windows", str(args.windows),
        "--warmup", str(args.warmup if batch == 1 else args.warmup_large), "--path", path,
        "--save-frames", str(frames_file),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
    return {"path": path, "batch": batch, "error": tail[0]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if _cuda() else "cpu")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--frames", type=int, default=6, help="window length T")
    ap.add_argument("--windows", type=int, default=1, help="timed windows per run (state carried)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed windows first (batch 1)")
    ap.add_argument("--warmup-large", type=int, default=0, help="untimed windows first (batch > 1)")
    ap.add_argument("--paths", nargs="+", default=None, help="subset of the paths to run")
    ap.add_argument("--rounds", type=int, default=1, help="alternate the paths this many times (best kept)")
    ap.add_argument("--markdown", type=Path, default=None, help="also write the table here")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--batch", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--path", default="fast", help=argparse.SUPPRESS)
    ap.add_argument("--save-frames", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args)
        return
    paths = args.paths or (GPU_PATHS if args.device.startswith("cuda") else CPU_PATHS)
    if "reference" not in paths:
        paths = ("reference", *paths)
    import torch

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for batch in args.batches:
            best: dict[str, dict] = {}
            for r in range(args.rounds):
                for path in paths:
                    res = run_worker(args, batch, path, Path(tmp) / f"{batch}_{path}.pt")
                    print(json.dumps(res), flush=True)
                    if "error" in res or path not in best or res["fps"] > best[path].get("fps", 0):
                        best[path] = res
            ref_frames = torch.load(Path(tmp) / f"{batch}_reference.pt") if (Path(tmp) / f"{batch}_reference.pt").exists() else None
            ref_fps = best.get("reference", {}).get("fps")
            for path in paths:
                res = best[path]
                ff = Path(tmp) / f"{batch}_{path}.pt"
                if ref_frames is not None and ff.exists() and "error" not in res:
                    fr = torch.load(ff)
                    res["rel_l2_vs_reference"] = float((fr - ref_frames).norm() / ref_frames.norm())
                if ref_fps and "fps" in res:
                    res["speedup"] = res["fps"] / ref_fps
                rows.append(res)
    lines = [
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, device {args.device}; "
        f"torch {torch.__version__}; S={args.size}, T={args.frames}, {args.windows} timed window(s)",
        "",
        "| batch | path | frames/s | s/window | x reference | peak RSS MB (loaded) | peak CUDA MB | rel L2 vs reference |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['batch']} | {r['path']} | failed: {r['error']} | | | | | |")
            continue
        lines.append(
            f"| {r['batch']} | {r['path']} | {r['fps']:.3f} | {r['seconds'] / r['windows']:.1f} | "
            f"{r.get('speedup', float('nan')):.2f} | {r['peak_rss_mb']:.0f} ({r['rss_loaded_mb']:.0f}) | "
            f"{r.get('peak_cuda_mb', float('nan')):.0f} | {r.get('rel_l2_vs_reference', float('nan')):.1e} |"
        )
    table = "\n".join(lines)
    print(table)
    if args.markdown:
        args.markdown.write_text(table + "\n")


def _cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except Exception:  # pragma: no cover
        return False


if __name__ == "__main__":
    main()
