"""Benchmark of `bdmm batch`: the same 8 jobs (2 photos x 4 short videos) three ways, in one run:

1. 8 `bdmm animate` processes, one after the other (the shell loop people write);
2. one `bdmm batch` process;
3. `torchrun --nproc-per-node N ... bdmm batch` (N = 2 by default; gloo on the CPU).

    python benchmarks/bench_batch.py                       # CPU, ~5 minutes on 2 busy cores
    python benchmarks/bench_batch.py --device cuda --nproc 2 --frames 60 --full

Stand-ins as in the tests (no download): the real pose front-end (MediaPipe keypoints + an
HMR with random weights), scikit-image's astronaut photo and videos made from it, the
synthetic SMPL-format body, and tiny generator weights (``--full``: the paper's width, random
weights). Each mode gets a fresh cache folder (no mode reuses another's pose cache or resume
data). Prints a markdown table: wall seconds, jobs per hour, speed-up vs the animate loop;
every output of modes 2 and 3 is checked equal to mode 1's.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "benchmarks"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=12, help="frames per driving video")
    ap.add_argument("--nproc", type=int, default=2, help="processes of the torchrun row")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--full", action="store_true", help="full-width generator (random weights) instead of the tiny one")
    ap.add_argument("--markdown", type=Path, help="also write the table here")
    args = ap.parse_args()

    import batch_helpers as B
    from machine import machine_line

    root = Path(tempfile.mkdtemp(prefix="bench_batch_"))
    models = B.make_models(root)
    if args.full:
        import torch

        from bdmm_cli.model import BDMMGenerator, GeneratorConfig
        from bdmm_cli.model.checkpoint import save_generator

        torch.manual_seed(0)
        models["weights"] = root / "full_generator"
        save_generator(BDMMGenerator(GeneratorConfig()), models["weights"])
    photos = [B.make_photo(root / "ann.png"), B.make_photo(root / "bob.png", flip=True)]
    videos = [B.make_video(root / f"dance{i}.mp4", args.frames, step=2 + i) for i in range(4)]
    jobs = B.write_csv(root / "jobs.csv", [{"photo": str(p), "video": str(v)} for p in photos for v in videos])
    opts = B.options(models)
    opts[opts.index("--device") + 1] = args.device
    if args.full:  # the paper's resolution
        for flag in ("--model-size", "--size"):
            opts[opts.index(flag) + 1] = "256"

    def env(name: str) -> dict:
        return B.child_env(root / f"cache_{name}")

    rows = []

    def timed(name: str, commands: list[list[str]]) -> float:
        t0 = time.perf_counter()
        for cmd in commands:
            proc = subprocess.run(cmd, env=env(name.split()[0]), capture_output=True, text=True)
            if proc.returncode != 0:
                sys.exit(f"{name} failed:\n{proc.stderr[-3000:]}")
        seconds = time.perf_counter() - t0
        print(f"{name}: {seconds:.1f} s", file=sys.stderr)
        return seconds

    (root / "loop").mkdir()
    loop = [B.bdmm("animate", str(p), str(v), "-o", str(root / "loop" / f"{p.stem}__{v.stem}.mp4"), *opts, "--quiet")
            for p in photos for v in videos]
    rows.append(("8 x `bdmm animate` (one process each)", timed("loop", loop)))
    rows.append(("1 x `bdmm batch`", timed("batch", [B.bdmm("batch", str(jobs), "-o", str(root / "batch"), *opts,
                                                                "--no-progress")])))
    rows.append((f"`torchrun --nproc-per-node {args.nproc}` `bdmm batch`",
                 timed("torchrun", [B.torchrun(args.nproc, "batch", str(jobs), "-o", str(root / "torchrun"), *opts,
                                               "--no-progress")])))
    for mode in ("batch", "torchrun"):
        for out in sorted((root / "loop").glob("*.mp4")):
            if not np.array_equal(B.decode(out), B.decode(root / mode / out.name)):
                sys.exit(f"{mode}: {out.name} differs from bdmm animate's")

    base = rows[0][1]
    lines = [f"Machine: {machine_line(args.device)}",
             f"Jobs: 2 photos x 4 videos of {args.frames} frames (192x192), model size "
             f"{256 if args.full else 128}, {'full-width' if args.full else 'tiny'} generator (random weights), "
             f"real pose front-end (MediaPipe + HMR, random weights), device {args.device}. "
             "Outputs of every mode equal (decoded frames).", "",
             "| mode | wall s | jobs/hour | speed-up vs the animate loop |", "|---|---:|---:|---:|"]
    for name, seconds in rows:
        lines.append(f"| {name} | {seconds:.1f} | {8 * 3600 / seconds:.0f} | x{base / seconds:.2f} |")
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n")


if __name__ == "__main__":
    main()
