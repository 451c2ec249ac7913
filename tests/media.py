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


def make_media(path: Path, lavfi: str, args: list[str], frames: int | None = None, pre: list[str] | None = None) -> Path:
    """Any test video: ffmpeg ``-f lavfi -i <lavfi>`` then ``args`` (codec, pixel format, ...)."""
    cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y"] + (pre or []) + ["-f", "lavfi", "-i", lavfi]
    if frames is not None:
        cmd += ["-frames:v", str(frames)]
    subprocess.run(cmd + args + [str(path)], check=True)
    return path


def ffmpeg(*args: str) -> None:
    """Run the bundled ffmpeg quietly (raises on failure)."""
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


import contextlib  # noqa: E402
import os  # noqa: E402


@contextlib.contextmanager
def small_tmpfs(path: Path, size: str = "1m", readonly: bool = False):
    """A real, tiny file system mounted at `path`, read-only if asked (root only; the test is
    skipped otherwise)."""
    import pytest

    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    opts = f"size={size}" + (",ro" if readonly else "")
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)], capture_output=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.decode(errors='replace').strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)
