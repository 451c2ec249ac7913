"""Stand-ins for the `bdmm ui` tests: what `bdmm ui` loads (tiny generator, synthetic SMPL-format
body, SPIN with random weights; MediaPipe keypoints) and a driving video made from the sample
photo, so the page runs the real pose path on real uploads."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from animate_helpers import MODEL_SIZE, random_spin, synthetic_body, tiny_generator_dir

REPO = Path(__file__).resolve().parents[1]
PERSON = REPO / "assets" / "person.jpg"


def person_video(path: Path, frames: int = 8, fps: float = 10.0) -> Path:
    """An H.264 MP4 (256x256, no audio) of ``assets/person.jpg`` sliding 3 px right a frame."""
    from bdmm_cli.video import VideoWriter, read_image

    photo = read_image(PERSON)
    with VideoWriter(path, fps, (photo.shape[1], photo.shape[0])) as writer:
        for i in range(frames):
            writer.write(np.ascontiguousarray(np.roll(photo, 3 * i, axis=1)))
    return path


def ui_env(root: Path) -> dict:
    """Weights, body model and SPIN file for `bdmm ui` under ``root``."""
    root = Path(root)
    return {"weights": tiny_generator_dir(root), "smpl": synthetic_body(root),
            "spin": random_spin(root / "spin_ckpt.pth")}


def load_settings(env: dict):
    from bdmm_cli.pipeline import LoadSettings

    return LoadSettings(weights=str(env["weights"]), smpl=env["smpl"], pose_weights=str(env["spin"]),
                        keypoints="mediapipe", device="cpu", rasterizer="torch")


def ui_args(env: dict, *extra: str) -> list[str]:
    """`bdmm ui` arguments that load ``env`` (model and output size: the tests' 128)."""
    return ["ui", "--weights", str(env["weights"]), "--smpl", str(env["smpl"]), "--pose-weights", str(env["spin"]),
            "--keypoints", "mediapipe", "--device", "cpu", "--rasterizer", "torch",
            "--model-size", str(MODEL_SIZE), "--size", str(MODEL_SIZE), *extra]
