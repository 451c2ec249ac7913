"""H.264 MP4 output at a given frame rate, with the driving video's audio, written atomically."""

from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np

from bdmm_cli.errors import InputError
from bdmm_cli.fileio import atomic_output


def _ffmpeg_error(path: Path, exc: BaseException) -> InputError:
    text = str(exc)
    if "No space left" in text:
        return InputError(f"no space left on the device while writing {path}")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return InputError(f"cannot write video {path}: {(lines or ['ffmpeg failed'])[-1][:200]}")


class VideoWriter:
    """Write frames to an H.264 (yuv420p) MP4, optionally with another file's audio.

    Use as a context manager. Frames go to a temporary file beside `path`, which is
    renamed onto `path` only when the block ends without an exception; on error or
    Ctrl-C nothing is left behind. An existing `path` is refused unless `force`.

    Args:
        path: output file (.mp4).
        fps: frame rate of the output (the driving video's).
        size: (width, height) of every frame; both must be even (yuv420p).
        audio_from: a media file whose first audio stream is copied (re-encoded to AAC
            when its codec cannot go into MP4); None for no audio.
        audio_start: seconds into `audio_from` where the output's audio starts (for
            `--frames A:B`). The audio is cut to the video's length.
        force: overwrite an existing `path`.
        quality: imageio-ffmpeg quality 1..10 (10 best; maps to x264 CRF).
    """

    def __init__(
        self,
        path: str | Path,
        fps: float,
        size: tuple[int, int],
        audio_from: str | Path | None = None,
        audio_start: float = 0.0,
        force: bool = False,
        quality: float = 8.0,
    ) -> None:
        width, height = size
        if width % 2 or height % 2 or width <= 0 or height <= 0:
            raise ValueError(f"frame size must be positive and even for yuv420p, got {width}x{height}")
        if not fps or fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.path = Path(path)
        self.fps = float(fps)
        self.size = (int(width), int(height))
        self.audio_from = Path(audio_from) if audio_from is not None else None
        self.audio_start = float(audio_start)
        self.force = force
        self.quality = quality
        self.frames_written = 0
        self._atomic = None
        self._tmp: Path | None = None
        self._video_tmp: Path | None = None
        self._gen = None

    def __enter__(self) -> "VideoWriter":
        import imageio_ffmpeg

        self._atomic = atomic_output(self.path, force=self.force)
        self._tmp = self._atomic.__enter__()
        self._video_tmp = (
            self._tmp.with_name(self._tmp.name + ".video.mp4") if self.audio_from is not None else self._tmp
        )
        self._gen = imageio_ffmpeg.write_frames(
            str(self._video_tmp),
            self.size,
            fps=Fraction(self.fps).limit_denominator(1001),
            codec="libx264",
            pix_fmt_out="yuv420p",
            quality=self.quality,
            macro_block_size=2,
            ffmpeg_log_level="error",
        )
        self._gen.send(None)
        return self

    def write(self, frame: np.ndarray) -> None:
        """Append one (H, W, 3) uint8 RGB frame."""
        width, height = self.size
        if frame.shape != (height, width, 3) or frame.dtype != np.uint8:
            raise ValueError(f"expected a ({height}, {width}, 3) uint8 frame, got {frame.shape} {frame.dtype}")
        try:
            self._gen.send(np.ascontiguousarray(frame))
        except (OSError, RuntimeError) as exc:
            raise _ffmpeg_error(self.path, exc) from exc
        self.frames_written += 1

    def _mux_audio(self) -> None:
        import imageio_ffmpeg

        # Cut to the video's own length with -t (not -shortest, which would drop video
        # frames when the audio track ends a little before the pictures, as AAC often does).
        duration = self.frames_written / self.fps
        base = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-i", str(self._video_tmp)]
        base += ["-ss", f"{self.audio_start:.6f}", "-i", str(self.audio_from)]
        base += ["-map", "0:v:0", "-map", "1:a:0?", "-c:v", "copy", "-t", f"{duration:.6f}"]
        base += ["-movflags", "+faststart"]
        proc = None
        for acodec in ("copy", "aac"):
            proc = subprocess.run(base + ["-c:a", acodec, str(self._tmp)], capture_output=True, text=True)
            if proc.returncode == 0:
                return
        raise _ffmpeg_error(self.path, RuntimeError(proc.stderr if proc is not None else "ffmpeg failed"))

    def __exit__(self, exc_type, exc, tb) -> bool:
        try:
            if self._gen is not None:
                try:
                    self._gen.close()
                except (OSError, RuntimeError) as close_exc:
                    if exc_type is None:
                        raise _ffmpeg_error(self.path, close_exc) from close_exc
            if exc_type is None:
                if self.frames_written == 0:
                    raise InputError(f"no frames were written to {self.path}")
                if self.audio_from is not None:
                    self._mux_audio()
        except BaseException as inner:
            self._atomic.__exit__(type(inner), inner, inner.__traceback__)
            self._cleanup_video_tmp()
            raise
        self._cleanup_video_tmp()
        # Renames the temporary file on success, deletes it on error.
        return bool(self._atomic.__exit__(exc_type, exc, tb))

    def _cleanup_video_tmp(self) -> None:
        if self._video_tmp is not None and self._video_tmp != self._tmp:
            self._video_tmp.unlink(missing_ok=True)
