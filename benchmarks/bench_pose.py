"""Throughput of the pose stages: detector (MediaPipe), crop, SPIN crop, HMR, whole stage.

Two detectors are timed on the same frames: MediaPipe's legacy single-person tracker and
the default largest-person detector (``bdmm_cli.pose.largest``: multi-person landmarker +
selection, legacy tracker as fallback); the ratio of the two is printed. The authors'
OpenPose BODY_25 (``--keypoints openpose``; random weights, same cost as theirs for the
network, while decoding is cheaper without real peaks) is timed on the same frames, batched
over ``--batch`` frames on ``--device``, and compared with the MediaPipe detector.

Run:  OMP_NUM_THREADS=2 python benchmarks/bench_pose.py [--frames 32] [--device cuda] [--batch 8]

Frames are the test photo (tests/data/astronaut_256.jpg, public domain) placed on a
640x480 background and shifted a little per frame. HMR has random weights (same cost
as SPIN's). Prints frames/s per stage and each stage's share of the per-frame time.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np
import torch

from bdmm_cli.pose import HMR, PoseConfig, PoseEstimator
from bdmm_cli.pose.crop import CropTracker, crop_to_square, map_keypoints
from bdmm_cli.pose.detector import MediaPipePoseDetector
from bdmm_cli.pose.largest import LargestPersonDetector
from bdmm_cli.pose.openpose import OpenPoseBody25, OpenPoseDetector
from bdmm_cli.pose.spin_crop import spin_crop
from bdmm_cli.video import read_image

PHOTO = Path(__file__).resolve().parents[1] / "tests" / "data" / "astronaut_256.jpg"


def make_frames(n: int) -> list[np.ndarray]:
    person = read_image(PHOTO)
    frames = []
    for i in range(n):
        f = np.full((480, 640, 3), 180, np.uint8)
        x = 100 + 5 * (i % 40)
        f[150:406, x:x + 256] = person
        frames.append(f)
    return frames


def timed(fn, repeat: int = 1) -> float:
    t = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - t) / repeat


def time_openpose(frames: list[np.ndarray], batch: int, device: torch.device) -> float:
    """Seconds for OpenPose (video mode: tracking + smoothing) over `frames`, `batch` frames a call."""
    torch.manual_seed(0)
    det = OpenPoseDetector(OpenPoseBody25().eval().to(device), video=True)
    det.detect_batch(frames[:1])  # warm-up

    def run():
        for i in range(0, len(frames), batch):
            det.detect_batch(frames[i:i + batch])
        if device.type == "cuda":
            torch.cuda.synchronize()

    return timed(run)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=32)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    frames = make_frames(args.frames)
    n = len(frames)
    rows = []

    with MediaPipePoseDetector(video=True) as det:
        det(frames[0])  # warm-up (graph start)
        legacy = []
        t_legacy = timed(lambda: legacy.extend(det(f) for f in frames))
    with LargestPersonDetector(video=True) as det:
        det(frames[0])
        bodies = []
        t_largest = timed(lambda: bodies.extend(det(f) for f in frames))
    rows.append(("detector (largest person, default)", n / t_largest))
    detector_ratio = t_largest / t_legacy
    t_openpose = time_openpose(frames, args.batch, torch.device(args.device))

    def crop_all():
        tracker = CropTracker("union")
        out = []
        for f, b in zip(frames, bodies):
            if b is None:  # nobody found in this frame
                continue
            box = b.box_xyxy()
            crop, tf = crop_to_square(f, tracker.update(box, f.shape[:2]))
            out.append((crop, map_keypoints(b.keypoints, tf), tf.box_to_crop(box)))
        return out

    crops = crop_all()
    print(f"person found in {len(crops)} of {n} frames")
    rows.append(("crop (union, pad, resize 256)", len(crops) / timed(crop_all, 3)))
    spins = []
    rows.append(("SPIN crop + normalise", len(crops) / timed(lambda: spins.extend(spin_crop(c, b) for c, _, b in crops))))

    device = torch.device(args.device)
    hmr = HMR().eval().to(device)
    x = torch.stack([s.image for s in spins[: args.batch]]).to(device)

    def run_hmr():
        with torch.no_grad():
            hmr(x)
        if device.type == "cuda":
            torch.cuda.synchronize()

    run_hmr()
    reps = max(1, n // args.batch)
    rows.append((f"HMR batch {args.batch} ({device.type})", args.batch / timed(run_hmr, reps)))

    est = PoseEstimator(hmr, config=PoseConfig(batch_size=args.batch, largest_person=False), device=device)
    t_stage_legacy = timed(lambda: list(est.process(iter(frames), video=True)))
    est = PoseEstimator(hmr, config=PoseConfig(batch_size=args.batch), device=device)
    t = timed(lambda: list(est.process(iter(frames), video=True)))
    rows.append((f"whole stage ({device.type}, smoothing on)", n / t))

    gpu = torch.cuda.get_device_name(0) if device.type == "cuda" else "none"
    print(f"machine: {platform.processor() or platform.machine()}, torch threads {torch.get_num_threads()}, GPU {gpu}")
    print(f"{n} frames of 640x480")
    print(f"{'stage':45s} {'frames/s':>10s} {'ms/frame':>10s} {'share':>7s}")
    stage_ms = [1000.0 / fps for _, fps in rows[:-1]]
    for (name, fps), ms in zip(rows, stage_ms + [None]):
        share = f"{100 * ms / sum(stage_ms):6.1f}%" if ms is not None else ""
        print(f"{name:45s} {fps:10.2f} {1000.0 / fps:10.2f} {share:>7s}")
    print(f"whole stage / sum of stages: {(1000.0 / rows[-1][1]) / sum(stage_ms):.2f}x")
    print(f"detector: legacy single-person tracker {n / t_legacy:.2f} frames/s ({1000 * t_legacy / n:.2f} ms/frame); "
          f"largest-person / legacy time: {detector_ratio:.2f}x")
    print(f"detector: OpenPose BODY_25 ({args.device}, batch {args.batch}, random weights) {n / t_openpose:.2f} frames/s "
          f"({1000 * t_openpose / n:.1f} ms/frame); OpenPose / MediaPipe largest-person time: {t_openpose / t_largest:.2f}x")
    print(f"whole stage with the legacy detector: {n / t_stage_legacy:.2f} frames/s; "
          f"default (largest person) / legacy time: {t / t_stage_legacy:.2f}x")


if __name__ == "__main__":
    main()
