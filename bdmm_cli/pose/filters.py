"""Temporal smoothing: the One-Euro filter on keypoints, and SMPL smoothing on rotations.

One-Euro filter (Casiez et al. 2012) in the form the authors' OpenPose runner uses
(lightweight-human-pose-estimation's ``OneEuroFilter``), constants ``freq=15,
mincutoff=1, beta=0.05, dcutoff=1`` (``official_data_path.md`` section 5)::

    alpha(cutoff) = 1 / (1 + tau / Te),  tau = 1 / (2 pi cutoff),  Te = 1 / freq
    dx_k  = 0 for the first sample, else (x_k - x_{k-1}) * freq     (x_{k-1}: raw sample)
    edx_k = alpha(dcutoff) dx_k + (1 - alpha(dcutoff)) edx_{k-1}    (edx_0 = dx_0)
    cutoff_k = mincutoff + beta |edx_k|
    y_k   = alpha(cutoff_k) x_k + (1 - alpha(cutoff_k)) y_{k-1}     (y_0 = x_0)

Keypoints: each coordinate of each joint has its own filter; a joint that is missing
in a frame is left as is and its filter restarts when it reappears (as in the authors'
tracker). SMPL: joint rotations are smoothed as rotation matrices' first two columns
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


class KeypointSmoother:
    """One-Euro smoothing of (25, 3) keypoint rows; missing joints (conf 0) are skipped.

    A joint's filter restarts when it reappears after being missing, and it is left at
    its missing value (its raw row) while missing.
    """

    def __init__(self, freq: float = ONE_EURO_FREQ) -> None:
        self._filter = OneEuroFilter(freq=freq)
        self._present: np.ndarray | None = None  # joints present in the previous frame

    def __call__(self, keypoints: np.ndarray) -> np.ndarray:
        kp = np.asarray(keypoints, dtype=np.float64)
        present = kp[:, 2] > 0
        # An absent joint's filter runs on whatever its row holds; it restarts on reappearance.
        restart = None if self._present is None else (present & ~self._present)[:, None]
        out = self._filter(kp[:, :2], reset=restart)
        self._present = present
        result = kp.copy()
        result[present, :2] = out[present]
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


__all__ = ["KeypointSmoother", "OneEuroFilter", "SmplSmoother", "smoothing_factor"]
