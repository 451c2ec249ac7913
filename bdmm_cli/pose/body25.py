"""BODY_25 keypoints (OpenPose order) and the MediaPipe Pose -> BODY_25 mapping.

A :class:`Body25` holds 25 rows ``x, y, conf`` in pixels of the image it was detected
in. A missing joint is ``(0, 0, 0)`` (OpenPose's JSON convention); how missing joints are
written into the 256 crop is decided later by the cropper (see ``crop.map_keypoints``).

MediaPipe Pose (BlazePose, 33 landmarks, "left" = the person's left, like OpenPose)
-> BODY_25, joint by joint:

====  ==========  =================================================================
  #   BODY_25     MediaPipe landmark(s)
====  ==========  =================================================================
  0   Nose        0 nose
  1   Neck        mean of 11 left_shoulder and 12 right_shoulder (conf = min)
  2   RShoulder   12 right_shoulder
  3   RElbow      14 right_elbow
  4   RWrist      16 right_wrist
  5   LShoulder   11 left_shoulder
  6   LElbow      13 left_elbow
  7   LWrist      15 left_wrist
  8   MidHip      mean of 23 left_hip and 24 right_hip (conf = min)
  9   RHip        24 right_hip
 10   RKnee       26 right_knee
 11   RAnkle      28 right_ankle
 12   LHip        23 left_hip
 13   LKnee       25 left_knee
 14   LAnkle      27 left_ankle
 15   REye        5 right_eye (centre)
 16   LEye        2 left_eye (centre)
 17   REar        8 right_ear
 18   LEar        7 left_ear
 19   LBigToe     31 left_foot_index
 20   LSmallToe   31 left_foot_index (MediaPipe has no small toe: same point)
 21   LHeel       29 left_heel
 22   RBigToe     32 right_foot_index
 23   RSmallToe   32 right_foot_index (same point, see above)
 24   RHeel       30 right_heel
====  ==========  =================================================================

Confidence = MediaPipe's landmark ``visibility``. A joint is missing when its
visibility is below ``min_visibility`` or it lies outside the image (MediaPipe
extrapolates occluded or out-of-frame joints; OpenPose would not report them). A
derived joint (Neck, MidHip) is missing when either parent is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BODY25_NAMES = (
    "Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist",
    "MidHip", "RHip", "RKnee", "RAnkle", "LHip", "LKnee", "LAnkle", "REye", "LEye",
    "REar", "LEar", "LBigToe", "LSmallToe", "LHeel", "RBigToe", "RSmallToe", "RHeel",
)
BODY25 = {name: i for i, name in enumerate(BODY25_NAMES)}

#: BODY_25 index -> MediaPipe landmark index (direct copies).
MEDIAPIPE_TO_BODY25 = {
    0: 0, 2: 12, 3: 14, 4: 16, 5: 11, 6: 13, 7: 15, 9: 24, 10: 26, 11: 28, 12: 23, 13: 25,
    14: 27, 15: 5, 16: 2, 17: 8, 18: 7, 19: 31, 20: 31, 21: 29, 22: 32, 23: 32, 24: 30,
}
#: BODY_25 index -> the two MediaPipe landmarks averaged.
MEDIAPIPE_MIDPOINTS = {1: (11, 12), 8: (23, 24)}

NUM_MEDIAPIPE_LANDMARKS = 33


@dataclass(frozen=True)
class Body25:
    """BODY_25 keypoints of one person in one image.

    Attributes:
        keypoints: (25, 3) float32 ``x, y, conf`` in pixels of the input image;
            a missing joint is ``(0, 0, 0)``.
    """

    keypoints: np.ndarray

    def __post_init__(self) -> None:
        kp = np.array(self.keypoints, dtype=np.float32)
        if kp.shape != (25, 3):
            raise ValueError(f"Body25.keypoints must have shape (25, 3), got {kp.shape}")
        kp[kp[:, 2] <= 0] = 0.0
        kp.setflags(write=False)
        object.__setattr__(self, "keypoints", kp)

    @property
    def valid(self) -> np.ndarray:
        """(25,) bool: joints that were detected (conf > 0)."""
        return self.keypoints[:, 2] > 0

    @property
    def num_valid(self) -> int:
        return int(self.valid.sum())

    def box_xyxy(self) -> np.ndarray:
        """(4,) float32 min/max of the detected joints (the authors' per-frame box)."""
        pts = self.keypoints[self.valid, :2]
        if len(pts) == 0:
            raise ValueError("no detected joint: no box")
        return np.concatenate([pts.min(0), pts.max(0)]).astype(np.float32)


def body25_from_mediapipe(
    landmarks: np.ndarray, image_size: tuple[int, int], min_visibility: float = 0.5
) -> Body25:
    """Map 33 MediaPipe Pose landmarks to BODY_25 (table in the module docstring).

    Args:
        landmarks: (33, 3) ``x, y`` normalised to [0, 1] by the image width/height, and
            ``visibility``.
        image_size: (width, height) of the image, to turn x, y into pixels.
        min_visibility: joints below it are missing.
    Returns:
        Body25 in pixels; missing joints are ``(0, 0, 0)``.
    """
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape != (NUM_MEDIAPIPE_LANDMARKS, 3):
        raise ValueError(f"expected (33, 3) landmarks, got {lm.shape}")
    w, h = image_size
    px = np.stack([lm[:, 0] * w, lm[:, 1] * h], axis=1)
    vis = lm[:, 2]
    inside = (px[:, 0] >= 0) & (px[:, 0] <= w - 1) & (px[:, 1] >= 0) & (px[:, 1] <= h - 1)
    ok = (vis >= min_visibility) & inside
    out = np.zeros((25, 3), dtype=np.float64)
    for j, m in MEDIAPIPE_TO_BODY25.items():
        if ok[m]:
            out[j] = (px[m, 0], px[m, 1], vis[m])
    for j, (a, b) in MEDIAPIPE_MIDPOINTS.items():
        out[j] = midpoint_joint(px[a], vis[a], ok[a], px[b], vis[b], ok[b])
    return Body25(out.astype(np.float32))


def midpoint_joint(pa, ca: float, ok_a: bool, pb, cb: float, ok_b: bool) -> np.ndarray:
    """A joint BODY_25 has and the source skeleton lacks (Neck, MidHip): the midpoint of its two
    parents with the lower of their confidences; missing ``(0, 0, 0)`` when either parent is
    (a midpoint of one real joint and a guess would be a guess). OpenPose's own BODY_25 training
    labels derive Neck and MidHip from COCO's shoulders and hips the same way: labelled only
    when both parents are. The one rule for every detector mapped onto BODY_25.

    Returns:
        (3,) float64 ``x, y, conf``.
    """
    if not (ok_a and ok_b):
        return np.zeros(3, dtype=np.float64)
    mid = (np.asarray(pa, dtype=np.float64)[:2] + np.asarray(pb, dtype=np.float64)[:2]) / 2.0
    return np.array([mid[0], mid[1], min(float(ca), float(cb))], dtype=np.float64)


__all__ = ["BODY25", "BODY25_NAMES", "Body25", "MEDIAPIPE_MIDPOINTS", "MEDIAPIPE_TO_BODY25", "body25_from_mediapipe",
           "midpoint_joint"]
