"""Streaming video decode with the bundled ffmpeg, checked end to end.

`iter_frames` holds one frame at a time, so a video of any length is read in constant
memory. `probe_video` reads only the container header. What real files need:

- **rotation**: phone videos store portrait footage as landscape plus a display matrix;
  ffmpeg applies it while decoding and `probe_video` reports the rotated size.
- **variable frame rate** (phones): when the average rate differs from the nominal one,
  frames are resampled by their timestamps to a constant rate equal to the average
  (``-fps_mode cfr``), so a video written at `VideoInfo.fps` lasts as long as the input
  and stays in sync with its audio.
- **truncation**: a stream that ends early (ffmpeg reports "partial file", or fewer frames
  than the header announces) is an InputError naming both frame counts, unless truncated
  input is allowed (``allow_truncated=True`` or inside `allowing_truncated()`), which
  turns it into a `BdmmWarning` with the same numbers.
- **any pixel format ffmpeg decodes** (10-bit, HEVC, 4:4:4, odd sizes): frames are
  converted to 8-bit RGB by ffmpeg.

ffmpeg's own messages never reach the user: they are read, and the known causes become
one sentence (`ffmpeg_reason`).
"""

from __future__ import annotations

import contextlib
import contextvars
import re
import subprocess
import tempfile
import warnings
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np

from bdmm_cli.errors import BdmmWarning, InputError

#: A rate counts as variable when the average frame rate and the nominal one differ by more.
VFR_TOLERANCE = 0.01
#: Fewer decoded frames than announced, by more than this share (and 3 frames), is truncation.
SHORTFALL = 0.25

_allow_truncated: contextvars.ContextVar[bool] = contextvars.ContextVar("bdmm_allow_truncated", default=False)


@contextlib.contextmanager
def allowing_truncated(allow: bool = True) -> Iterator[None]:
    """Within the block, truncated videos give a `BdmmWarning` instead of an InputError."""
    token = _allow_truncated.set(allow)
    try:
        yield
    finally:
        _allow_truncated.reset(token)


@dataclass(frozen=True)
class VideoInfo:
    """What the container header says about a video.

    Attributes:
        path: the file.
        fps: frames per second of the decoded frames (float; 0 when ffmpeg could not
            tell): the average rate, which for a variable-rate video is the rate frames
            are resampled to.
        width, height: frame size in pixels after rotation metadata is applied.
        duration: seconds (0 when unknown).
        num_frames: round(fps * duration), the frames the header announces; the exact
            count is what `iter_frames` yields (or `count_frames`).
        codec: video codec name, e.g. "h264".
        audio_codec: audio codec name, or None when the file has no audio stream.
        rotation: display rotation in degrees applied while decoding (0, 90, 180, 270).
        variable_rate: True when the nominal rate differs from the average one.
        pix_fmt: the stream's pixel format, e.g. "yuv420p10le".
    """

    path: Path
    fps: float
    width: int
    height: int
    duration: float
    num_frames: int
    codec: str
    audio_codec: str | None
    rotation: int = 0
    variable_rate: bool = False
    pix_fmt: str = ""

    @property
    def has_audio(self) -> bool:
        return self.audio_codec is not None

    @property
    def rate(self) -> Fraction:
        """`fps` as an exact fraction (29.97 -> 30000/1001)."""
        return exact_rate(self.fps)


def exact_rate(fps: float) -> Fraction:
    """The frame rate ffmpeg prints rounded (29.97, 23.98, 59.94) as the NTSC fraction it is."""
    for base in (24, 30, 48, 60, 120, 240):
        ntsc = Fraction(base * 1000, 1001)
        if abs(fps - float(ntsc)) < 0.006:
            return ntsc
    return Fraction(fps).limit_denominator(1000)


def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


_REASONS = (
    ("moov atom not found", "the file is incomplete (no index): an interrupted recording, copy or download?"),
    ("partial file", "the file is truncated (it ends in the middle of the video)"),
    ("No space left", "no space left on the device"),
    ("Permission denied", "permission denied"),
    ("Invalid data found", "not a video file, or damaged"),
    ("does not contain any stream", "the file holds no video stream"),
    ("Output file does not contain any stream", "the file holds no video stream"),
    ("Decoder (codec", "its codec is not supported by the bundled ffmpeg"),
    ("Unknown decoder", "its codec is not supported by the bundled ffmpeg"),
    ("could not find codec parameters", "ffmpeg cannot find its video parameters (damaged or unusual file)"),
    ("EBML header parsing failed", "not a video file, or damaged"),
)


def ffmpeg_reason(text: str, default: str = "ffmpeg cannot decode it") -> str:
    """One plain sentence for what ffmpeg's log says went wrong (never ffmpeg's own lines)."""
    for needle, reason in _REASONS:
        if needle.lower() in text.lower():
            return reason
    return default


@dataclass(frozen=True)
class _Header:
    info: VideoInfo
    stream: int  # ordinal among the video streams (for -map 0:v:N)
    nominal: float


def _number(text: str) -> float:
    text = text.strip()
    scale = 1000.0 if text.endswith("k") else 1.0
    return float(text.rstrip("k")) * scale


def _parse_header(path: Path, text: str) -> _Header:
    duration = 0.0
    m = re.search(r"Duration:\s*(\d+):(\d+):(\d+(?:\.\d+)?)", text)
    if m:
        duration = int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3))
    lines = text.splitlines()
    video_line, video_ordinal, ordinal, audio_codec, rotation = None, 0, 0, None, 0
    for i, line in enumerate(lines):
        s = re.search(r"Stream #\d+:\d+.*?: (Video|Audio): ([\w-]+)", line)
        if not s:
            continue
        if s.group(1) == "Audio":
            audio_codec = audio_codec or s.group(2)
            continue
        if "attached pic" in line:
            ordinal += 1
            continue
        if video_line is None:
            video_line, video_ordinal = line, ordinal
            for follow in lines[i + 1 : i + 12]:
                if "Stream #" in follow:
                    break
                r = re.search(r"rotation of (-?\d+(?:\.\d+)?) degrees", follow) or re.search(
                    r"rotate\s*:\s*(-?\d+)", follow)
                if r:
                    rotation = int(round(float(r.group(1)))) % 360
        ordinal += 1
    if video_line is None:
        raise InputError(f"cannot read video {path}: it holds no video stream (audio only, or not a video)")
    codec = re.search(r": Video: ([\w-]+)", video_line).group(1)
    size = re.search(r"[ ,](\d{1,5})x(\d{1,5})[ ,\[]", video_line + " ")
    if not size:
        raise InputError(f"cannot read video {path}: ffmpeg cannot tell its frame size (damaged or unusual file)")
    width, height = int(size.group(1)), int(size.group(2))
    if rotation in (90, 270):
        width, height = height, width
    fps_m = re.search(r"([\d.]+k?) fps", video_line)
    tbr_m = re.search(r"([\d.]+k?) tbr", video_line)
    fps = _number(fps_m.group(1)) if fps_m else 0.0
    nominal = _number(tbr_m.group(1)) if tbr_m else fps
    if not fps:
        fps = nominal
    variable = bool(fps and nominal and abs(fps - nominal) > VFR_TOLERANCE * nominal)
    pix = re.search(r": Video: [^,]*, (\w+)", video_line)
    info = VideoInfo(
        path=path, fps=fps, width=width, height=height, duration=duration,
        num_frames=int(round(fps * duration)), codec=codec, audio_codec=audio_codec,
        rotation=rotation, variable_rate=variable, pix_fmt=pix.group(1) if pix else "",
    )
    return _Header(info, video_ordinal, nominal)


def _header(path: Path) -> _Header:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"video not found: {path}")
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)],
                          capture_output=True, text=True, errors="replace")
    text = proc.stderr
    if "Input #0" not in text:
        raise InputError(f"cannot read video {path}: {ffmpeg_reason(text, 'not a video ffmpeg can decode')}")
    return _parse_header(path, text)


def probe_video(path: str | Path) -> VideoInfo:
    """Header information of a video; InputError when it is missing or not a video."""
    return _header(Path(path)).info


def _decode_command(path: Path, head: _Header) -> list[str]:
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-i", str(path),
           "-map", f"0:v:{head.stream}", "-an", "-sn"]
    if head.info.variable_rate:  # resample by timestamps to the average rate (keeps duration and sync)
        cmd += ["-fps_mode", "cfr", "-r", str(head.info.rate)]
        if head.info.duration:  # no frames duplicated past the end of the input
            cmd += ["-t", f"{head.info.duration:.6f}"]
    else:
        cmd += ["-fps_mode", "passthrough"]
    return cmd + ["-f", "rawvideo", "-pix_fmt", "rgb24", "-"]


def iter_frames(
    path: str | Path, start: int = 0, stop: int | None = None, allow_truncated: bool | None = None
) -> Iterator[np.ndarray]:
    """Yield frames `start` (inclusive) to `stop` (exclusive) as (H, W, 3) uint8 RGB.

    Decoding is streamed; frames before `start` are decoded and dropped so indices are
    exact. Raises InputError if the video cannot be opened or yields no frame at all, if
    decoding fails part-way, or when the video is truncated (see the module docstring;
    `allow_truncated` None means: as `allowing_truncated` says).
    """
    path = Path(path)
    if start < 0 or (stop is not None and stop < start):
        raise ValueError(f"invalid frame range {start}:{stop}")
    head = _header(path)
    info = head.info
    nbytes = info.width * info.height * 3
    allow = _allow_truncated.get() if allow_truncated is None else allow_truncated
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(_decode_command(path, head), stdout=subprocess.PIPE, stderr=log,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    count = 0
    finished = False
    try:
        while stop is None or count < stop:
            buf = proc.stdout.read(nbytes)
            if not buf:
                finished = True
                break
            if len(buf) != nbytes:
                finished = True
                break  # a partial last frame: the stream was cut
            if count >= start:
                yield np.frombuffer(buf, dtype=np.uint8).reshape(info.height, info.width, 3)
            count += 1
    finally:
        if not finished:
            proc.kill()
        proc.stdout.close()
        code = proc.wait()
        log.seek(0)
        text = log.read().decode(errors="replace")
        log.close()
    if not finished:
        return
    cut = "partial file" in text
    if code != 0 and not cut:
        raise InputError(f"cannot read video {path}: decoding failed after frame {count - 1} "
                         f"({ffmpeg_reason(text)})")
    _check_complete(path, info, count, cut, allow and count > 0)
    if count == 0:
        raise InputError(f"video {path} has no frames")
    if count <= start:
        return


def _check_complete(path: Path, info: VideoInfo, count: int, cut: bool, allow: bool) -> None:
    announced = info.num_frames
    short = announced and count < announced - max(3, SHORTFALL * announced)
    if not (cut or short):
        return
    what = f"{count} of the {announced} frames its header announces" if announced else f"only {count} frames"
    if allow:
        warnings.warn(BdmmWarning(f"{path} is truncated: decoded {what}; using those {count} frames"),
                      stacklevel=3)
        return
    raise InputError(f"{path} is truncated: ffmpeg decoded {what}; re-export or re-download it, "
                     "or pass --allow-truncated to use the frames that are there")


def count_frames(path: str | Path) -> int:
    """Exact number of frames `iter_frames` yields (decodes the whole video; constant memory)."""
    return sum(1 for _ in iter_frames(path))


__all__ = [
    "SHORTFALL",
    "VideoInfo",
    "allowing_truncated",
    "count_frames",
    "exact_rate",
    "ffmpeg_reason",
    "iter_frames",
    "probe_video",
]
