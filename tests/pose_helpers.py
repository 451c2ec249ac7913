"""Shared builders for the pose tests: the real test photo, a video with people and gaps."""

from __future__ import annotations

import math
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


def one_euro_reference(samples, freq=15.0, mincutoff=1.0, beta=0.05, dcutoff=1.0) -> list[float]:
    """The One-Euro filter written out for one scalar coordinate, straight from the formula in
    docs/openpose.md section 5 (first sample: dx_hat 0, y = x); the tests' independent
    expectation for pose.filters."""
    def alpha(cutoff):
        tau = 1.0 / (2 * math.pi * cutoff)
        return 1.0 / (1.0 + tau * freq)

    out, x_prev, dx_hat, y_prev = [], None, None, None
    for x in samples:
        if x_prev is None:
            dx_hat, y = 0.0, x
        else:
            dx = (x - x_prev) * freq
            dx_hat = alpha(dcutoff) * dx + (1 - alpha(dcutoff)) * dx_hat
            a = alpha(mincutoff + beta * abs(dx_hat))
            y = a * x + (1 - a) * y_prev
        x_prev, y_prev = x, y
        out.append(y)
    return out


class SequenceDetector:
    """A KeypointDetector for tests: returns the (25, 3) keypoints ``seq[i]`` of the frame whose
    first pixel reads ``10 * i + 5`` (None where ``seq[i]`` is None)."""

    name = "sequence-test-detector"

    def __init__(self, seq):
        self.seq = seq

    def __call__(self, rgb):
        from bdmm_cli.pose.body25 import Body25

        kp = self.seq[int(rgb[0, 0, 0]) // 10]
        return None if kp is None else Body25(kp)

