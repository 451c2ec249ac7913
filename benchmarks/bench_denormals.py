"""What subnormal floats cost a CPU training run from the authors' initialisation.

From `init=orthogonal` (the authors') the generator's signal is ~1e-27 and its gradients far
smaller, so many products are subnormal (below 1.2e-38), which x86 CPUs handle in microcode.
`bdmm train` flushes them to zero on the CPU, on every worker thread
(`bdmm_cli.device.flushed_denormals`, entered by `bdmm_cli.train.loop.train`).
This script trains the paper's widths on the learning benchmark's synthetic clip
(`bench_learning.py`, S = 128) for a few iterations, in one run:

- `orthogonal, kept`: the authors' init with subnormals kept (the baseline: the loop's
  flushing replaced by nothing, as before it existed);
- `orthogonal, flushed`: the same with flushing (what `bdmm train` does);
- `none, flushed`: the default init, for scale.

It prints seconds per iteration, the ratio to the baseline, and whether the two orthogonal
runs logged the same losses (every stats.jsonl value but the timings).

    python benchmarks/bench_denormals.py                  # 3 iterations each, paper widths
    python benchmarks/bench_denormals.py --iterations 5 --widths tiny
"""

from __future__ import annotations

import argparse
import contextlib
import json
import tempfile
from pathlib import Path

import torch

from bench_learning import learning_config, one_clip
from machine import machine_line


def timed_run(cfg, run_dir: Path, flush: bool) -> list[dict]:
    import bdmm_cli.train.loop as loop

    keep = loop.flushed_denormals
    if not flush:
        loop.flushed_denormals = lambda device: contextlib.nullcontext()
    try:
        loop.train(cfg, run_dir, progress=False)
    finally:
        loop.flushed_denormals = keep
    return [json.loads(line) for line in (run_dir / "stats.jsonl").read_text().splitlines()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--widths", default="paper", choices=["tiny", "paper"])
    ap.add_argument("--iterations", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(machine_line("cpu"))
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        root, body = one_clip(Path(tmp), 128)
        for name, init, flush in (("orthogonal, kept", "orthogonal", False),
                                  ("orthogonal, flushed", "orthogonal", True), ("none, flushed", "none", True)):
            cfg = learning_config(root, body, args.widths, init, args.iterations, 128, sample_every=0)
            runs[name] = timed_run(cfg, Path(tmp) / name.replace(", ", "_"), flush)
            s_it = [1 / s["it_s"] for s in runs[name]]
            print(f"{name}: " + " ".join(f"{x:.1f}" for x in s_it) + " s/it", flush=True)
    base = sum(1 / s["it_s"] for s in runs["orthogonal, kept"]) / args.iterations
    print(f"\n{args.widths} widths, S = 128, {args.iterations} iterations each\n")
    print("| run | s/it (mean) | time / baseline |\n|---|---|---|")
    for name, stats in runs.items():
        mean = sum(1 / s["it_s"] for s in stats) / len(stats)
        print(f"| {name} | {mean:.1f} | {mean / base:.3f} |")
    differ = {}
    for a, b in zip(runs["orthogonal, kept"], runs["orthogonal, flushed"]):
        for key in a:
            if key not in ("time", "it_s") and a[key] != b[key]:
                differ.setdefault(key, []).append(abs(a[key] - b[key]) / max(abs(a[key]), 1e-300))
    same = "every logged value equal" if not differ else "; ".join(
        f"{k} differs (max relative {max(v):.1e})" for k, v in differ.items())
    print(f"\northogonal kept vs flushed: {same}")


if __name__ == "__main__":
    main()
