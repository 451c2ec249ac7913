"""Stand-ins for the animate tests: tiny generator weights, synthetic body, pose folders, videos.

Everything goes through the real code paths: the generator is built with the real
constructor and saved/loaded with ``hub.save_generator`` / ``hub.load_generator``; the body
model is the synthetic SMPL-format file loaded with ``body.load_body_model``; pose folders
are written in the authors' layout (``frames/*.png`` + ``kptsmpls/*.json``) with SMPL
parameters that put the synthetic body upright in the crop.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from bdmm_cli.dataset.kptsmpl import FramePose, write_kptsmpl

TINY = dict(ngf=8, img_f=32, style_dim=32)
MODEL_SIZE = 128

# BODY_25 index <- SMPL joint index (a rough correspondence, enough for plausible heatmaps).
_BODY25_FROM_SMPL = {
    0: 15, 1: 12, 2: 17, 3: 19, 4: 21, 5: 16, 6: 18, 7: 20, 8: 0, 9: 2, 10: 5, 11: 8,
    12: 1, 13: 4, 14: 7, 15: 15, 16: 15, 17: 15, 18: 15, 19: 10, 20: 10, 21: 7, 22: 11, 23: 11, 24: 8,
}


def tiny_generator_dir(root: Path, seed: int = 0) -> Path:
    """A tiny BDMMGenerator with seeded random weights, saved in our format; returns the folder."""
    from bdmm_cli.model.checkpoint import save_generator
    from bdmm_cli.model import BDMMGenerator, GeneratorConfig

    torch.manual_seed(seed)
    g = BDMMGenerator(GeneratorConfig(**TINY))
    folder = Path(root) / f"tiny_generator_{seed}"
    save_generator(g, folder)
    return folder


def synthetic_body(root: Path) -> Path:
    from bdmm_cli.body import write_synthetic_body_model

    return write_synthetic_body_model(Path(root) / "synthetic_body.npz", seed=0)


def frame_pose(t: float, body_path: Path | None = None) -> FramePose:
    """Upright body (global orientation pi about x: y down, as HMR outputs it) swinging its arms
    and legs with phase ``t``; keypoints are the posed joints projected into the 256 crop."""
    theta = np.zeros(72, np.float32)
    theta[0] = math.pi
    swing = 0.6 * math.sin(t)
    theta[16 * 3 + 2] = -0.9 + swing  # left shoulder
    theta[17 * 3 + 2] = 0.9 + swing  # right shoulder
    theta[1 * 3 + 0] = 0.4 * swing  # left hip
    theta[2 * 3 + 0] = -0.4 * swing  # right hip
    cam = np.array([0.9, 0.02 * math.sin(0.5 * t), 0.05], np.float32)
    beta = np.zeros(10, np.float32)
    joints = _joints(theta, beta, body_path)
    px = (cam[0] * (joints[:, :2] + cam[1:]) + 1.0) * 128.0
    kp = np.zeros((25, 3), np.float32)
    for b25, smpl_j in _BODY25_FROM_SMPL.items():
        kp[b25, :2] = px[smpl_j]
        kp[b25, 2] = 0.9
    lo, hi = kp[:, :2].min(0), kp[:, :2].max(0)
    return FramePose(keypoints=kp, bbox_xyxy=np.concatenate([lo, hi]), cam=cam, pose_theta=theta, shape_beta=beta)


_JOINT_CACHE: dict = {}


def _joints(theta: np.ndarray, beta: np.ndarray, body_path: Path | None) -> np.ndarray:
    from bdmm_cli.body import load_body_model, synthetic_body_arrays
    from bdmm_cli.body.body_model import BodyModel

    key = str(body_path)
    if key not in _JOINT_CACHE:
        _JOINT_CACHE[key] = load_body_model(body_path) if body_path else BodyModel(synthetic_body_arrays(0))
    body = _JOINT_CACHE[key]
    with torch.no_grad():
        _, j = body.forward_with_joints(torch.from_numpy(beta)[None], torch.from_numpy(theta)[None])
    return j[0].numpy()


def crop_image(t: float, size: int = 256) -> np.ndarray:
    """A (size, size, 3) uint8 picture that changes with ``t`` (a moving coloured figure)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    cx = 0.5 + 0.1 * math.sin(t)
    img = np.stack([
        180 * np.exp(-((xx - cx) ** 2 + (yy - 0.5) ** 2) / 0.02),
        120 + 100 * yy,
        60 + 150 * xx,
    ], axis=-1)
    return np.clip(img, 0, 255).astype(np.uint8)


def save_png(path: Path, image: np.ndarray) -> None:
    from PIL import Image

    Image.fromarray(image).save(path)


def make_pose_dir(root: Path, num_frames: int, missing: tuple[int, ...] = (), name: str = "poses") -> Path:
    """A pose folder (authors' layout) of ``num_frames`` frames; ``missing`` frames have no file."""
    folder = Path(root) / name
    (folder / "frames").mkdir(parents=True)
    (folder / "kptsmpls").mkdir()
    for i in range(num_frames):
        if i in missing:
            continue
        save_png(folder / "frames" / f"frame_{i:05d}.png", crop_image(0.4 * i))
        write_kptsmpl(folder / "kptsmpls" / f"frame_{i:05d}.json", frame_pose(0.4 * i))
    return folder


def make_source(root: Path) -> tuple[Path, Path]:
    """(photo crop PNG, its kptsmpls JSON)."""
    photo = Path(root) / "person.png"
    save_png(photo, crop_image(1.0))
    pose = Path(root) / "person.json"
    write_kptsmpl(pose, frame_pose(0.0))
    return photo, pose


def make_env(root: Path, num_frames: int, fps: float) -> dict:
    """Everything an animate run needs: tiny generator weights, the synthetic body, a source
    photo and its pose, a pose folder and a driving video (with audio) of `num_frames` frames."""
    from media import make_test_video

    photo, source_pose = make_source(root)
    return {
        "root": root,
        "weights": tiny_generator_dir(root),
        "smpl": synthetic_body(root),
        "poses": make_pose_dir(root, num_frames),
        "photo": photo,
        "source_pose": source_pose,
        "video": make_test_video(root / "drive.mp4", frames=num_frames, fps=fps, size=(64, 48), audio=True),
    }


def animate_args(tmp: Path, env: dict, out: Path, *extra: str) -> list[str]:
    """CLI arguments of a tiny run: `bdmm animate PHOTO VIDEO -o OUT ...`."""
    return [
        "animate", str(env["photo"]), str(env["video"]), "-o", str(out),
        "--poses", str(env["poses"]), "--source-pose", str(env["source_pose"]),
        "--weights", str(env["weights"]), "--smpl", str(env["smpl"]),
        "--model-size", str(MODEL_SIZE), "--size", str(MODEL_SIZE), "--device", "cpu", "--quiet", *extra,
    ]


def random_spin(path: Path) -> Path:
    """SPIN/HMR weights, random, whose mean parameters put an upright body in the crop; saved
    as a flat state dict like BDMM's spin_ckpt.pth (for tests of the real pose path)."""
    from bdmm_cli.pose.hmr import HMR

    torch.manual_seed(0)
    hmr = HMR()
    init_pose = torch.tensor([1.0, 0, 0, 1, 0, 0]).repeat(24)
    init_pose[:6] = torch.tensor([1.0, 0, 0, -1, 0, 0])  # pi about x: y down, like SPIN's mean pose
    hmr.init_pose.copy_(init_pose[None])
    hmr.init_cam.copy_(torch.tensor([[0.9, 0.0, 0.0]]))
    torch.save(hmr.state_dict(), path)
    return Path(path)
