"""Streaming video decode with the bundled ffmpeg.

`iter_frames` holds one frame at a time, so a video of any length is read in constant
memory. `probe_video` reads only the container header.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from bdmm_cli.errors import InputError


@dataclass(frozen=True)
class VideoInfo:
    """What the container header says about a video.

    Attributes:
        path: the file.
        fps: frames per second (float; 0 when ffmpeg could not tell).
        width, height: frame size in pixels after rotation metadata is applied.
        duration: seconds (0 when unknown).
        num_frames: round(fps * duration), an estimate good for progress bars; the exact
            count is what `iter_frames` yields (or `count_frames`).
        codec: video codec name, e.g. "h264".
        audio_codec: audio codec name, or None when the file has no audio stream.
    """

    path: Path
    fps: float
    width: int
    height: int
    duration: float
    num_frames: int
    codec: str
    audio_codec: str | None

    @property
    def has_audio(self) -> bool:
        return self.audio_codec is not None


def _open(path: Path, input_params: list[str] | None = None):
    import imageio_ffmpeg

    if not path.is_file():
        raise InputError(f"video not found: {path}")
    gen = imageio_ffmpeg.read_frames(str(path), input_params=input_params)
    try:
        meta = next(gen)
    except (OSError, RuntimeError, StopIteration) as exc:
        gen.close()
        raise InputError(f"cannot read video {path}: {_last_line(exc)}") from exc
    return gen, meta


def _last_line(exc: BaseException) -> str:
    text = str(exc)
    if "Stream #" in text and "Video:" not in text:
        return "no video stream (audio only?)"
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    useful = [ln for ln in lines if "Invalid data" in ln or "moov atom" in ln or "error" in ln.lower()]
    return (useful or lines or ["not a video ffmpeg can decode"])[-1][:200]


def probe_video(path: str | Path) -> VideoInfo:
    """Header information of a video; InputError when it is missing or not a video."""
    path = Path(path)
    gen, meta = _open(path)
    gen.close()
    width, height = meta.get("size") or (0, 0)
    if not width or not height:
        raise InputError(f"cannot read video {path}: no video stream")
    fps = float(meta.get("fps") or 0.0)
    duration = float(meta.get("duration") or 0.0)
    return VideoInfo(
        path=path,
        fps=fps,
        width=int(width),
        height=int(height),
        duration=duration,
        num_frames=int(round(fps * duration)),
        codec=str(meta.get("codec", "")),
        audio_codec=meta.get("audio_codec") or None,
    )


def iter_frames(path: str | Path, start: int = 0, stop: int | None = None) -> Iterator[np.ndarray]:
    """Yield frames `start` (inclusive) to `stop` (exclusive) as (H, W, 3) uint8 RGB.

    Decoding is streamed; frames before `start` are decoded and dropped so indices are
    exact. Raises InputError if the video cannot be opened or yields no frame at all,
    or if decoding fails part-way (a truncated or corrupt file).
    """
    path = Path(path)
    if start < 0 or (stop is not None and stop < start):
        raise ValueError(f"invalid frame range {start}:{stop}")
    gen, meta = _open(path)
    width, height = meta["size"]
    nbytes = width * height * 3
    index = -1
    try:
        for index, buf in enumerate(gen):
            if stop is not None and index >= stop:
                break
            if len(buf) != nbytes:
                raise InputError(f"cannot read video {path}: truncated frame {index}")
            if index >= start:
                yield np.frombuffer(buf, dtype=np.uint8).reshape(height, width, 3)
    except (OSError, RuntimeError) as exc:
        raise InputError(f"cannot read video {path}: decoding failed after frame {index}: {_last_line(exc)}") from exc
    finally:
        gen.close()
    if index < 0:
        raise InputError(f"video {path} has no frames")


def count_frames(path: str | Path) -> int:
    """Exact number of decodable frames (decodes the whole video; constant memory)."""
    import imageio_ffmpeg

    path = Path(path)
    probe_video(path)
    try:
        n, _ = imageio_ffmpeg.count_frames_and_secs(str(path))
    except (OSError, RuntimeError) as exc:
        raise InputError(f"cannot read video {path}: {_last_line(exc)}") from exc
    return int(n)
