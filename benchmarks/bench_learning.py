"""Does `bdmm train` learn? L1 per frame against iterations, per initialisation and width.

One synthetic 6-frame clip (`bdmm_cli.dataset.synthetic`, S = 128, the source is frame 0),
trained on with the default configuration otherwise (losses, weights, lr, betas); VGG19 has
random weights (none can be downloaded here). Each run goes through `bdmm_cli.train.train`,
so the curve is the `G/l1_per_frame` the run writes to stats.jsonl (measured on each
iteration's generated window, before that iteration's update). Two references computed
from the same clip: the best constant image and copying the source warped by the mesh flows
(what the generator gets as an input). Sample grids (top: source + real frames, bottom:
source + generated frames) are saved beside the results.

    python benchmarks/bench_learning.py                                   # tiny widths, both inits, 300 it
    python benchmarks/bench_learning.py --widths paper --iterations 200   # paper widths (slow on a CPU)
    python benchmarks/bench_learning.py --inits none orthogonal:1 kaiming --out /tmp/learn
    python benchmarks/bench_learning.py --work runs/learn ...             # keep the run directories
    python benchmarks/bench_learning.py --work runs/learn --report-only   # summarise (also cut-short runs)
    python benchmarks/bench_learning.py --work runs/learn --keep 50 100   # + checkpoints/step_<N>.pt

Writes <out>/learning_<widths>.json (curves) and <out>/learning_<widths>_<init>.png (the last
sample grid of each run); prints a markdown table. The results of 2026-12-07 are in
results/learning.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import torch

from machine import machine_line

#: Network widths: the tests' tiny ones and the paper's.
WIDTHS = {
    "tiny": dict(model_ngf=4, model_img_f=16, disc_ndf=4, disc_img_f=8, vgg_width_divisor=16),
    "paper": dict(model_ngf=64, model_img_f=512, disc_ndf=32, disc_img_f=128, vgg_width_divisor=1),
}


#: The clip's background on [-1, 1] (the learning check's, tests/test_train_learning.py).
BACKGROUND = (0.6, -0.4, 0.2)


def one_clip(folder: Path, size: int = 128, frames: int = 6,
             background: tuple[float, float, float] = BACKGROUND) -> tuple[Path, Path]:
    """(data root, body model): one synthetic video of `frames` frames."""
    from bdmm_cli.body import write_synthetic_body_model
    from bdmm_cli.dataset.synthetic import write_synthetic_dataset

    body = write_synthetic_body_model(folder / "synthetic_body.npz")
    root = write_synthetic_dataset(folder / "data", body, num_videos=1, num_frames=frames, image_size=size,
                                   test_list=False, background=tuple(background))
    return root, body


def learning_config(root: Path, body: Path, widths: str, init: str, iterations: int, size: int = 128, **kw):
    """The default TrainConfig but for one clip of 6 frames at `widths`, random VGG, no extras."""
    from bdmm_cli.train import TrainConfig

    return TrainConfig(**{
        "data": str(root), "body_model": str(body), "image_size": size, "clip_len": 6,
        "num_workers": 0, "iterations": iterations, "vgg_weights": "random", "init": init, "device": "cpu",
        "log_every": 1, "sample_every": iterations, "checkpoint_every": 0, "tensorboard": False,
        **WIDTHS[widths], **kw})


@torch.no_grad()
def references(cfg) -> dict[str, float]:
    """L1 per frame of the best constant image and of the flow-warped source, same clip."""
    from bdmm_cli.body import load_body_model, warp
    from bdmm_cli.dataset.layout import OfficialDataset
    from bdmm_cli.train.data import ClipDataset, ClipSampler, clip_windows, window_inputs
    from bdmm_cli.train.losses import constant_image_l1, l1_per_frame

    ds = ClipDataset(OfficialDataset(cfg.data, "train").videos, cfg.image_size, cfg.clip_len, cfg.source_first_n)
    item = ds[ClipSampler(1, 1, cfg.seed).keys(0)[0]]
    batch = {k: v[None] for k, v in item.items()}
    body = load_body_model(Path(cfg.body_model))
    inputs, real = window_inputs(batch, body, clip_windows(batch, cfg.window)[0])
    b, t = inputs.flows.shape[:2]
    src = inputs.source[:, None].expand(b, t, *inputs.source.shape[1:]).reshape(b * t, *inputs.source.shape[1:])
    warped = warp(src, inputs.flows.reshape(b * t, *inputs.flows.shape[2:])).reshape(real.shape)
    return {"constant": float(constant_image_l1(real)), "warped_source": float(l1_per_frame(warped, real)),
            "zero": float(real.abs().mean())}


def run(cfg, run_dir: Path, keep: tuple[int, ...] = ()) -> None:
    """Train into `run_dir` (stats.jsonl written every iteration, so a cut-short run still reports).

    keep: iterations at which the run stops, keeps its checkpoint as checkpoints/step_<N>.pt
    (for `init_scales.py --checkpoint`) and resumes (a resumed run continues exactly)."""
    from bdmm_cli.train import train

    if run_dir.exists():
        shutil.rmtree(run_dir)
    done = 0
    for stop in sorted(k for k in keep if 0 < k < cfg.iterations):
        done = train(cfg, run_dir, resume=done > 0, progress=False, stop_at=stop).step
        if done < stop:   # interrupted
            return
        shutil.copyfile(run_dir / "checkpoints" / "latest.pt", run_dir / "checkpoints" / f"step_{stop:07d}.pt")
    train(cfg, run_dir, resume=done > 0, progress=False)


def read_run(run_dir: Path, out_png: Path | None = None) -> dict | None:
    """{"l1": [...], "out_abs": [...], "seconds": s} from a run's stats.jsonl; copies its last sample grid."""
    stats_path = run_dir / "stats.jsonl"
    if not stats_path.is_file():
        return None
    stats = [json.loads(line) for line in stats_path.read_text().splitlines() if line.strip()]
    if not stats:
        return None
    grids = sorted((run_dir / "samples").glob("*.png"))
    if grids and out_png is not None:
        shutil.copyfile(grids[-1], out_png)
    seconds = sum(1.0 / s["it_s"] for s in stats)  # log_every = 1
    return {"l1": [s["G/l1_per_frame"] for s in stats], "out_abs": [s["G/out_abs"] for s in stats],
            "seconds": seconds, "grid_step": int(grids[-1].stem.split("_")[-1]) if grids else None}


@torch.no_grad()
def grid_from_checkpoint(run_dir: Path, out_png: Path, source: int = 0) -> None:
    """The sample grid of a run's last checkpoint on its clip (source frame `source`), for
    runs trained without sample grids."""
    from bdmm_cli.body import load_body_model
    from bdmm_cli.dataset.layout import OfficialDataset
    from bdmm_cli.train.checkpoint import load_checkpoint
    from bdmm_cli.train.config import config_from_dict
    from bdmm_cli.train.data import ClipDataset, clip_windows, window_inputs
    from bdmm_cli.train.loop import _save_sample, build_networks

    data = load_checkpoint(run_dir / "checkpoints" / "latest.pt")
    cfg = config_from_dict(data["config"])
    G = build_networks(cfg).G
    G.load_state_dict(data["G"])
    ds = ClipDataset(OfficialDataset(cfg.data, "train").videos, cfg.image_size, cfg.clip_len, cfg.source_first_n)
    ds.choose = lambda video, seed: (0, source)
    batch = {k: v[None] for k, v in ds[(0, 0)].items()}
    inputs, real = window_inputs(batch, load_body_model(Path(cfg.body_model)), clip_windows(batch, cfg.window)[0])
    fake = G.train()(inputs).frames   # train mode, as the loop's samples
    _save_sample(out_png, {"source": inputs.source, "real": real, "fake": fake})


def table(results: dict, refs: dict, marks: list[int]) -> str:
    rows = [f"| init | {' | '.join(f'it {m}' for m in marks)} | s/it |", "|---" * (len(marks) + 2) + "|"]
    for init, r in results.items():
        cells = [f"{r['l1'][m - 1]:.4f}" if m <= len(r["l1"]) else "" for m in marks]
        rows.append(f"| {init} | {' | '.join(cells)} | {r['seconds'] / len(r['l1']):.2f} |")
    rows.append(f"\nreferences (same clip): constant image {refs['constant']:.4f}, warped source "
                f"{refs['warped_source']:.4f}, zero image {refs['zero']:.4f}")
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--widths", nargs="+", default=["tiny"], choices=sorted(WIDTHS))
    ap.add_argument("--inits", nargs="+", default=["none", "orthogonal"],
                    help="none | orthogonal | kaiming; orthogonal:G = orthogonal with gain G")
    ap.add_argument("--iterations", type=int, default=300)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--background", type=float, nargs=3, default=BACKGROUND,
                    help="the clip's background colour on [-1, 1] (0 0 0 = grey, the warp's fill)")
    ap.add_argument("--sample-every", type=int, default=50)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    ap.add_argument("--work", type=Path, default=None, help="keep the run directories here (default: a temp dir)")
    ap.add_argument("--report-only", action="store_true", help="only summarise the runs already in --work")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    ap.add_argument("--keep", type=int, nargs="*", default=[],
                    help="keep the checkpoints of these iterations (for init_scales.py --checkpoint)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(machine_line("cpu"))
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        root, body = (work / "data", work / "synthetic_body.npz")
        if not args.report_only and not (root / "train").is_dir():
            root, body = one_clip(work, args.size, background=args.background)
        for widths in args.widths:
            refs = references(learning_config(root, body, widths, "none", 1, args.size))
            results = {}
            for init in args.inits:
                spec = init.split(":")  # "orthogonal:1" = orthogonal with gain 1
                extra = {"init_gain": float(spec[1])} if len(spec) > 1 else {}
                run_dir = work / f"{widths}_{init.replace(':', '_gain')}"
                if not args.report_only:
                    run(learning_config(root, body, widths, spec[0], args.iterations, args.size,
                                        sample_every=args.sample_every, **extra), run_dir, tuple(args.keep))
                r = read_run(run_dir, args.out / f"learning_{widths}_{init.replace(':', '_gain')}.png")
                if r is None:
                    continue
                results[init] = r
                print(f"{widths} {init}: L1 {r['l1'][0]:.4f} -> {r['l1'][-1]:.4f} after {len(r['l1'])} it "
                      f"({r['seconds']:.0f} s)", flush=True)
            (args.out / f"learning_{widths}.json").write_text(json.dumps(
                {"machine": machine_line("cpu"), "references": refs, "size": args.size, "results": results}, indent=1))
            longest = max((len(r["l1"]) for r in results.values()), default=0)
            marks = [m for m in (1, 10, 25, 50, 100, 150, 200, 300, 500, 1000) if m <= longest]
            print(f"\n### {widths} widths, S = {args.size}\n\n{table(results, refs, marks)}\n")


if __name__ == "__main__":
    main()
