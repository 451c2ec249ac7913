"""Shared builders for the pose tests: the real test photo, a video with people and gaps."""

from __future__ import annotations

from pathlib import Path

import numpy as np

DATA = Path(__file__).parent / "data"
ASTRONAUT = DATA / "astronaut_256.jpg"


def astronaut() -> np.ndarray:
    """(256, 256, 3) uint8 RGB: Eileen Collins, waist-up, facing the camera (public domain)."""
    from bdmm_cli.video import read_image

    return read_image(ASTRONAUT)


def make_person_video(path: Path, empty: tuple[int, ...] = (3, 4), frames: int = 7, fps: float = 10.0) -> Path:
    """An H.264 video (384x256) of the astronaut sliding right 8 px a frame on a grey
    background; the frames in `empty` show only the background (nobody in them)."""
    from bdmm_cli.video import VideoWriter

    person = astronaut()
    with VideoWriter(path, fps, (384, 256)) as writer:
        for i in range(frames):
            frame = np.full((256, 384, 3), 190, np.uint8)
            if i not in empty:
                frame[:, 8 * i:8 * i + 256] = person
            writer.write(frame)
    return path
