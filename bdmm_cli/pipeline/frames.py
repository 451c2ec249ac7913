"""The driving video as a stream of posed frames, with gaps (no person found) handled.

Every function here is a generator over ``PosedFrame`` records
(``bdmm_cli.dataset.pose_dir``: index, 256x256 RGB crop, FramePose or None) that holds at
most a few frames at a time, so the driving video streams through in constant memory:

- :func:`pose_dir_stream`: a pose folder written by ``bdmm pose`` merged with the video's
  frame indices (the folder has no file for frames without a person).
- :func:`estimate_driving`: the video through the pose front-end (``make_pose_estimator``),
  or replayed from the pose cache.
- :func:`fill_gaps`: frames without a usable pose before the first and after the last
  posed frame are trimmed (one warning each) or held (``ends``); inside the clip they stop
  the run with a one-line error that names them, or (``skip_missing``) get a pose
  interpolated between the nearest posed frames on both sides; a gap longer than
  ``max_gap`` frames is an error either way.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from bdmm_cli.dataset.kptsmpl import FramePose
from bdmm_cli.errors import BdmmWarning, InputError


def interpolate_pose(a: FramePose, b: FramePose, alpha: float) -> FramePose:
    """Pose between ``a`` (alpha 0) and ``b`` (alpha 1).

    Joint rotations are interpolated along the geodesic (slerp of each of the 24 joints),
    keypoints, box, camera and shape linearly. A keypoint missing (x or y exactly 0) on
    either side stays missing.
    """
    from scipy.spatial.transform import Rotation

    ra = Rotation.from_rotvec(np.asarray(a.pose_theta, np.float64).reshape(24, 3))
    rb = Rotation.from_rotvec(np.asarray(b.pose_theta, np.float64).reshape(24, 3))
    delta = (ra.inv() * rb).as_rotvec()
    theta = (ra * Rotation.from_rotvec(alpha * delta)).as_rotvec().reshape(72)

    def lerp(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return (1.0 - alpha) * np.asarray(x, np.float64) + alpha * np.asarray(y, np.float64)

    kp = lerp(a.keypoints, b.keypoints)
    missing = (a.keypoints[:, 0] == 0) | (a.keypoints[:, 1] == 0) | (b.keypoints[:, 0] == 0) | (b.keypoints[:, 1] == 0)
    kp[missing, :2] = 0.0
    return FramePose(
        keypoints=kp,
        bbox_xyxy=lerp(a.bbox_xyxy, b.bbox_xyxy),
        cam=lerp(a.cam, b.cam),
        pose_theta=theta,
        shape_beta=lerp(a.shape_beta, b.shape_beta),
    )


def _describe(indices: list[int]) -> str:
    return f"frame {indices[0]}" if len(indices) == 1 else f"frames {indices[0]}-{indices[-1]}"


#: ``--ends`` choices: what happens to the frames without a person before the first and after
#: the last frame with one.
ENDS = ("trim", "hold")


@dataclass
class GapReport:
    """What :func:`fill_gaps` did with the frames without a usable pose.

    Attributes:
        first: index of the first frame passed on (None until there is one).
        lead: (first, last) indices of the frames before the first pose, when there are any.
        tail: (first, last) indices of the frames after the last pose, when there are any.
        filled: frames inside the clip whose pose was interpolated (``skip_missing``).
        failed_fits: frames with a person whose body fit failed (camera scale not positive);
            they count as frames without a person.
        frames_seen: frames that came in.
        ends: "trim" (lead and tail dropped) or "hold" (given the nearest pose).
    """

    first: int | None = None
    lead: tuple[int, int] | None = None
    tail: tuple[int, int] | None = None
    filled: int = 0
    failed_fits: list[int] = field(default_factory=list)
    frames_seen: int = 0
    ends: str = "trim"


def usable(pose: FramePose | None) -> bool:
    """A pose the generator can draw: present, with a positive camera scale (SPIN's weak
    perspective scale; a failed fit can give a negative one, which puts the body behind the camera)."""
    return pose is not None and float(pose.cam[0]) > 0


def _seconds(n: int, fps: float | None) -> str:
    return f" ({n / fps:.2f} s)" if fps else ""


def fill_gaps(frames: Iterable, video: Path, skip_missing: bool, max_gap: int, ends: str = "trim",
              report: GapReport | None = None, detector: str = "", fps: float | None = None) -> Iterator:
    """Yield the frames to animate, each with a usable pose (see :func:`usable`).

    - Frames before the first and after the last frame with a pose (a walker who enters late
      or leaves early): ``ends="trim"`` drops them with one ``BdmmWarning`` each that names the
      range and how much shorter the output is; ``ends="hold"`` gives them the nearest pose.
    - Gaps inside the clip: an error naming them, or, with ``skip_missing``, poses
      interpolated between the frames on both sides (:func:`interpolate_pose`) for gaps of
      up to ``max_gap`` frames; a longer gap is an error.
    - No pose in any frame: an error naming the ``detector`` and the other choice
      (``pose.detector.detector_hint``), without gap advice.

    A frame whose fit failed (camera scale not positive) is a frame without a person.
    ``report`` (a :class:`GapReport`) is filled in as the frames go. Memory: the frames of
    the current gap are held only while they may still be needed (an interpolated gap of at
    most ``max_gap`` frames; with ``ends="hold"``, the frames before the first pose and each
    gap, which is then bounded by the clip's length).
    """
    from bdmm_cli.pose.detector import detector_hint

    if ends not in ENDS:
        raise InputError(f"--ends must be one of {', '.join(ENDS)}, got {ends!r}")
    report = report if report is not None else GapReport()
    report.ends = ends
    gap: deque = deque()
    gap_idx: list[int] = []  # indices of the current gap (first, last kept)
    gap_len = 0
    gap_fits: list[tuple[int, float]] = []
    last = None  # last frame with a pose
    for frame in frames:
        report.frames_seen += 1
        if frame.pose is not None and not usable(frame.pose):
            report.failed_fits.append(frame.index)
            gap_fits.append((frame.index, float(frame.pose.cam[0])))
            frame = dataclasses.replace(frame, pose=None, dropped="fit failed")
        if frame.pose is None:
            gap_idx = [frame.index] if gap_len == 0 else [gap_idx[0], frame.index]
            gap_len += 1
            keep = ends == "hold" or (last is not None and skip_missing and gap_len <= max_gap)
            if keep:
                gap.append(frame)
            else:
                gap.clear()
            continue
        if gap_len:
            if last is None:  # the frames before the first pose
                report.lead = (gap_idx[0], gap_idx[-1])
                yield from _clip_end(gap, gap_idx, ends, frame.pose, report, video,
                                     f"starts at frame {frame.index}", fps, "first")
            else:
                if not skip_missing or gap_len > max_gap:
                    raise InputError(_gap_message(gap_idx, gap_len, gap_fits, video, skip_missing, max_gap))
                n = gap_len + 1
                for j, g in enumerate(gap, start=1):
                    report.filled += 1
                    yield dataclasses.replace(g, pose=interpolate_pose(last.pose, frame.pose, j / n))
            gap.clear()
            gap_len, gap_fits = 0, []
        last = frame
        if report.first is None:
            report.first = frame.index
        yield frame
    if last is None:
        if report.frames_seen == 0:
            return
        fits = (f" (in {len(report.failed_fits)} of them a person was found but the body fit failed)"
                if report.failed_fits else "")
        raise InputError(f"no person found in any of the {report.frames_seen} frames of {video}{fits}; "
                         f"{detector_hint(detector) if detector else 'check that one person is in view'}")
    if gap_len:
        report.tail = (gap_idx[0], gap_idx[-1])
        yield from _clip_end(gap, gap_idx, ends, last.pose, report, video, f"ends at frame {last.index}", fps, "last")


def _clip_end(gap, idx: list[int], ends: str, pose: FramePose, report: GapReport, video: Path, where: str,
              fps: float | None, nearest: str) -> Iterator:
    """The frames without a person at one end of the clip (indices ``idx``): left out with one
    warning (``ends="trim"``), or given the ``nearest`` pose (``"hold"``)."""
    if ends == "hold":
        for g in gap:
            yield _posed(g, pose, report)
        return
    n = idx[-1] - idx[0] + 1
    warnings.warn(BdmmWarning(
        f"no person in {_describe(idx)} of {video}: they are left out, so the output {where} and is {n} "
        f"frames{_seconds(n, fps)} shorter (--ends hold keeps them, with the {nearest} pose)"), stacklevel=4)


def _posed(frame, pose: FramePose, report: GapReport):
    if report.first is None:
        report.first = frame.index
    return dataclasses.replace(frame, pose=pose, dropped=None)


def _gap_message(idx: list[int], n: int, fits: list[tuple[int, float]], video: Path, skip_missing: bool,
                 max_gap: int) -> str:
    what = f"no person found in {_describe(idx)} of {video}"
    if fits and len(fits) == n:
        frame, scale = fits[0]
        what = (f"no usable pose in {_describe(idx)} of {video}: the body fit failed (camera scale "
                f"{scale:.3g} in frame {frame})")
    elif fits:
        what += f" (in {_describe([f for f, _ in fits])} a person was found but the body fit failed)"
    if skip_missing:
        return f"{what}: {n} frames, longer than the {max_gap}-frame gap --skip-missing fills (raise --max-gap)"
    return f"{what}; use --skip-missing to interpolate gaps of up to {max_gap} frames (--max-gap)"


def pose_dir_stream(pose_dir: Path, video_frames: Iterable[np.ndarray], start: int, stop: int | None) -> Iterator:
    """Merge a pose folder with the video's frame indices ``start..stop``.

    The folder's records (``read_pose_dir``) must be numbered like the video's frames;
    frames without a record get ``pose=None`` and the crop of the nearest earlier record
    (or the next one at the start). InputError when the folder has records past the end
    of the video.
    """
    from bdmm_cli.dataset.pose_dir import PosedFrame, read_pose_dir

    records = iter(read_pose_dir(pose_dir))
    pending = next(records, None)
    last_image = None
    waiting: list[int] = []
    count = 0
    for index, _ in enumerate(video_frames, start=start):
        count += 1
        while pending is not None and pending.index < index:
            pending = next(records, None)  # records before the frame range
        if pending is not None and pending.index == index:
            for w in waiting:  # frames before the first record: show its crop
                yield PosedFrame(index=w, image=pending.image, pose=None)
            waiting.clear()
            last_image = pending.image
            yield pending
            pending = next(records, None)
        elif last_image is None:
            waiting.append(index)
        else:
            yield PosedFrame(index=index, image=last_image, pose=None)
    if count == 0:
        raise InputError(f"the frame range {start}:{stop if stop is not None else ''} has no frames")
    if waiting:
        raise InputError(f"pose folder {pose_dir} has no pose for any frame of the range")
    if pending is not None and stop is None:
        raise InputError(
            f"pose folder {pose_dir} has frame {pending.index} but the video ends at frame {start + count - 1}; "
            "does it belong to this video?"
        )


def make_pose_estimator(pose_weights: str | None, device, keypoints: str = "auto"):
    """The pose front-end: keypoints (``--keypoints``: OpenPose or MediaPipe,
    ``pose.detector.load_keypoint_model``) + the SPIN/HMR regressor (``pose.hmr.load_pose_regressor``)."""
    from bdmm_cli.pose.estimate import build_estimator

    return build_estimator(pose_weights, device, keypoints)


def estimate_driving(video: Path, estimator, start: int, stop: int | None, use_cache: bool, stats) -> Iterator:
    """The driving video's frames ``start..stop`` through the pose front-end, replayed from
    the pose cache (``cache_dir()/pose``, keyed by content hash + settings) when an earlier
    run finished it. Updates ``stats.pose_from_cache``, ``stats.frames_posed`` and
    ``stats.follow`` (who was followed; an ``AnimateStats``)."""
    from bdmm_cli.pose.estimate import estimate_video

    stream = estimate_video(video, estimator, start=start, stop=stop, use_cache=use_cache)
    stats.pose_from_cache = stream.from_cache
    try:
        for frame in stream:
            if not stream.from_cache:
                stats.frames_posed += 1
            stats.follow = stream.follow
            yield frame
        stats.follow = stream.follow
    finally:
        stream.close()


__all__ = ["ENDS", "GapReport", "estimate_driving", "fill_gaps", "usable", "interpolate_pose", "make_pose_estimator", "pose_dir_stream"]
