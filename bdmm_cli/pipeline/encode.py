"""The output writer of the pipeline: `bdmm_cli.video.VideoWriter` with an exact-length audio mux.

`VideoWriter` muxes the audio with ffmpeg's ``-shortest``, which cuts the *video* when the
driving video's audio track is a little shorter than its pictures (common: AAC ends on a
1024-sample boundary), so the output lost its last frame(s). Here the video stream is copied
whole and only the audio is cut, with ``-t`` = frames / fps, so the output always has exactly
the frames that were written. (Workaround kept in the pipeline's own file; the same change
belongs in ``VideoWriter._mux_audio``.)
"""

from __future__ import annotations

import subprocess

from bdmm_cli.video import VideoWriter
from bdmm_cli.video.write import _ffmpeg_error


class OutputWriter(VideoWriter):
    """`VideoWriter` whose audio mux never drops video frames (see the module docstring)."""

    def _mux_audio(self) -> None:
        import imageio_ffmpeg

        duration = self.frames_written / self.fps
        base = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-i", str(self._video_tmp)]
        base += ["-ss", f"{self.audio_start:.6f}", "-i", str(self.audio_from)]
        base += ["-map", "0:v:0", "-map", "1:a:0?", "-c:v", "copy", "-t", f"{duration:.6f}", "-movflags", "+faststart"]
        proc = None
        for acodec in ("copy", "aac"):
            proc = subprocess.run(base + ["-c:a", acodec, str(self._tmp)], capture_output=True, text=True)
            if proc.returncode == 0:
                return
        raise _ffmpeg_error(self.path, RuntimeError(proc.stderr if proc is not None else "ffmpeg failed"))


__all__ = ["OutputWriter"]
