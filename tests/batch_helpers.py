"""Inputs of the `bdmm batch` tests and benchmark: photos and driving videos of a real person
(scikit-image's astronaut, public domain) for the real pose path (MediaPipe + an HMR with
random weights), a corrupt video, tiny generator weights and the synthetic body model."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import numpy as np

from animate_helpers import MODEL_SIZE, random_spin, synthetic_body, tiny_generator_dir

REPO = Path(__file__).resolve().parents[1]


def astronaut() -> np.ndarray:
    from skimage import data

    return data.astronaut()


def make_photo(path: Path, shift: int = 0, flip: bool = False) -> Path:
    from PIL import Image

    img = np.roll(astronaut(), shift, axis=1)
    if flip:
        img = img[:, ::-1]
    Image.fromarray(np.ascontiguousarray(img)).save(path)
    return Path(path)


def make_video(path: Path, frames: int, step: int = 2, fps: float = 10.0) -> Path:
    """The astronaut (192x192) sliding ``step`` px a frame, H.264."""
    from PIL import Image

    from bdmm_cli.video import VideoWriter

    small = np.asarray(Image.fromarray(astronaut()).resize((192, 192)))
    with VideoWriter(path, fps, (192, 192)) as w:
        for i in range(frames):
            w.write(np.ascontiguousarray(np.roll(small, step * i, axis=1)))
    return Path(path)


def make_corrupt_video(path: Path) -> Path:
    Path(path).write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(4000))
    return Path(path)


def make_blank_photo(path: Path) -> Path:
    from PIL import Image

    Image.fromarray(np.full((160, 120, 3), 128, np.uint8)).save(path)
    return Path(path)


def make_models(root: Path) -> dict:
    """Tiny generator folder, synthetic SMPL body, random SPIN weights."""
    return {"weights": tiny_generator_dir(root), "smpl": synthetic_body(root), "spin": random_spin(root / "spin_ckpt.pth")}


def options(models: dict) -> list[str]:
    """The CLI options shared by `bdmm animate` and `bdmm batch` in these tests."""
    return ["--weights", str(models["weights"]), "--smpl", str(models["smpl"]), "--pose-weights", str(models["spin"]),
            "--keypoints", "mediapipe", "--model-size", str(MODEL_SIZE), "--size", str(MODEL_SIZE),
            "--device", "cpu", "--skip-missing"]


def config(models: dict, **kw):
    """The same settings as :func:`options`, for the Python API."""
    from bdmm_cli.pipeline import AnimateConfig

    return AnimateConfig(weights=str(models["weights"]), smpl=Path(models["smpl"]), pose_weights=str(models["spin"]),
                         keypoints="mediapipe", model_size=MODEL_SIZE, size=MODEL_SIZE, device="cpu",
                         skip_missing=True, **kw)


def write_csv(path: Path, rows: list[dict], columns=("photo", "video")) -> Path:
    import csv

    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(columns))
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k, "") for k in columns})
    return Path(path)


def child_env(cache: Path) -> dict:
    """Environment of the bdmm processes a test starts (this checkout, one thread, own cache)."""
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO), BDMM_CACHE_DIR=str(cache))


def bdmm(*args: str) -> list[str]:
    return [sys.executable, "-m", "bdmm_cli", *args]


def torchrun(nproc: int, *args: str) -> list[str]:
    """`torchrun --nproc-per-node N -m bdmm_cli ARGS` (on this checkout, gloo on the CPU)."""
    return [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", str(nproc),
            "--master-addr", "127.0.0.1", "--master-port", str(free_port()), "-m", "bdmm_cli", *args]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def decode(path: Path) -> np.ndarray:
    from bdmm_cli.video import iter_frames

    return np.stack(list(iter_frames(path)))
