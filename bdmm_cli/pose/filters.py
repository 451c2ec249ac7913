"""Temporal smoothing: the One-Euro filter on keypoints, and SMPL smoothing on rotations.

One-Euro filter (Casiez et al. 2012) in the form the authors' OpenPose runner uses
(lightweight-human-pose-estimation's ``OneEuroFilter``), constants ``freq=15,
mincutoff=1, beta=0.05, dcutoff=1`` (``docs/data_path.md`` section 5)::

    alpha(cutoff) = 1 / (1 + tau / Te),  tau = 1 / (2 pi cutoff),  Te = 1 / freq
    dx_k  = 0 for the first sample, else (x_k - x_{k-1}) * freq     (x_{k-1}: raw sample)
    edx_k = alpha(dcutoff) dx_k + (1 - alpha(dcutoff)) edx_{k-1}    (edx_0 = dx_0)
    cutoff_k = mincutoff + beta |edx_k|
    y_k   = alpha(cutoff_k) x_k + (1 - alpha(cutoff_k)) y_{k-1}     (y_0 = x_0)

Keypoints (:class:`KeypointSmoother`): each coordinate of each joint has its own filter,
in the authors' order: the first frame is raw and starts nothing, so frames 0 and 1 come
out raw and filtering starts on frame 2; a joint that is missing in a frame is left as is
and its filter restarts when it reappears; a person who does not continue the previous
frame's (a frame without anyone in between, or too few similar joints) restarts them all. SMPL: joint rotations are smoothed as rotation matrices' first two columns
(the continuous 6D representation), then re-orthonormalised by Gram-Schmidt and turned
back into axis-angle, so no axis-angle wrap-around (|theta| near pi) is ever averaged;
shape and camera are smoothed directly. All filters are causal, so smoothing streams.
"""

from __future__ import annotations

import math

import numpy as np

ONE_EURO_FREQ = 15.0
ONE_EURO_MINCUTOFF = 1.0
ONE_EURO_BETA = 0.05
ONE_EURO_DCUTOFF = 1.0


def smoothing_factor(freq: float, cutoff: np.ndarray | float) -> np.ndarray | float:
    """alpha = 1 / (1 + tau / Te) with tau = 1 / (2 pi cutoff), Te = 1 / freq."""
    tau = 1.0 / (2.0 * math.pi * np.asarray(cutoff, dtype=np.float64))
    te = 1.0 / freq
    return 1.0 / (1.0 + tau / te)


class OneEuroFilter:
    """Element-wise One-Euro filter over arrays of a fixed shape (see the module docstring).

    Call it with successive samples; `reset` (optional bool mask) restarts the chosen
    elements as if this were their first sample.
    """

    def __init__(
        self,
        freq: float = ONE_EURO_FREQ,
        mincutoff: float = ONE_EURO_MINCUTOFF,
        beta: float = ONE_EURO_BETA,
        dcutoff: float = ONE_EURO_DCUTOFF,
    ) -> None:
        if freq <= 0 or mincutoff <= 0 or dcutoff <= 0:
            raise ValueError("freq, mincutoff and dcutoff must be positive")
        self.freq, self.mincutoff, self.beta, self.dcutoff = float(freq), float(mincutoff), float(beta), float(dcutoff)
        self._x_prev: np.ndarray | None = None  # last raw sample
        self._dx_hat: np.ndarray | None = None  # last smoothed derivative
        self._y_prev: np.ndarray | None = None  # last output
        self._fresh: np.ndarray | None = None   # elements with no history yet

    def __call__(self, x: np.ndarray, reset: np.ndarray | None = None) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if self._x_prev is None:
            self._x_prev = x.copy()
            self._dx_hat = np.zeros_like(x)
            self._y_prev = x.copy()
            self._fresh = np.zeros(x.shape, dtype=bool)
            return x.copy()
        if x.shape != self._x_prev.shape:
            raise ValueError(f"sample shape changed from {self._x_prev.shape} to {x.shape}")
        fresh = self._fresh.copy()
        if reset is not None:
            fresh |= np.broadcast_to(np.asarray(reset, dtype=bool), x.shape)
        dx = np.where(fresh, 0.0, (x - self._x_prev) * self.freq)
        a_d = smoothing_factor(self.freq, self.dcutoff)
        dx_hat = np.where(fresh, dx, a_d * dx + (1.0 - a_d) * self._dx_hat)
        cutoff = self.mincutoff + self.beta * np.abs(dx_hat)
        a = smoothing_factor(self.freq, cutoff)
        y = np.where(fresh, x, a * x + (1.0 - a) * self._y_prev)
        self._x_prev, self._dx_hat, self._y_prev = x.copy(), dx_hat, y
        self._fresh = np.zeros(x.shape, dtype=bool)
        return y.copy()


#: Per-joint keypoint sigmas of the authors' tracker (COCO-style OKS constants / 10),
#: BODY_25 order (``docs/openpose.md`` section 5, PU:225-234).
TRACK_SIGMAS = np.array(
    [.26, .79, .79, .72, .62, .79, .72, .62, .79, 1.07, .87, .89, 1.07, .87, .89,
     .25, .25, .35, .35, .35, .35, .25, .35, .35, .25]
) / 10.0
#: A person is the previous frame's person when at least this many joints are similar.
MIN_SIMILAR_JOINTS = 3
_EPS = float(np.finfo(np.float64).eps)


def keypoint_box(keypoints: np.ndarray) -> np.ndarray:
    """(4,) float32 XYXY box: min/max of the detected joints (conf > 0) of (25, 3) rows."""
    from bdmm_cli.pose.body25 import Body25

    return Body25(np.asarray(keypoints, dtype=np.float32)).box_xyxy()


def similar_joint_count(current: np.ndarray, previous: np.ndarray,
                        current_box: np.ndarray, previous_box: np.ndarray) -> int:
    """How many joints of two (25, 3) keypoint rows are "similar" in the authors' tracker.

    A joint counts when it is detected in both and exp(-d2 / (2 (A + eps) var_k)) > 0.5,
    with d2 the squared difference of x, y **and** the score, var_k = (2 sigma_k)^2 (float32)
    and A = the larger x1 * y1 of the two XYXY boxes (the product of the bottom-right corner
    coordinates, as the authors' code computes it, not an area). ``current`` holds the raw
    detection, ``previous`` the previous frame's smoothed keypoints and unfiltered scores.
    """
    cur = np.asarray(current, dtype=np.float64)
    prev = np.asarray(previous, dtype=np.float64)
    both = (cur[:, 2] > 0) & (prev[:, 2] > 0)
    d2 = ((cur - prev) ** 2).sum(axis=1)
    var = ((2.0 * TRACK_SIGMAS) ** 2).astype(np.float32).astype(np.float64)
    area = max(float(current_box[2]) * float(current_box[3]), float(previous_box[2]) * float(previous_box[3]))
    similar = np.exp(-d2 / (2.0 * (area + _EPS) * var)) > 0.5
    return int((both & similar).sum())


class KeypointSmoother:
    """One-Euro smoothing of one person's (25, 3) keypoint rows in the authors' order.

    Call it once per frame with a person (raw detection in frame pixels) and call
    :meth:`gap` for a frame without anyone. What the authors' OpenPose runner does
    (``docs/data_path.md`` section 5, ``docs/openpose.md`` section 5):

    - the first frame of the sequence never passes the tracker: it is returned raw and
      starts no filter (``skip_first``);
    - a frame whose person continues the previous frame's (tracked, and at least
      :data:`MIN_SIMILAR_JOINTS` similar joints, :func:`similar_joint_count`) takes over
      its filters; otherwise it starts fresh filters, which return their first sample,
      so it is raw too. Hence frames 0 and 1 are raw and filtering starts on frame 2 with
      frame 1 as its first sample; after a frame without anyone the next one is raw;
    - per joint: a joint missing now (conf 0) is left as is; a joint that was missing in
      the previous frame restarts its filter. The score is never filtered.

    With ``skip_first=False`` and ``match=False`` it is a plain per-joint One-Euro filter
    that starts on the first call.
    """

    def __init__(self, freq: float = ONE_EURO_FREQ, skip_first: bool = True, match: bool = True) -> None:
        self.freq = float(freq)
        self.skip_first = skip_first
        self.match = match
        self._filter: OneEuroFilter | None = None
        self._started = False  # a first frame (with or without a person) was seen
        # the previous frame's person: (smoothed rows, box, tracked); None after a gap
        self._previous: tuple[np.ndarray, np.ndarray, bool] | None = None

    def gap(self) -> None:
        """A frame without a person: the next person starts fresh filters."""
        self._started = True
        self._previous = None

    def __call__(self, keypoints: np.ndarray) -> np.ndarray:
        kp = np.asarray(keypoints, dtype=np.float64)
        present = kp[:, 2] > 0
        if not self._started and self.skip_first:
            self._started = True
            self._previous = (kp.copy(), keypoint_box(kp) if present.any() else np.zeros(4), False)
            return kp.astype(np.float32)
        self._started = True
        prev = self._previous
        box = keypoint_box(kp) if present.any() else np.zeros(4, np.float32)
        continues = prev is not None and (prev[2] or not self.skip_first) and (
            not self.match or similar_joint_count(kp, prev[0], box, prev[1]) >= MIN_SIMILAR_JOINTS)
        if not continues or self._filter is None:
            self._filter = OneEuroFilter(freq=self.freq)
            out = self._filter(kp[:, :2])
        else:
            out = self._filter(kp[:, :2], reset=(present & ~(prev[0][:, 2] > 0))[:, None])
        result = kp.copy()
        result[present, :2] = out[present]
        self._previous = (result, keypoint_box(result) if present.any() else box, True)
        return result.astype(np.float32)


class SmplSmoother:
    """Causal smoothing of SMPL parameters on rotations (6D), shape and camera.

    Each call takes one frame's ``pose`` (72,) axis-angle, ``betas`` (10,) and ``cam``
    (3,) and returns the smoothed triple. Pose: axis-angle -> rotation matrix -> its
    first two columns (6 numbers per joint) -> One-Euro -> Gram-Schmidt -> axis-angle.
    """

    def __init__(self, freq: float = ONE_EURO_FREQ, smooth_cam: bool = True) -> None:
        self._rot = OneEuroFilter(freq=freq)
        self._betas = OneEuroFilter(freq=freq)
        self._cam = OneEuroFilter(freq=freq) if smooth_cam else None

    def __call__(self, pose: np.ndarray, betas: np.ndarray, cam: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        import torch

        from bdmm_cli.pose.rotations import axis_angle_to_rotmat, rot6d_to_rotmat, rotmat_to_axis_angle, rotmat_to_rot6d

        aa = torch.as_tensor(np.asarray(pose, dtype=np.float64).reshape(24, 3))
        r6 = rotmat_to_rot6d(axis_angle_to_rotmat(aa)).numpy()
        r6s = self._rot(r6)
        rot = rot6d_to_rotmat(torch.from_numpy(r6s))
        pose_s = rotmat_to_axis_angle(rot).reshape(72).numpy()
        betas_s = self._betas(np.asarray(betas, dtype=np.float64))
        cam_s = self._cam(np.asarray(cam, dtype=np.float64)) if self._cam is not None else np.asarray(cam, np.float64)
        return pose_s.astype(np.float32), betas_s.astype(np.float32), cam_s.astype(np.float32)


__all__ = [
    "MIN_SIMILAR_JOINTS", "TRACK_SIGMAS", "KeypointSmoother", "OneEuroFilter", "SmplSmoother",
    "keypoint_box", "similar_joint_count", "smoothing_factor",
]
