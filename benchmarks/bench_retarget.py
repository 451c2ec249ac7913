"""Cost of retargeting relative to the flow stage of one window (CPU, and CUDA when present).

    python benchmarks/bench_retarget.py            # full run
    python benchmarks/bench_retarget.py --quick    # fewer repeats

Per 6-frame window the animate pipeline retargets the T + 2 = 8 driving poses
(``window.Retargeter``: one ``BodyModel.body25`` call for the driver and one for the new
body, then the camera and keypoint rules in numpy) and then builds the window's inputs
(``window.window_inputs``: body model on 9 poses, 8 mesh flows, 6 x 25 heatmaps), the
"flow" stage of ``AnimateStats``. Rows:

- `flow stage (baseline)`: ``window_inputs`` for one window at 256x256 on the SMPL-sized
  synthetic mesh of ``bench_flow.py`` (13,776 faces);
- `retarget camera` / `retarget shape+camera`: the retargeting of the same window's 8 poses
  on the SMPL-layout synthetic body (6890 vertices, so the vertex-picked BODY_25 points of
  SPIN's mapping are skinned like on SMPL).

Ratios are against the flow stage on the same device in the same run.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bdmm_cli.body import BodyModel  # noqa: E402
from machine import machine_line  # noqa: E402
from bdmm_cli.body.synthetic import smpl_layout_body_arrays  # noqa: E402
from bdmm_cli.dataset.kptsmpl import FramePose  # noqa: E402
from bdmm_cli.window import Retargeter, WindowPoses, window_inputs  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_flow import S, T, smpl_sized_body, timeit  # noqa: E402


def frame_poses(n: int, seed: int) -> list[FramePose]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        theta = (0.25 * rng.normal(size=72)).astype(np.float32)
        theta[:3] = [math.pi, 0.0, 0.0]
        kp = np.concatenate([rng.uniform(40, 216, size=(25, 2)), np.full((25, 1), 0.9)], axis=1)
        out.append(FramePose(keypoints=kp, bbox_xyxy=[40, 30, 216, 240], cam=[1.1, rng.normal() * 0.05, 0.1],
                             pose_theta=theta, shape_beta=(0.5 * rng.normal(size=10)).astype(np.float32)))
    return out


def bench(device: torch.device, repeats: int, min_seconds: float) -> list[tuple[str, float, str]]:
    flow_body = smpl_sized_body().to(device)
    smpl_body = BodyModel(smpl_layout_body_arrays(0)).to(device)
    source, *driving = frame_poses(T + 3, 0)
    window = [driving[: T + 2]]
    poses = WindowPoses.from_frame_poses(window, device)
    src_img = torch.zeros(1, 3, S, S, device=device)
    src_smpl = torch.from_numpy(source.smpl[None]).to(device)
    rows = []
    t_flow = timeit(lambda: window_inputs(flow_body, src_img, src_smpl, poses), device, repeats, min_seconds)
    rows.append(("flow stage (baseline)", t_flow, "x1.000"))
    for mode in ("camera", "shape+camera"):
        rt = Retargeter(source, driving[0], smpl_body, mode)
        t = timeit(lambda: rt(driving[: T + 2]), device, repeats, min_seconds)
        rows.append((f"retarget {mode}", t, f"x{t / t_flow:.3f} of the flow stage ({100 * t / t_flow:.1f}%)"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    repeats, min_seconds = (3, 0.5) if args.quick else (10, 3.0)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    print(machine_line())
    print(f"one window: T={T} frames (+2), image {S}x{S}")
    for device in devices:
        name = torch.cuda.get_device_name() if device.type == "cuda" else "CPU"
        print(f"\n{name}")
        print(f"{'case':24s} {'best s':>8s}  result")
        for label, t, extra in bench(device, repeats, min_seconds):
            print(f"{label:24s} {t:8.4f}  {extra}")


if __name__ == "__main__":
    main()
