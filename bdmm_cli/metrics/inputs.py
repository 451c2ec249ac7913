"""What `--pred` and `--gt` point at, and how their frames are paired.

Three layouts, the same on both sides:

  * a folder of frames (PNG/JPG files): one video, frames paired by file name;
  * a folder of videos: video files and/or sub-folders of frames (like the data set's
    `test_frames/<video>/`), videos paired by name (file stem or folder name);
  * a video file: one video, frames paired by index.

Anything that does not pair up (different names, counts, frame counts or frame sizes)
is an `InputError` naming the first difference. Frames are read lazily, one at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Literal, Sequence

import numpy as np

from bdmm_cli.errors import InputError
from bdmm_cli.video import iter_frames, read_image

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"})
VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".gif", ".m4v"})

Layout = Literal["frames", "videos", "video", "strips"]


def _is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def _is_video(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in VIDEO_EXTENSIONS and not path.name.startswith(".")


def _image_size(path: Path) -> tuple[int, int]:
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.size[1], im.size[0]
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read image {path}: {exc}") from exc


def _probe_video_file(path: Path) -> tuple[int, tuple[int, int]]:
    """(frame count, (H, W)) of a video file, by decoding it once with the bundled ffmpeg."""
    count = 0
    size = (0, 0)
    for frame in iter_frames(path):
        size = frame.shape[:2]
        count += 1
    return count, size


@dataclass(frozen=True)
class Video:
    """One video: a folder of frames or a video file.

    name:        pairing key (file stem or folder name)
    path:        the folder or file
    frame_paths: sorted frame files of a folder; () for a video file
    num_frames:  number of frames
    size:        (H, W) of the first frame (of its panel, for strips)
    panel:       None, or the 0-based panel of each frame file to read: the file is a strip
                 of square panels side by side and frame = columns panel*H:(panel+1)*H
                 (the authors' result strips, `metrics.strips`)
    """

    name: str
    path: Path
    frame_paths: tuple[Path, ...]
    num_frames: int
    size: tuple[int, int]
    panel: int | None = None

    @property
    def is_file(self) -> bool:
        return not self.frame_paths

    def frame_keys(self) -> list[str]:
        """Names that pair frames: file stems for a folder, indices for a video file."""
        if self.is_file:
            return [f"{i:06d}" for i in range(self.num_frames)]
        return [p.stem for p in self.frame_paths]

    def frames(self, indices: Sequence[int] | None = None) -> Iterator[np.ndarray]:
        """Yield (H, W, 3) uint8 RGB frames, all of them or those at `indices` (ascending)."""
        if indices is not None:
            indices = [int(i) for i in indices]
            if any(b < a for a, b in zip(indices, indices[1:])):
                raise ValueError("indices must be ascending")
        if not self.is_file:
            for i in indices if indices is not None else range(self.num_frames):
                frame = read_image(self.frame_paths[i])
                if self.panel is not None:
                    h = frame.shape[0]
                    frame = frame[:, self.panel * h:(self.panel + 1) * h]
                yield self._checked(frame, self.frame_paths[i])
            return
        wanted = None if indices is None else iter(indices)
        target = None if wanted is None else next(wanted, None)
        for i, frame in enumerate(iter_frames(self.path)):
            if wanted is None:
                yield self._checked(frame, self.path)
                continue
            while target is not None and target == i:
                yield self._checked(frame, self.path)
                target = next(wanted, None)
            if target is None:
                return
        if wanted is not None and target is not None:
            raise InputError(f"video {self.path} has fewer frames than {target + 1}")

    def _checked(self, frame: np.ndarray, where: Path) -> np.ndarray:
        if frame.shape[:2] != tuple(self.size):
            raise InputError(
                f"{where}: frame size {frame.shape[1]}x{frame.shape[0]} differs from the "
                f"video's first frame {self.size[1]}x{self.size[0]}"
            )
        return frame


def _frames_folder(path: Path, name: str | None = None) -> Video:
    frames = tuple(sorted((p for p in path.iterdir() if _is_image(p)), key=lambda p: p.name))
    if not frames:
        raise InputError(f"no image files in {path}")
    return Video(name or path.name, path, frames, len(frames), _image_size(frames[0]))


def _video_file(path: Path) -> Video:
    count, size = _probe_video_file(path)
    return Video(path.stem, path, (), count, size)


def load_videos(path: Path | str) -> tuple[Layout, list[Video]]:
    """Read a `--pred`/`--gt` argument: its layout and its videos, sorted by name."""
    path = Path(path).expanduser()
    if not path.exists():
        raise InputError(f"{path} does not exist")
    if path.is_file():
        if not _is_video(path):
            raise InputError(
                f"{path} is not a video file ({', '.join(sorted(VIDEO_EXTENSIONS))}) or a folder"
            )
        return "video", [_video_file(path)]
    entries = sorted(p for p in path.iterdir() if not p.name.startswith("."))
    images = [p for p in entries if _is_image(p)]
    videos = [p for p in entries if _is_video(p)]
    subdirs = [p for p in entries if p.is_dir() and any(_is_image(q) for q in p.iterdir())]
    if images and (videos or subdirs):
        raise InputError(
            f"{path} mixes image files with videos or frame folders; give one folder of "
            "frames, or one folder of videos"
        )
    if images:
        return "frames", [_frames_folder(path)]
    if not videos and not subdirs:
        raise InputError(f"{path} holds no frames, videos or frame folders")
    found = [_video_file(p) for p in videos] + [_frames_folder(p) for p in subdirs]
    names = [v.name for v in found]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InputError(f"{path}: more than one video named {dupes[0]!r}")
    return "videos", sorted(found, key=lambda v: v.name)


@dataclass(frozen=True)
class PairedVideos:
    """Predicted and ground-truth videos.

    layout:  "frames" | "videos" | "video" (the same for both sides)
    pred:    generated videos, sorted by name
    gt:      ground-truth videos; gt[i] pairs with pred[i] when paired for SSIM/PSNR/L1/LPIPS,
             an independent set (any count) when only FID/FVD are computed
    """

    layout: Layout
    pred: tuple[Video, ...]
    gt: tuple[Video, ...]

    @property
    def num_frames(self) -> int:
        return sum(v.num_frames for v in self.pred)

    def frame_pairs(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield (pred, gt) uint8 (H, W, 3) frame pairs, video by video."""
        for p, g in zip(self.pred, self.gt):
            for a, b in zip(p.frames(), g.frames()):
                if a.shape != b.shape:
                    raise InputError(
                        f"frame size differs: {p.name} {a.shape[1]}x{a.shape[0]} vs "
                        f"{b.shape[1]}x{b.shape[0]}"
                    )
                yield a, b


def _first_difference(a: Sequence[str], b: Sequence[str]) -> str:
    only_a = sorted(set(a) - set(b))
    only_b = sorted(set(b) - set(a))
    parts = []
    if only_a:
        parts.append(f"only in --pred: {', '.join(only_a[:3])}{' ...' if len(only_a) > 3 else ''}")
    if only_b:
        parts.append(f"only in --gt: {', '.join(only_b[:3])}{' ...' if len(only_b) > 3 else ''}")
    return "; ".join(parts)


def pair_inputs(pred: Path | str, gt: Path | str, paired_frames: bool = True) -> PairedVideos:
    """Pair `--pred` with `--gt` by name; InputError on any mismatch.

    With `paired_frames` (SSIM, PSNR, L1, LPIPS) video names must match, and every video
    pair must have the same frame names (or count, for video files) and frame size.
    Without it (FID, FVD only: two sets compared as distributions) only the layout must
    match; names, counts and sizes may differ (e.g. generated videos vs `train_frames/`).
    """
    pred_layout, pred_videos = load_videos(pred)
    gt_layout, gt_videos = load_videos(gt)
    if pred_layout != gt_layout:
        raise InputError(
            f"--pred is a {_describe(pred_layout)} but --gt is a {_describe(gt_layout)}; "
            "give the same kind of input on both sides"
        )
    if not paired_frames:  # FID / FVD compare two sets: no pairing needed
        return PairedVideos(pred_layout, tuple(pred_videos), tuple(gt_videos))
    pred_names = [v.name for v in pred_videos]
    gt_names = [v.name for v in gt_videos]
    if pred_layout == "videos" and pred_names != gt_names:
        raise InputError(
            f"--pred has {len(pred_names)} videos and --gt {len(gt_names)}, and their names "
            f"differ ({_first_difference(pred_names, gt_names)})"
        )
    for p, g in zip(pred_videos, gt_videos):
        label = "" if pred_layout != "videos" else f"video {p.name!r}: "
        if p.size != g.size:
            raise InputError(
                f"{label}frame size differs: --pred {p.size[1]}x{p.size[0]}, "
                f"--gt {g.size[1]}x{g.size[0]}"
            )
        if p.num_frames != g.num_frames:
            raise InputError(
                f"{label}--pred has {p.num_frames} frames and --gt {g.num_frames}"
            )
        if not p.is_file and not g.is_file and p.frame_keys() != g.frame_keys():
            raise InputError(
                f"{label}frame names differ ({_first_difference(p.frame_keys(), g.frame_keys())})"
            )
    return PairedVideos(pred_layout, tuple(pred_videos), tuple(gt_videos))


def _describe(layout: Layout) -> str:
    return {"frames": "folder of frames", "videos": "folder of videos", "video": "video file",
            "strips": "folder of result strips"}[layout]
