"""Benchmark of `bdmm animate`: end-to-end frames/s, time per stage, and peak memory vs video length.

    python benchmarks/bench_animate.py                 # everything (a few minutes on 2 CPU cores)
    python benchmarks/bench_animate.py --quick         # smaller runs
    python benchmarks/bench_animate.py --device cuda   # on a GPU

Runs with the stand-ins the tests use (random generator weights saved and loaded through
hub.save_generator / load_generator, the synthetic SMPL-format body, a pose folder of
generated SMPL parameters, a testsrc driving video with audio), so it needs no download.
The pose stage here is *reading a pose folder* (the pose front-end has its own benchmark,
benchmarks/bench_pose.py); "decode" is a separate pass of the video decoder alone.

Each measurement runs in a fresh subprocess so the peak RSS (ru_maxrss) belongs to that run
only. Table 1: peak memory for a 60- and a 600-frame video (constant memory = ratio ~1).
Table 2: frames/s and seconds per frame by stage at 256x256, tiny and full-width generator;
the full-width run twice, with our deformable convolution (the default) and with
torchvision's (``BDMM_DEFORM_IMPL=torchvision``), alternating ``--rounds`` times (best kept).
``--speed-only`` skips table 1.

``--e2e``: instead, the README's main command on the sample assets (``assets/person.jpg``,
``assets/walk.mp4``, 30 frames) through ``bdmm animate --json`` with the real pose front-end
(MediaPipe keypoints, SPIN's HMR architecture with random weights) and the paper-size
generator (random weights), and the run's own per-stage timings: how the end-to-end frames/s
relates to the generator-only number (``generate`` alone).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))


def _one_run(args: argparse.Namespace) -> dict:
    """Child process: build the stand-ins, run animate once, report numbers as JSON."""
    import resource
    import tracemalloc

    import torch

    import animate_helpers as H
    from bdmm_cli.pipeline import AnimateConfig, AnimatePipeline
    from bdmm_cli.video import iter_frames
    from media import make_test_video

    torch.set_num_threads(args.threads)
    root = Path(args.workdir)
    n = args.frames
    if args.width == "full":
        from bdmm_cli.model.checkpoint import save_generator
        from bdmm_cli.model import BDMMGenerator, GeneratorConfig

        torch.manual_seed(0)
        weights = root / "full_generator"
        if not weights.exists():
            save_generator(BDMMGenerator(GeneratorConfig()), weights)
    else:
        weights = root / "tiny_generator_0"
        if not weights.exists():
            H.tiny_generator_dir(root)
    smpl = root / "synthetic_body.npz"
    if not smpl.exists():
        H.synthetic_body(root)
    poses = root / f"poses_{n}"
    if not poses.exists():
        H.make_pose_dir(root, n, name=f"poses_{n}")
    photo, source_pose = root / "person.png", root / "person.json"
    if not photo.exists():
        H.make_source(root)
    video = root / f"drive_{n}.mp4"
    if not video.exists():
        make_test_video(video, frames=n, fps=25, size=(256, 256), audio=True)

    t0 = time.perf_counter()
    decoded = sum(1 for _ in iter_frames(video))
    decode_s = time.perf_counter() - t0

    cfg = AnimateConfig(weights=str(weights), smpl=smpl, poses=poses, source_pose=source_pose,
                        model_size=args.model_size, size=args.model_size, device=args.device, cache=False)
    pipe = AnimatePipeline.from_config(cfg)
    out = root / f"out_{n}_{args.width}_{args.model_size}.mp4"
    out.unlink(missing_ok=True)
    if args.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    tracemalloc.start()
    t0 = time.perf_counter()
    result = pipe(photo, video, out, cfg)
    total = time.perf_counter() - t0
    _, py_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "frames": result.num_frames,
        "decoded": decoded,
        "total_s": total,
        "fps": result.num_frames / total,
        "stages": dict(result.stats.seconds),
        "decode_s": decode_s,
        "rss_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_before_mb": base_rss,
        "py_peak_mb": py_peak / 2**20,
        "gpu_peak_mb": torch.cuda.max_memory_allocated() / 2**20 if args.device.startswith("cuda") else None,
    }


THREADS = 1


def _spawn(workdir: Path, frames: int, width: str, model_size: int, device: str, deform: str = "torch") -> dict:
    cmd = [sys.executable, __file__, "--child", "--workdir", str(workdir), "--frames", str(frames),
           "--width", width, "--model-size", str(model_size), "--device", device, "--threads", str(THREADS)]
    env = dict(os.environ, BDMM_CACHE_DIR=str(workdir / "cache"), BDMM_HOME=str(workdir / "home"),
               BDMM_DEFORM_IMPL=deform)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"benchmark child failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--width", choices=["tiny", "full"], default="tiny")
    ap.add_argument("--model-size", type=int, default=128)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--quick", action="store_true", help="smaller runs (memory: 30 vs 300 frames)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: steady numbers on a shared machine)")
    ap.add_argument("--speed-only", action="store_true", help="skip the memory-vs-length table")
    ap.add_argument("--rounds", type=int, default=1, help="alternating rounds of the full-width runs (best kept)")
    ap.add_argument("--e2e", action="store_true", help="the main command on assets/ with its own stage timings")
    args = ap.parse_args()
    if args.e2e:
        _e2e(args)
        return
    global THREADS
    THREADS = args.threads
    if args.child:
        print(json.dumps(_one_run(args)))
        return

    short, long = (30, 300) if args.quick else (60, 600)
    with tempfile.TemporaryDirectory(prefix="bench_animate_") as tmp:
        work = Path(args.workdir or tmp)
        work.mkdir(parents=True, exist_ok=True)
        print(f"device: {args.device}; torch threads: {args.threads}; CPU cores: {os.cpu_count()}; "
              f"load average {os.getloadavg()[0]:.1f}")
        if not args.speed_only:
            _memory_table(work, short, long, args)
        _speed_table(work, args)
        print(f"\nload average at end {os.getloadavg()[0]:.1f}")


def _memory_table(work: Path, short: int, long: int, args: argparse.Namespace) -> None:
    print("\n## Peak memory vs video length (tiny generator, model size 128)\n")
    mem = {}
    for n in (short, long):
        mem[n] = _spawn(work, n, "tiny", 128, args.device)
        print(f"  ({n} frames: {mem[n]['total_s']:.0f} s)", flush=True)
    print("| frames | wall s | frames/s | peak RSS MiB | Python heap peak MiB |")
    print("|---:|---:|---:|---:|---:|")
    for n, r in mem.items():
        print(f"| {r['frames']} | {r['total_s']:.1f} | {r['fps']:.2f} | {r['rss_peak_mb']:.0f} | {r['py_peak_mb']:.1f} |")
    print(f"\nratio {long}/{short} frames: peak RSS x{mem[long]['rss_peak_mb'] / mem[short]['rss_peak_mb']:.3f}, "
          f"Python heap peak x{mem[long]['py_peak_mb'] / max(mem[short]['py_peak_mb'], 1e-9):.3f} "
          f"(video length x{long / short:.0f})")



def _speed_table(work: Path, args: argparse.Namespace) -> None:
    print("\n## Speed at 256x256 by stage (seconds per output frame)\n")
    n_full = 12 if not args.quick else 6
    best: dict[tuple[str, str], dict] = {}
    best[("tiny", "torch")] = _spawn(work, 30 if not args.quick else 12, "tiny", 256, args.device)
    for r in range(args.rounds):
        for deform in ("torchvision", "torch") if r % 2 == 0 else ("torch", "torchvision"):
            res = _spawn(work, n_full, "full", 256, args.device, deform)
            print(f"  (full, deform={deform}: {res['fps']:.3f} frames/s)", flush=True)
            if ("full", deform) not in best or res["fps"] > best[("full", deform)]["fps"]:
                best[("full", deform)] = res
    ref_fps = best[("full", "torchvision")]["fps"]
    print("Stages as `bdmm animate --json` reports them (``AnimateStats.seconds``); here \"read poses\" is the "
          "run's `pose` stage (a pose folder is read while the video is decoded) less a separate decode pass; "
          "`load` (the models) is outside frames/s, which counts the call alone.\n")
    print("| generator | deform conv | frames | frames/s | x torchvision | load s | decode | read poses | flows | generate "
          "| encode | generate share | peak RSS MiB |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for (width, deform), r in best.items():
        st = r["stages"]
        f = r["frames"]
        pose_only = max(st.get("pose", 0.0) - r["decode_s"] * f / max(r["decoded"], 1), 0.0)
        ratio = f"{r['fps'] / ref_fps:.2f}" if width == "full" else ""
        share = st.get("generate", 0) / max(r["total_s"], 1e-9)
        print(f"| {width} | {deform} | {f} | {r['fps']:.3f} | {ratio} | {st.get('load', 0):.1f} | "
              f"{r['decode_s'] / r['decoded']:.4f} | {pose_only / f:.4f} | {st.get('flows', 0) / f:.4f} | "
              f"{st.get('generate', 0) / f:.4f} | {st.get('encode', 0) / f:.4f} | {share:.0%} | {r['rss_peak_mb']:.0f} |")


def _e2e(args: argparse.Namespace) -> None:
    """`bdmm animate assets/person.jpg assets/walk.mp4 --json` with the paper-size generator."""
    import torch

    import animate_helpers as H

    from bdmm_cli.model import BDMMGenerator, GeneratorConfig
    from bdmm_cli.model.checkpoint import save_generator

    with tempfile.TemporaryDirectory(prefix="bench_e2e_") as tmp:
        root = Path(tmp)
        torch.manual_seed(0)
        save_generator(BDMMGenerator(GeneratorConfig()), root / "full_generator")
        spin = H.random_spin(root / "spin.pth")
        smpl = H.synthetic_body(root)
        cmd = [sys.executable, "-m", "bdmm_cli", "animate", str(REPO / "assets" / "person.jpg"),
               str(REPO / "assets" / "walk.mp4"), "-o", str(root / "out.mp4"), "--side-by-side",
               "--weights", str(root / "full_generator"), "--smpl", str(smpl), "--pose-weights", str(spin),
               "--keypoints", "mediapipe", "--device", args.device, "--no-cache", "--quiet", "--json"]
        env = dict(os.environ, BDMM_CACHE_DIR=str(root / "cache"), BDMM_HOME=str(root / "home"),
                   OMP_NUM_THREADS=str(args.threads))
        load = os.getloadavg()[0]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            raise SystemExit(f"bdmm animate failed:\n{proc.stderr[-3000:]}")
        summary = json.loads(proc.stdout)
    t, f, total = summary["timings"], summary["frames"], summary["seconds"]
    print(f"device: {args.device}; torch threads: {args.threads}; CPU cores: {os.cpu_count()}; "
          f"load average {load:.1f} -> {os.getloadavg()[0]:.1f}\n")
    print(f"`bdmm animate assets/person.jpg assets/walk.mp4 --side-by-side --json`: {f} frames, "
          f"paper-size generator at 256, MediaPipe keypoints, SPIN (random weights)\n")
    print("| stage | seconds | s/frame | share |")
    print("|---|---:|---:|---:|")
    for k, v in t.items():
        print(f"| {k} | {v:.2f} | {v / f:.3f} | {v / total:.0%} |")
    print(f"| **total** | {total:.2f} | {total / f:.3f} | 100% |\n")
    run = total - t["load"]
    print(f"end to end: {f / total:.2f} frames/s with loading, {f / run:.2f} without; "
          f"the generator alone: {f / max(t['generate'], 1e-9):.2f} frames/s "
          f"(end to end without loading = {run / max(t['generate'], 1e-9):.2f}x the generator's time)")


if __name__ == "__main__":
    main()
