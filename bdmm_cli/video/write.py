"""H.264 MP4 output at a given frame rate, with the driving video's audio, written atomically.

Before the temporary file is published (`fileio.atomic_output`), the result is checked:
the encoder's exit status, then the file is decoded back (`iter_frames`), which must give
exactly the frames written, in a container ffmpeg can play. A full disk, a killed encoder
or a damaged result is an InputError and leaves nothing behind.
"""

from __future__ import annotations

import errno
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from bdmm_cli.errors import InputError
from bdmm_cli.fileio import atomic_output
from bdmm_cli.video.read import exact_rate, ffmpeg_exe, ffmpeg_reason

#: Free bytes below which an encoder failure is reported as a full disk.
_FULL = 64 * 1024


def _write_error(path: Path, log: str, step: str) -> InputError:
    """One line for a failed ffmpeg step (never ffmpeg's own text)."""
    parent = path.parent if str(path.parent) else Path(".")
    try:
        full = shutil.disk_usage(parent).free < _FULL
    except OSError:
        full = False
    if full or "No space left" in log:
        return InputError(f"no space left on the device while writing {path}; free some space and run again")
    return InputError(f"cannot write video {path}: {step} failed ({ffmpeg_reason(log, 'ffmpeg stopped with an error')})")


def _run(cmd: list[str]) -> tuple[int, str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace", stdin=subprocess.DEVNULL)
    return proc.returncode, proc.stderr


class VideoWriter:
    """Write frames to an H.264 (yuv420p) MP4, optionally with another file's audio.

    Use as a context manager. Frames go to a temporary file beside `path`, which is
    checked (encoder exit status, frame count decoded back, playable container) and
    published onto `path` only when the block ends without an exception; on error or
    Ctrl-C nothing is left behind. An existing `path` is refused unless `force`, also
    when another process creates it while this one writes.

    Args:
        path: output file (.mp4).
        fps: frame rate of the output (the driving video's).
        size: (width, height) of every frame; both must be even (yuv420p).
        audio_from: a media file whose first audio stream is copied (re-encoded to AAC
            when its codec cannot go into MP4); None for no audio.
        audio_start: seconds into `audio_from` where the output's audio starts (for
            `--frames A:B`). The audio is cut to the video's length.
        force: overwrite an existing `path`.
        quality: 1..10 (10 best; CRF = int((1 - quality / 10) * 51), as imageio-ffmpeg maps it).
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
        self._proc: subprocess.Popen | None = None
        self._log = None

    def _encode_command(self) -> list[str]:
        width, height = self.size
        crf = int((1 - self.quality / 10.0) * 51)
        return [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
                "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", str(exact_rate(self.fps)),
                "-i", "-", "-an", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", str(crf),
                "-movflags", "+faststart", str(self._video_tmp)]

    def __enter__(self) -> "VideoWriter":
        self._atomic = atomic_output(self.path, force=self.force)
        self._tmp = self._atomic.__enter__()
        self._video_tmp = (
            self._tmp.with_name(self._tmp.name + ".video.mp4") if self.audio_from is not None else self._tmp
        )
        self._log = tempfile.TemporaryFile()
        self._proc = subprocess.Popen(self._encode_command(), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                      stderr=self._log, start_new_session=True)
        return self

    def write(self, frame: np.ndarray) -> None:
        """Append one (H, W, 3) uint8 RGB frame."""
        width, height = self.size
        if frame.shape != (height, width, 3) or frame.dtype != np.uint8:
            raise ValueError(f"expected a ({height}, {width}, 3) uint8 frame, got {frame.shape} {frame.dtype}")
        try:
            self._proc.stdin.write(np.ascontiguousarray(frame).tobytes())
        except (BrokenPipeError, OSError) as exc:  # the encoder stopped (disk full, killed, ...)
            code = self._proc.wait()
            if isinstance(exc, OSError) and exc.errno not in (errno.EPIPE, None) and code == 0:
                raise
            raise _write_error(self.path, self._log_text(), "encoding") from None
        self.frames_written += 1

    def _log_text(self) -> str:
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    def _finish_encoder(self) -> None:
        try:
            self._proc.stdin.close()
        except OSError:
            pass
        if self._proc.wait() != 0:
            raise _write_error(self.path, self._log_text(), "encoding")

    def _mux_audio(self) -> None:
        # Cut to the video's own length with -t (not -shortest, which would drop video
        # frames when the audio track ends a little before the pictures, as AAC often does).
        duration = self.frames_written / self.fps
        base = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", "-loglevel", "error", "-i", str(self._video_tmp)]
        base += ["-ss", f"{self.audio_start:.6f}", "-i", str(self.audio_from)]
        base += ["-map", "0:v:0", "-map", "1:a:0?", "-c:v", "copy", "-t", f"{duration:.6f}"]
        base += ["-movflags", "+faststart"]
        log = ""
        for acodec in ("copy", "aac"):
            code, log = _run(base + ["-c:a", acodec, str(self._tmp)])
            if code == 0:
                return
            if "No space left" in log:
                break
        raise _write_error(self.path, log, "adding the audio")

    def _verify(self) -> None:
        """The published file must decode back to exactly the frames written."""
        from bdmm_cli.video.read import iter_frames

        try:
            decoded = sum(1 for _ in iter_frames(self._tmp, allow_truncated=False))
        except InputError as exc:
            raise _write_error(self.path, str(exc), "checking the result") from None
        if decoded != self.frames_written:
            raise InputError(f"cannot write video {self.path}: the encoded file holds {decoded} frames, "
                             f"{self.frames_written} were written; nothing was saved")

    def _stop_encoder(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        if self._proc is not None and self._proc.stdin is not None:
            try:
                self._proc.stdin.close()
            except OSError:
                pass

    def __exit__(self, exc_type, exc, tb) -> bool:
        try:
            if exc_type is None:
                self._finish_encoder()
                if self.frames_written == 0:
                    raise InputError(f"no frames were written to {self.path}")
                if self.audio_from is not None:
                    self._mux_audio()
                self._verify()
            else:
                self._stop_encoder()
        except BaseException as inner:
            self._stop_encoder()
            self._atomic.__exit__(type(inner), inner, inner.__traceback__)
            self._cleanup()
            raise
        self._cleanup()
        # Publishes the temporary file on success, deletes it on error.
        return bool(self._atomic.__exit__(exc_type, exc, tb))

    def _cleanup(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._video_tmp is not None and self._video_tmp != self._tmp:
            self._video_tmp.unlink(missing_ok=True)
