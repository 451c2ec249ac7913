"""The driving video as a stream of posed frames, with gaps (no person found) handled.

Every function here is a generator over ``PosedFrame`` records
(``bdmm_cli.dataset.pose_dir``: index, 256x256 RGB crop, FramePose or None) that holds at
most a few frames at a time, so the driving video streams through in constant memory:

- :func:`pose_dir_stream`: a pose folder written by ``bdmm pose`` merged with the video's
  frame indices (the folder has no file for frames without a person).
- :func:`estimate_driving`: the video through the pose front-end (``make_pose_estimator``),
  or replayed from the pose cache.
- :func:`fill_gaps`: frames without a pose either stop the run with a one-line error that
  names them, or (``skip_missing``) get a pose interpolated between the nearest posed
  frames on both sides (held from one side at the start or end of the video); a gap
  longer than ``max_gap`` frames is an error either way.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from bdmm_cli.dataset.kptsmpl import FramePose
from bdmm_cli.errors import InputError


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


def fill_gaps(frames: Iterable, video: Path, skip_missing: bool, max_gap: int) -> Iterator:
    """Yield every frame with a pose; see the module docstring for the rules.

    Holds at most ``max_gap + 1`` frames (the current gap) in memory.
    """
    gap: deque = deque()
    last = None  # last frame with a pose
    for frame in frames:
        if frame.pose is None:
            gap.append(frame)
            if len(gap) > max(max_gap, 1):  # without --skip-missing: look ahead this far to name the gap
                idx = [f.index for f in gap]
                hint = (
                    f"longer than the {max_gap}-frame gap --skip-missing interpolates"
                    if skip_missing
                    else "use --skip-missing to interpolate short gaps"
                )
                raise InputError(f"no person found in {_describe(idx)} and on of {video}; {hint}")
            continue
        if gap:
            idx = [f.index for f in gap]
            if not skip_missing:
                raise InputError(
                    f"no person found in {_describe(idx)} of {video}; "
                    f"use --skip-missing to interpolate gaps of up to {max_gap} frames"
                )
            n = len(gap) + 1
            for j, g in enumerate(gap, start=1):
                pose = frame.pose if last is None else interpolate_pose(last.pose, frame.pose, j / n)
                yield dataclasses.replace(g, pose=pose)
            gap.clear()
        last = frame
        yield frame
    if gap:
        idx = [f.index for f in gap]
        if not skip_missing or last is None:
            where = "any frame" if last is None else _describe(idx)
            hint = "" if last is None else f"; use --skip-missing to interpolate gaps of up to {max_gap} frames"
            raise InputError(f"no person found in {where} of {video}{hint}")
        for g in gap:
            yield dataclasses.replace(g, pose=last.pose)


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
    run finished it. Updates ``stats.pose_from_cache`` and ``stats.frames_posed``
    (an ``AnimateStats``)."""
    from bdmm_cli.pose.estimate import estimate_video

    stream = estimate_video(video, estimator, start=start, stop=stop, use_cache=use_cache)
    stats.pose_from_cache = stream.from_cache
    try:
        for frame in stream:
            if not stream.from_cache:
                stats.frames_posed += 1
            yield frame
    finally:
        stream.close()


__all__ = ["estimate_driving", "fill_gaps", "interpolate_pose", "make_pose_estimator", "pose_dir_stream"]
