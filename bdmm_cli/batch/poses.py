"""Each photo's and each driving video's poses, estimated once for a whole batch.

:class:`BatchPoses` is the ``pose_source`` of an ``AnimatePipeline`` in ``bdmm batch``: the
first job that needs a photo (or a video's frame range) runs the pipeline's own pose
front-end on it and stores the result in ``<root>/<key>.npz``; every later job, in this
process or in another rank of the batch, reads it back. A file lock per key makes the
other processes wait for the one estimating instead of estimating again. The key is the
content hash of the input, the frame range and the pose front-end's fingerprint, so the
poses are exactly what ``bdmm animate`` estimates for the same input (stored as the
float32 / uint8 arrays the front-end produced: no rounding).

Layout of ``<key>.npz`` (N frames; a photo is one frame)::

    index (N,) int64, image (N, 256, 256, 3) uint8, has_pose (N,) bool, dropped (N,) str
    ('' = None), keypoints (N, 25, 3), bbox_xyxy (N, 4), cam (N, 3), pose_theta (N, 72),
    shape_beta (N, 10) float32 (zeros where has_pose is False), people () int64 (people the
    detector saw in a photo; -1 = it does not say)
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterator

import numpy as np

from bdmm_cli.dataset.kptsmpl import FramePose
from bdmm_cli.dataset.pose_dir import PosedFrame
from bdmm_cli.fileio import FileLock, atomic_write, tree_hash

_POSE_FIELDS = ("keypoints", "bbox_xyxy", "cam", "pose_theta", "shape_beta")
#: Photos kept in memory per process (the others are read back from ``root``).
MAX_PHOTOS_IN_MEMORY = 64
_EMPTY = {"keypoints": (25, 3), "bbox_xyxy": (4,), "cam": (3,), "pose_theta": (72,), "shape_beta": (10,)}


def pack_frames(frames: list[PosedFrame]) -> dict[str, np.ndarray]:
    """PosedFrames -> the arrays of one ``<key>.npz`` (see the module docstring)."""
    arrays = {
        "index": np.array([f.index for f in frames], np.int64),
        "image": np.stack([f.image for f in frames]).astype(np.uint8, copy=False),
        "has_pose": np.array([f.pose is not None for f in frames], bool),
        "dropped": np.array([f.dropped or "" for f in frames], str),
    }
    for name in _POSE_FIELDS:
        arrays[name] = np.stack([np.zeros(_EMPTY[name], np.float32) if f.pose is None else getattr(f.pose, name)
                                 for f in frames]).astype(np.float32, copy=False)
    return arrays


def unpack_frames(arrays) -> list[PosedFrame]:
    """The inverse of :func:`pack_frames`."""
    out = []
    for i in range(len(arrays["index"])):
        pose = FramePose(**{name: arrays[name][i] for name in _POSE_FIELDS}) if arrays["has_pose"][i] else None
        out.append(PosedFrame(int(arrays["index"][i]), arrays["image"][i], pose, str(arrays["dropped"][i]) or None))
    return out


class BatchPoses:
    """Pose source shared by the jobs of a batch (``AnimatePipeline.pose_source``).

    Args:
        root: folder for the stored poses (shared by all processes of the batch).
        pipeline: the ``AnimatePipeline`` whose pose front-end estimates (created on first use).

    Attributes:
        photos_estimated, videos_estimated: how many inputs this process ran the pose
            front-end on (the rest came from ``root``).
    """

    def __init__(self, root: Path, pipeline) -> None:
        self.root = Path(root)
        self.pipeline = pipeline
        self.photos_estimated = 0
        self.videos_estimated = 0
        self._memory: dict[str, list[PosedFrame]] = {}  # photos, and the last video used
        self._people: dict[str, int | None] = {}  # people seen in each photo
        self._seen: int | None = None

    def photo(self, photo: Path) -> PosedFrame:
        """The photo's crop and pose (``pose`` None when nobody is found)."""
        key = self._key("photo", Path(photo), 0, None, self.pipeline.pose_estimator)
        return self._get(key, lambda: self._estimate_photo(Path(photo)), keep=True)[0]

    def people(self, photo: Path) -> int | None:
        """How many people the detector saw in the photo (None when it does not say)."""
        key = self._key("photo", Path(photo), 0, None, self.pipeline.pose_estimator)
        self._get(key, lambda: self._estimate_photo(Path(photo)), keep=True)
        return self._people.get(key)

    def video(self, video: Path, start: int, stop: int | None, person: int | None = None) -> Iterator[PosedFrame]:
        """The posed frames ``start..stop`` of the driving video, ``person`` followed (as
        ``bdmm animate`` streams them)."""
        estimator = self.pipeline.pose_estimator.configured(person=person)
        key = self._key("video", Path(video), start, stop, estimator)
        yield from self._get(key, lambda: self._estimate_video(Path(video), start, stop, estimator), keep=False)

    # ------------------------------------------------------------------------------------
    def _key(self, kind: str, path: Path, start: int, stop: int | None, estimator) -> str:
        text = f"bdmm-batch-poses-1|{kind}|{tree_hash(path)}|{start}|{stop}|{estimator.fingerprint()}"
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def _get(self, key: str, estimate, keep: bool) -> list[PosedFrame]:
        if key in self._memory:
            return self._memory[key]
        path = self.root / f"{key}.npz"
        self.root.mkdir(parents=True, exist_ok=True)
        with FileLock(self.root / f"{key}.lock"):  # another rank estimating the same input: wait for it
            frames, people = self._load(path)
            if frames is None:
                self._seen = None
                frames = estimate()
                if not frames:  # an empty frame range: the pipeline reports it
                    return frames
                people = self._seen
                arrays = pack_frames(frames)
                arrays["people"] = np.array(-1 if people is None else people, np.int64)

                def write(p: Path) -> None:
                    with open(p, "wb") as f:
                        np.savez(f, **arrays)

                atomic_write(path, write)
        if not keep:  # hold one video at a time (a long video's crops are large)
            self._memory = {k: v for k, v in self._memory.items() if len(v) == 1 and k != key}
        elif len(self._memory) >= MAX_PHOTOS_IN_MEMORY:  # the oldest photo goes (it is on disk)
            self._memory.pop(next(k for k, v in self._memory.items() if len(v) == 1), None)
        self._memory[key] = frames
        self._people[key] = people
        return frames

    @staticmethod
    def _load(path: Path) -> tuple[list[PosedFrame] | None, int | None]:
        if not path.is_file():
            return None, None
        try:
            with np.load(path) as z:
                people = int(z["people"]) if "people" in z.files else -1
                return unpack_frames({k: z[k] for k in z.files}), (None if people < 0 else people)
        except (OSError, ValueError, KeyError, EOFError):
            return None, None  # damaged (a killed writer cannot leave one: atomic_write), estimate again

    def _estimate_photo(self, photo: Path) -> list[PosedFrame]:
        from bdmm_cli.pose.estimate import estimate_image
        from bdmm_cli.video import read_image

        estimator = self.pipeline.pose_estimator
        frame = estimate_image(read_image(photo), estimator)
        self._seen = estimator.people_in_last_image()
        self.photos_estimated += 1
        return [frame]

    def _estimate_video(self, video: Path, start: int, stop: int | None, estimator) -> list[PosedFrame]:
        from bdmm_cli.pipeline.frames import estimate_driving
        from bdmm_cli.pipeline.stream import AnimateStats

        frames = list(estimate_driving(video, estimator, start, stop, False, AnimateStats()))
        self.videos_estimated += 1
        return frames


__all__ = ["BatchPoses", "pack_frames", "unpack_frames"]
