"""COCO-WholeBody (133 points, DWPose's output) -> BODY_25, the keypoints BDMM was trained on.

COCO-WholeBody orders its 133 points as 17 body points (COCO's), 6 foot points, 68 face
points, 21 left-hand and 21 right-hand points. BODY_25 needs the body and the feet; the face
and hands are not used. "Left" is the person's left in both. Joint by joint
(``docs/openpose.md``, section "BODY_25 from other detectors", says the same in prose):

====  ==========  =====================================================================
  #   BODY_25     COCO-WholeBody point(s)
====  ==========  =====================================================================
  0   Nose        0 nose
  1   Neck        midpoint of 5 left_shoulder and 6 right_shoulder (see below)
  2   RShoulder   6 right_shoulder
  3   RElbow      8 right_elbow
  4   RWrist      10 right_wrist
  5   LShoulder   5 left_shoulder
  6   LElbow      7 left_elbow
  7   LWrist      9 left_wrist
  8   MidHip      midpoint of 11 left_hip and 12 right_hip (see below)
  9   RHip        12 right_hip
 10   RKnee       14 right_knee
 11   RAnkle      16 right_ankle
 12   LHip        11 left_hip
 13   LKnee       13 left_knee
 14   LAnkle      15 left_ankle
 15   REye        2 right_eye
 16   LEye        1 left_eye
 17   REar        4 right_ear
 18   LEar        3 left_ear
 19   LBigToe     17 left_big_toe
 20   LSmallToe   18 left_small_toe
 21   LHeel       19 left_heel
 22   RBigToe     20 right_big_toe
 23   RSmallToe   21 right_small_toe
 24   RHeel       22 right_heel
====  ==========  =====================================================================

Confidences, mapped to the convention the heatmaps and the cropper use (a joint is either
there, with ``x, y, conf``, conf in (0, 1], or missing, ``(0, 0, 0)``):

- DWPose's score of a point is the mean of the maxima of its two SimCC vectors: not a
  probability (it can exceed 1). A point is **present** when its score is at least
  ``min_score`` (0.3, the threshold DWPose's own OpenPose-style drawing uses) and it lies
  inside the image (the SimCC decoder places every point somewhere in the crop, even one it
  cannot see, and the crop can extend past the image; OpenPose would not report such a
  joint). A present point's confidence is its score clipped to 1.
- Neck and MidHip do not exist in COCO-WholeBody: each is the midpoint of its two parents,
  present only when both parents are, with the lower of their confidences
  (``body25.midpoint_joint``: the rule OpenPose's BODY_25 training labels follow, and the one
  the MediaPipe mapping uses).
- Everything else missing is ``(0, 0, 0)``; the cropper then writes it the way the authors'
  data has missing joints (``crop.map_keypoints``).
"""

from __future__ import annotations

import numpy as np

from bdmm_cli.pose.body25 import Body25, midpoint_joint

NUM_WHOLEBODY = 133
#: the 23 COCO-WholeBody points BODY_25 uses (body and feet), in COCO-WholeBody order.
WHOLEBODY_NAMES = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
    "right_knee", "left_ankle", "right_ankle", "left_big_toe", "left_small_toe", "left_heel",
    "right_big_toe", "right_small_toe", "right_heel",
)
#: BODY_25 index -> COCO-WholeBody index (direct copies).
WHOLEBODY_TO_BODY25 = {
    0: 0, 2: 6, 3: 8, 4: 10, 5: 5, 6: 7, 7: 9, 9: 12, 10: 14, 11: 16, 12: 11, 13: 13, 14: 15,
    15: 2, 16: 1, 17: 4, 18: 3, 19: 17, 20: 18, 21: 19, 22: 20, 23: 21, 24: 22,
}
#: BODY_25 index -> the two COCO-WholeBody points whose midpoint it is.
WHOLEBODY_MIDPOINTS = {1: (5, 6), 8: (11, 12)}
#: DWPose's own threshold for drawing a point (its OpenPose-style renderer).
MIN_SCORE = 0.3


def body25_from_wholebody(
    keypoints: np.ndarray, scores: np.ndarray, image_size: tuple[int, int], min_score: float = MIN_SCORE
) -> np.ndarray:
    """One person's COCO-WholeBody points -> BODY_25 (table and rules in the module docstring).

    Args:
        keypoints: (133, 2) (or at least (23, 2)) ``x, y`` in image pixels.
        scores: (133,) DWPose scores (mean SimCC maxima; may exceed 1).
        image_size: (width, height) of the image; points outside ``[0, W-1] x [0, H-1]`` are missing.
        min_score: points scoring below it are missing.
    Returns:
        (25, 3) float64 ``x, y, conf`` with conf in (0, 1]; a missing joint is ``(0, 0, 0)``.
    """
    kp = np.asarray(keypoints, dtype=np.float64)
    sc = np.asarray(scores, dtype=np.float64)
    if kp.ndim != 2 or kp.shape[1] != 2 or kp.shape[0] < len(WHOLEBODY_NAMES) or sc.shape != kp.shape[:1]:
        raise ValueError(f"expected (133, 2) keypoints and (133,) scores, got {kp.shape} and {sc.shape}")
    w, h = image_size
    inside = (kp[:, 0] >= 0) & (kp[:, 0] <= w - 1) & (kp[:, 1] >= 0) & (kp[:, 1] <= h - 1)
    ok = (sc >= min_score) & inside & np.isfinite(kp).all(axis=1)
    conf = np.clip(sc, 0.0, 1.0)
    out = np.zeros((25, 3), dtype=np.float64)
    for j, m in WHOLEBODY_TO_BODY25.items():
        if ok[m]:
            out[j] = (kp[m, 0], kp[m, 1], conf[m])
    for j, (a, b) in WHOLEBODY_MIDPOINTS.items():
        out[j] = midpoint_joint(kp[a], conf[a], ok[a], kp[b], conf[b], ok[b])
    return out


def body25_person(keypoints: np.ndarray, scores: np.ndarray, image_size: tuple[int, int],
                  min_score: float = MIN_SCORE) -> Body25:
    """:func:`body25_from_wholebody` as a :class:`Body25`."""
    return Body25(body25_from_wholebody(keypoints, scores, image_size, min_score).astype(np.float32))


__all__ = ["MIN_SCORE", "NUM_WHOLEBODY", "WHOLEBODY_MIDPOINTS", "WHOLEBODY_NAMES", "WHOLEBODY_TO_BODY25",
           "body25_from_wholebody", "body25_person"]
