"""Keep the largest person: MediaPipe's multi-person pose landmarker + a sticky selection.

MediaPipe's legacy ``solutions.pose`` pipeline follows one person, whichever its detector
reports first; with two people in a frame that is often not the largest (tested: with two
copies of the test photo side by side it takes the left one, whatever their sizes).

:class:`MultiPoseDetector` runs the *same* two BlazePose models that ship in the 0.10.14
wheel (``pose_detection.tflite`` + ``pose_landmark_full.tflite``) through MediaPipe's Tasks
``PoseLandmarker``, which returns up to ``max_people`` people. The Tasks API needs a
``.task`` bundle whose models carry input-normalisation metadata; the wheel's bare models
have none, so the bundle is built in memory, offline, with MediaPipe's own metadata writer:
detector input in [-1, 1] (mean 127.5, std 127.5), landmark model input in [0, 1] (mean 0,
std 255), as in the legacy graphs. Nothing is downloaded.

:class:`LargestPersonDetector` (a ``KeypointDetector``) keeps the person whose landmark box
(all 33 landmarks, clipped to the image) has the largest area, with hysteresis across
video frames (:func:`select_person`): the person selected in the previous frame (matched
by box IoU >= 0.3) is kept until someone else is more than ``switch_ratio`` (1.5) times
larger, so two people of similar size do not make the selection flicker. When the
multi-person landmarker finds nobody, the legacy single-person tracker runs on the full
frame (its tracking sometimes keeps a person the detector alone misses), so no frame that
worked before is lost.

Video mode: the Tasks landmarker runs in its VIDEO mode, which re-runs the person detector
on every frame while fewer than ``max_people`` people are tracked (so a larger person who
walks in is found) and also follows the people of the previous frame. Checked on a moving
person: its landmarks equal the IMAGE mode's, i.e. no extra smoothing is added (the
authors' One-Euro filter is applied afterwards by the stage).
"""

from __future__ import annotations

import functools
import io
import os
import warnings
import zipfile

import numpy as np

from bdmm_cli.closing import Closing
from bdmm_cli.errors import MissingResourceError
from bdmm_cli.noise import native_stderr_quiet
from bdmm_cli.pose.body25 import Body25, body25_from_mediapipe

SWITCH_RATIO = 1.5
MIN_IOU = 0.3
MAX_PEOPLE = 4


# -- selection (pure) ----------------------------------------------------------------------------

def box_area(boxes: np.ndarray) -> np.ndarray:
    """(N, 4) XYXY -> (N,) areas (0 for degenerate boxes)."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)


def box_iou(boxes: np.ndarray, box: np.ndarray) -> np.ndarray:
    """(N, 4) XYXY boxes vs one (4,) box -> (N,) intersection over union."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    r = np.asarray(box, dtype=np.float64)
    w = np.clip(np.minimum(b[:, 2], r[2]) - np.maximum(b[:, 0], r[0]), 0, None)
    h = np.clip(np.minimum(b[:, 3], r[3]) - np.maximum(b[:, 1], r[1]), 0, None)
    inter = w * h
    union = box_area(b) + box_area(r[None])[0] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def select_person(
    boxes: np.ndarray,
    previous: np.ndarray | None = None,
    switch_ratio: float = SWITCH_RATIO,
    min_iou: float = MIN_IOU,
) -> int | None:
    """Index of the person to keep among `boxes` (N, 4) XYXY, or None when N == 0.

    Without `previous`: the largest box (area); on a tie, the first of them. With the box
    selected in the previous frame: the box that overlaps it most (IoU >= `min_iou`) is
    kept unless the largest box is more than `switch_ratio` times its area; if none
    overlaps it, the largest.
    """
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if len(b) == 0:
        return None
    areas = box_area(b)
    largest = int(np.argmax(areas))  # argmax returns the first of equal maxima
    if previous is None:
        return largest
    ious = box_iou(b, previous)
    same = int(np.argmax(ious))
    if ious[same] >= min_iou and areas[largest] <= switch_ratio * areas[same]:
        return same
    return largest


# -- the multi-person landmarker -----------------------------------------------------------------

def _with_image_metadata(model: bytes, mean: float, std: float, name: str) -> bytes:
    from mediapipe.tasks.python.metadata.metadata_writers import metadata_writer, writer_utils

    buf = bytearray(model)
    writer = metadata_writer.MetadataWriter.create(buf)
    writer.add_general_info(name).add_image_input(norm_mean=[mean] * 3, norm_std=[std] * 3)
    for _ in writer_utils.get_output_tensor_types(buf):
        writer.add_feature_output()
    return bytes(writer.populate()[0])


@functools.lru_cache(maxsize=1)
def pose_task_bundle() -> bytes:
    """A Tasks ``pose_landmarker`` bundle (zip) built from the wheel's BlazePose models."""
    try:
        import mediapipe
    except ImportError as exc:
        raise MissingResourceError("MediaPipe is not available: install it with `pip install mediapipe==0.10.14`") from exc
    root = os.path.join(os.path.dirname(mediapipe.__file__), "modules")
    det = os.path.join(root, "pose_detection", "pose_detection.tflite")
    lmk = os.path.join(root, "pose_landmark", "pose_landmark_full.tflite")
    for path in (det, lmk):
        if not os.path.isfile(path):
            raise MissingResourceError(f"MediaPipe's pose model {path} is missing: reinstall mediapipe==0.10.14")
    with open(det, "rb") as f:
        det_md = _with_image_metadata(f.read(), 127.5, 127.5, "pose_detector")
    with open(lmk, "rb") as f:
        lmk_md = _with_image_metadata(f.read(), 0.0, 255.0, "pose_landmarks_detector")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("pose_detector.tflite", det_md)
        z.writestr("pose_landmarks_detector.tflite", lmk_md)
    return out.getvalue()


class MultiPoseDetector(Closing):
    """Every person's BODY_25 keypoints and landmark box (MediaPipe Tasks PoseLandmarker).

    Args:
        video: consecutive frames of one video (Tasks VIDEO mode: tracking + detection of
            newcomers) or independent photos (IMAGE mode).
        max_people: at most this many people per frame.
        min_visibility: landmarks less visible than this are missing in the Body25.
        min_detection_confidence: the person detector's threshold (as the legacy one).
    """

    def __init__(self, video: bool = True, max_people: int = MAX_PEOPLE, min_visibility: float = 0.5,
                 min_detection_confidence: float = 0.5) -> None:
        if max_people < 1:
            raise ValueError("max_people must be >= 1")
        bundle = pose_task_bundle()
        from mediapipe.tasks.python import BaseOptions, vision

        self.video = video
        self.min_visibility = float(min_visibility)
        mode = vision.RunningMode.VIDEO if video else vision.RunningMode.IMAGE
        options = vision.PoseLandmarkerOptions(
            base_options=BaseOptions(model_asset_buffer=bundle), running_mode=mode, num_poses=int(max_people),
            min_pose_detection_confidence=min_detection_confidence, min_pose_presence_confidence=0.5,
            min_tracking_confidence=0.5)
        with warnings.catch_warnings(), native_stderr_quiet():  # "GPU support is not available" noise
            warnings.simplefilter("ignore", UserWarning)
            self._landmarker = vision.PoseLandmarker.create_from_options(options)
        self._timestamp_ms = 0

    def detect_all(self, image: np.ndarray) -> list[tuple[Body25, np.ndarray]]:
        """(H, W, 3) uint8 RGB -> [(Body25 in pixels, (4,) landmark box XYXY clipped to the image)]."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {image.shape} {image.dtype}")
        import mediapipe as mp

        h, w = image.shape[:2]
        frame = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(image))
        with warnings.catch_warnings(), native_stderr_quiet():  # "W0000 ..." lines on the first frames
            warnings.simplefilter("ignore", UserWarning)
            if self.video:
                result = self._landmarker.detect_for_video(frame, self._timestamp_ms)
                self._timestamp_ms += 33
            else:
                result = self._landmarker.detect(frame)
        people = []
        for landmarks in result.pose_landmarks:
            lm = np.array([(p.x, p.y, p.visibility if p.visibility is not None else 0.0) for p in landmarks],
                          dtype=np.float64)
            body = body25_from_mediapipe(lm, (w, h), self.min_visibility)
            if body.num_valid < 2:
                continue
            px = np.clip(lm[:, :2] * [w, h], 0, [w - 1, h - 1])
            people.append((body, np.concatenate([px.min(0), px.max(0)]).astype(np.float32)))
        return people

    def close(self) -> None:
        if self._landmarker is not None:
            self._landmarker.close()
            self._landmarker = None


class LargestPersonDetector(Closing):
    """KeypointDetector that keeps the largest person (see the module docstring).

    Args:
        people: a :class:`MultiPoseDetector` (anything with ``detect_all``), or None for a
            new one with `video`, `max_people`, `min_visibility`.
        fallback: a KeypointDetector run on the full frame when `people` finds nobody;
            None for MediaPipe's legacy single-person tracker (``MediaPipePoseDetector``,
            created on first use); ``False`` for no fallback.
        switch_ratio: across video frames, another person must be this many times larger
            than the one followed so far to be selected instead (without a ``follower``).
        follower: video mode: a ``pose.follow.PersonFollower`` that picks one person once
            and follows it (bdmm's default for videos); None: the sticky-largest rule above.
    Use as a context manager or call :meth:`close`.
    """

    def __init__(self, video: bool = True, min_visibility: float = 0.5, max_people: int = MAX_PEOPLE,
                 switch_ratio: float = SWITCH_RATIO, people=None, fallback=None, follower=None) -> None:
        from bdmm_cli.pose.detector import _mp_version

        if switch_ratio < 1:
            raise ValueError("switch_ratio must be >= 1")
        self.video = video
        self.switch_ratio = float(switch_ratio)
        self._own = []
        if people is None:
            people = MultiPoseDetector(video=video, max_people=max_people, min_visibility=min_visibility)
            self._own.append(people)
        self.people = people
        self._fallback = fallback  # None: the legacy tracker, made on first use; False: none
        self._min_visibility = float(min_visibility)
        self.follower = follower if video else None
        rule = f"follow{follower.person or ''}" if self.follower is not None else f"largest{max_people}-s{self.switch_ratio:g}"
        self.name = (f"mediapipe-{_mp_version()}-{rule}-c1-v{min_visibility:g}"
                     f"{'-fb' if fallback is not False else ''}")
        self._previous: np.ndarray | None = None
        self.last_box: np.ndarray | None = None  # landmark box of the person returned last (None: fallback/nobody)
        self.people_in_last = 0  # people found in the last image

    def __call__(self, image: np.ndarray) -> Body25 | None:
        people = self.people.detect_all(image)
        self.people_in_last = len(people)
        if self.follower is not None:
            return self._follow(image, people)
        index = select_person(np.array([b for _, b in people]).reshape(-1, 4),
                              self._previous if self.video else None, self.switch_ratio)
        if index is None:
            self.last_box = None
            fallback = self._get_fallback()
            return fallback(image) if fallback is not None else None
        body, box = people[index]
        self.last_box = box
        if self.video:
            self._previous = box  # kept through frames without anyone: the same person is picked again
        return body

    def _follow(self, image: np.ndarray, people: list) -> Body25 | None:
        """The followed person (``pose.follow``); the legacy tracker's person is a candidate
        only in frames where the multi-person landmarker finds nobody."""
        if not people:
            fallback = self._get_fallback()
            body = fallback(image) if fallback is not None else None
            if body is not None and body.num_valid >= 2:
                people = [(body, body.box_xyxy())]
        index = self.follower(np.array([b for _, b in people]).reshape(-1, 4),
                              np.array([p.keypoints for p, _ in people]).reshape(-1, 25, 3))
        self.last_box = None if index is None else people[index][1]
        return None if index is None else people[index][0]

    def _get_fallback(self):
        if self._fallback is None:
            from bdmm_cli.pose.detector import MediaPipePoseDetector

            self._fallback = MediaPipePoseDetector(video=self.video, min_visibility=self._min_visibility)
            self._own.append(self._fallback)
        return self._fallback or None

    def close(self) -> None:
        for d in self._own:
            d.close()
        if self._fallback is not None and self._fallback is not False and any(d is self._fallback for d in self._own):
            self._fallback = None
        self._own = []



__all__ = ["LargestPersonDetector", "MultiPoseDetector", "box_area", "box_iou", "pose_task_bundle", "select_person"]
