"""Test media made on the fly with the bundled ffmpeg (no files shipped)."""

from __future__ import annotations

import subprocess
from pathlib import Path


def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def make_test_video(
    path: Path, frames: int = 25, fps: float = 25.0, size: tuple[int, int] = (64, 48), audio: bool = True
) -> Path:
    """An H.264 MP4 of `frames` frames of ffmpeg's `testsrc` pattern, with a 440 Hz tone if `audio`."""
    width, height = size
    cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
           "-f", "lavfi", "-i", f"testsrc=size={width}x{height}:rate={fps}"]
    if audio:
        cmd += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100", "-c:a", "aac"]
    cmd += ["-frames:v", str(frames), "-c:v", "libx264", "-pix_fmt", "yuv420p"]
    if audio:
        cmd += ["-shortest"]
    subprocess.run(cmd + [str(path)], check=True)
    return path
