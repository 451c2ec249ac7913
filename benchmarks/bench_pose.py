"""Throughput of the pose stages: detector (MediaPipe), crop, SPIN crop, HMR, whole stage.

Two detectors are timed on the same frames: MediaPipe's legacy single-person tracker and
the default largest-person detector (``bdmm_cli.pose.largest``: multi-person landmarker +
selection, legacy tracker as fallback); the ratio of the two is printed. The authors'
OpenPose BODY_25 (``--keypoints openpose``; random weights, same cost as theirs for the
network, while decoding is cheaper without real peaks) is timed on the same frames, batched
over ``--batch`` frames on ``--device``, and compared with the MediaPipe detector.

Run:  OMP_NUM_THREADS=2 python benchmarks/bench_pose.py [--frames 32] [--device cuda] [--batch 8]

Detector comparison (``--detectors``, issue 26): OpenPose, DWPose and MediaPipe on the same
frames, one after the other, each in video mode (tracking + smoothing), frames/s and the
ratio to OpenPose; then their agreement on a clip (``--clip``, default ``assets/walk.mp4``):
the mean pixel distance per BODY_25 point between each pair, over the frames and joints both
report. OpenPose and DWPose use the installed files (``bdmm setup``) when there are some;
otherwise OpenPose runs with random weights (its real architecture) and DWPose with
``benchmarks/dwpose_arch.py``'s rebuilt architectures with random weights (``--dwpose-arch``):
their speed is meaningful, their keypoints (and so the agreement) are not, and the script
says so. MediaPipe is skipped where it is not installed (Python 3.13+).

    OMP_NUM_THREADS=2 python benchmarks/bench_pose.py --detectors [--frames 16] [--threads 2]

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


# -- issue 26: OpenPose vs DWPose vs MediaPipe ----------------------------------------------------

def _detectors(args, device: torch.device) -> dict:
    """name -> (factory of a fresh video-mode detector, whether its weights are the real ones)."""
    import importlib.util
    import tempfile

    from bdmm_cli.pose.detector import installed_openpose_weights
    from bdmm_cli.pose.dwpose import DWPoseDetector, DWPoseModels, installed_dwpose

    out = {}
    op_path = installed_openpose_weights()
    if op_path is not None:
        from bdmm_cli.pose.openpose import load_openpose

        net = load_openpose(op_path, device)
    else:
        torch.manual_seed(0)
        net = OpenPoseBody25().eval().to(device)
    out["openpose"] = (lambda: OpenPoseDetector(net, video=True), op_path is not None)
    files = installed_dwpose()
    real = files is not None and not args.dwpose_arch
    if not real:
        import sys

        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from dwpose_arch import export_random

        files = export_random(Path(tempfile.mkdtemp(prefix="dwpose-arch.")))
    models = DWPoseModels(*files, device=str(device), threads=args.threads)
    out["dwpose"] = (lambda: DWPoseDetector(models, video=True), real)
    out["_dwpose_models"] = models
    if importlib.util.find_spec("mediapipe") is not None:
        from bdmm_cli.pose.largest import LargestPersonDetector

        out["mediapipe"] = (lambda: LargestPersonDetector(video=True), True)
    return out


def _run_detector(factory, frames: list[np.ndarray], batch: int) -> tuple[float, list]:
    det = factory()
    many = getattr(det, "detect_batch", None)
    t = time.perf_counter()
    bodies = []
    for i in range(0, len(frames), batch):
        chunk = frames[i:i + batch]
        bodies += many(chunk) if many is not None else [det(f) for f in chunk]
    elapsed = time.perf_counter() - t
    if hasattr(det, "close"):
        det.close()
    return elapsed, bodies


def _agreement(a: list, b: list) -> tuple[float, int, np.ndarray]:
    """Mean pixel distance over the (frame, joint) pairs both report; per-joint means (nan: none)."""
    d = [[] for _ in range(25)]
    for x, y in zip(a, b):
        if x is None or y is None:
            continue
        both = x.valid & y.valid
        for j in np.flatnonzero(both):
            d[j].append(float(np.linalg.norm(x.keypoints[j, :2] - y.keypoints[j, :2])))
    per = np.array([np.mean(v) if v else np.nan for v in d])
    flat = [v for row in d for v in row]
    return (float(np.mean(flat)) if flat else float("nan")), len(flat), per


def compare_detectors(args) -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from machine import machine_line

    from bdmm_cli.pose.body25 import BODY25_NAMES
    from bdmm_cli.video import iter_frames

    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(machine_line(args.device))
    dets = _detectors(args, device)
    models = dets.pop("_dwpose_models")
    print(f"onnxruntime providers: {models.providers}")
    frames = make_frames(args.frames)
    n = len(frames)
    print(f"{n} frames of 640x480, batch {args.batch}, device {args.device}")
    # 1. the networks (what random weights cost exactly as real ones): OpenPose's forward on its
    #    368-high input; DWPose = YOLOX on the 640x640 letterbox + DWPose on one person's crop
    #    (a fixed box around the person), including their pre- and post-processing but not YOLOX's
    #    NMS, whose cost depends on how many candidates the weights produce.
    from bdmm_cli.pose.dwpose import decode_simcc, letterbox
    from bdmm_cli.pose.openpose import preprocess_openpose

    net = dets["openpose"][0]().net

    def openpose_net():
        for i in range(0, n, args.batch):
            x = torch.cat([preprocess_openpose(f).tensor for f in frames[i:i + args.batch]]).to(device)
            with torch.no_grad():
                net(x)
        if device.type == "cuda":
            torch.cuda.synchronize()

    boxes = [np.array([[190.0, 150.0, 450.0, 406.0, 0.9]]) for _ in frames]

    def yolox_net():
        for i in range(0, n, args.batch):
            x = np.stack([letterbox(f)[0] for f in frames[i:i + args.batch]])
            models._run(models.det, models.det_batched, x)

    def dwpose_net():
        for i in range(0, n, args.batch):
            models.wholebody(frames[i:i + args.batch], boxes[i:i + args.batch])

    for fn in (openpose_net, yolox_net, dwpose_net):
        fn()  # warm-up
    t_op, t_yolox, t_dw = timed(openpose_net), timed(yolox_net), timed(dwpose_net)
    t_dwpose = t_yolox + t_dw
    print(f"{'network(s)':44s} {'frames/s':>9s} {'ms/frame':>9s} {'time / OpenPose':>16s}")
    for name, t in (("OpenPose BODY_25 (368 high, batch %d)" % args.batch, t_op),
                    ("DWPose: YOLOX-L 640 + DWPose-L 384x288, 1 person", t_dwpose),
                    ("  of which YOLOX-L", t_yolox), ("  of which DWPose-L (one crop)", t_dw)):
        print(f"{name:44s} {n / t:9.2f} {1000 * t / n:9.1f} {t / t_op:16.2f}")
    # 2. each whole detector, video mode (tracking + smoothing), where its weights are real
    for name, (factory, real) in dets.items():
        if not real:
            print(f"{name}: whole detector not timed (random weights: its decoding cost is not the real one)")
            continue
        _run_detector(factory, frames[:2], args.batch)  # warm-up
        t = _run_detector(factory, frames, args.batch)[0]
        print(f"{name} whole detector (real weights): {n / t:.2f} frames/s, {1000 * t / n:.1f} ms/frame, "
              f"{t / t_op:.2f}x OpenPose's network time")

    clip = Path(args.clip)
    clip_frames = list(iter_frames(clip, 0, args.clip_frames))
    names = [name for name, (_, real) in dets.items() if real]
    missing = [name for name in dets if name not in names]
    if missing:
        print(f"agreement: {', '.join(missing)} not compared (random weights: their keypoints mean nothing)")
    results = {name: _run_detector(dets[name][0], clip_frames, args.batch)[1] for name in names}
    print(f"agreement on {clip.name} ({len(clip_frames)} frames): mean pixel distance per BODY_25 point")
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            mean, count, per = _agreement(results[a], results[b])
            print(f"  {a} vs {b}: {mean:.1f} px over {count} joint detections")
            if args.per_joint:
                print("    " + ", ".join(f"{BODY25_NAMES[j]} {v:.1f}" for j, v in enumerate(per) if np.isfinite(v)))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=32)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--detectors", action="store_true", help="compare OpenPose, DWPose and MediaPipe (issue 26)")
    ap.add_argument("--dwpose-arch", action="store_true",
                    help="time DWPose's rebuilt architectures with random weights even when the real files are installed")
    ap.add_argument("--threads", type=int, default=None, help="torch and onnxruntime intra-op threads")
    ap.add_argument("--clip", default=str(Path(__file__).resolve().parents[1] / "assets" / "walk.mp4"))
    ap.add_argument("--clip-frames", type=int, default=30)
    ap.add_argument("--per-joint", action="store_true")
    args = ap.parse_args()
    if args.detectors:
        compare_detectors(args)
        return
    from bdmm_cli.pose.detector import MediaPipePoseDetector
    from bdmm_cli.pose.largest import LargestPersonDetector

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
