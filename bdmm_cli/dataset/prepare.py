"""`bdmm data prepare`: a folder of videos -> the official layout, ready for `bdmm train`.

    VIDEOS_DIR/a.mp4, b.mp4, ...            (or VIDEOS_DIR/train/*.mp4 + VIDEOS_DIR/test/*.mp4)
      -> DATA_DIR/train/a.mp4/frames/frame_00000.png + kptsmpls/frame_00000.json
         DATA_DIR/test/<video>/...          (the last `test_fraction` of the videos, or test/)
         DATA_DIR/test_list.csv             (one sequence per test video: frame 0 drives all)

Each video runs through the pose front-end (`bdmm_cli.pose.estimate_video`: BODY_25
keypoints, 256x256 person crop, SPIN/HMR SMPL, smoothing), written by
`bdmm_cli.dataset.pose_dir.write_pose_dir` (frames without a person are skipped, as in the authors'
data; so are frames the authors' head-size rule drops, ``PosedFrame.dropped``, counted
separately in ``PreparedVideo.dropped``). A video in which nobody is found is skipped with
a warning.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from bdmm_cli.dataset.layout import OfficialDataset, default_test_list, write_test_list
from bdmm_cli.errors import InputError

VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v")


@dataclass(frozen=True)
class PreparedVideo:
    split: str
    name: str
    frames: int                 # frames written (with a person)
    skipped: tuple[int, ...]    # frame indices without a person
    dropped: tuple[int, ...] = ()  # frames with a person dropped by the authors' head-size rule


@dataclass
class PrepareReport:
    videos: list[PreparedVideo] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)   # (video, reason)
    test_list: Path | None = None


def _videos_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)


def plan_splits(videos_dir: Path, test_fraction: float = 0.0) -> list[tuple[str, Path]]:
    """(split, video) pairs: train/ and test/ subfolders are kept; otherwise the last
    round(test_fraction * N) videos (sorted by name) go to test."""
    videos_dir = Path(videos_dir)
    if not videos_dir.is_dir():
        raise InputError(f"videos folder {videos_dir} does not exist")
    if not 0.0 <= test_fraction < 1.0:
        raise InputError(f"test fraction must be in [0, 1), got {test_fraction}")
    subdirs = [s for s in ("train", "test") if (videos_dir / s).is_dir()]
    if subdirs:
        plan = [(s, v) for s in subdirs for v in _videos_in(videos_dir / s)]
    else:
        videos = _videos_in(videos_dir)
        n_test = int(math.floor(test_fraction * len(videos) + 0.5)) if len(videos) > 1 else 0
        plan = [("train", v) for v in videos[: len(videos) - n_test]] + [("test", v) for v in videos[len(videos) - n_test:]]
    if not plan:
        raise InputError(f"no videos ({', '.join(VIDEO_SUFFIXES)}) found in {videos_dir}")
    return plan


def prepare_dataset(
    videos_dir: Path,
    out_dir: Path,
    estimate: Callable[[Path], Iterable],
    test_fraction: float = 0.0,
    force: bool = False,
    on_video: Callable[[int, int, str], None] | None = None,
) -> PrepareReport:
    """Write the official layout for every video of `videos_dir` into `out_dir`.

    `estimate(video_path)` yields `bdmm_cli.dataset.pose_dir.PosedFrame`s (e.g.
    `lambda p: estimate_video(p, estimator)`). `on_video(i, n, name)` reports progress.
    An existing non-empty `out_dir` is refused unless `force` (videos are then replaced).
    """
    from bdmm_cli.dataset.pose_dir import write_pose_dir

    out_dir = Path(out_dir).expanduser()
    plan = plan_splits(videos_dir, test_fraction)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"output {out_dir} exists and is not a directory")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not force:
        raise InputError(f"output directory {out_dir} is not empty; use --force to add to it / replace its videos")
    if not out_dir.parent.is_dir():
        raise InputError(f"output directory {out_dir.parent} does not exist")
    report = PrepareReport()
    for i, (split, video) in enumerate(plan):
        if on_video is not None:
            on_video(i, len(plan), video.name)
        (out_dir / split).mkdir(parents=True, exist_ok=True)
        dropped: list[int] = []

        def note(frame) -> None:
            if frame.pose is None and getattr(frame, "dropped", None):
                dropped.append(frame.index)

        try:
            written, missing = write_pose_dir(iter(estimate(video)), out_dir / split / video.name, force=force,
                                              on_frame=note)
        except InputError as exc:
            report.failed.append((video.name, str(exc)))
            continue
        report.videos.append(PreparedVideo(split, video.name, written,
                                           tuple(i for i in missing if i not in set(dropped)), tuple(dropped)))
    if not report.videos:
        reasons = "; ".join(f"{n}: {r}" for n, r in report.failed[:3])
        raise InputError(f"no video could be prepared ({reasons})")
    if any(v.split == "test" for v in report.videos):
        seqs = default_test_list(OfficialDataset(out_dir, "test"))
        report.test_list = write_test_list(out_dir / "test_list.csv", seqs, out_dir, force=True)
    return report
