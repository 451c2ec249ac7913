"""Retargeting: the driver's motion on the source's body, in the source's framing.

``bdmm animate person.jpg dance.mp4`` usually pairs two people. The authors' test mode
renders the target meshes with the *driver's* SMPL shape and camera; retargeting maps each
driving pose before the flows and heatmaps are computed (between the poses and
:func:`bdmm_cli.window.inputs.window_inputs`). Modes (:data:`RETARGET_MODES`):

- ``none``: the driving poses unchanged (the authors' test mode);
- ``camera``: the driver's body shape, its framing mapped onto the source's;
- ``shape+camera``: the source's ``shape_beta`` with the driver's ``pose_theta``, framing
  mapped onto the source's.

**Camera rule.** Camera convention of ``body/camera.py``: a model point X lands at
``u = s (X + t)`` in ``grid_sample`` units, pixel ``(u + 1) * 256 / 2``. With ``s_0`` the
driving scale at frame 0 (the first frame of the run) and ``r_t`` the image position of the
pelvis (SMPL root joint) in driving frame t, retargeted frame t has scale
``s'_t = s_src * s_t / s_0`` and puts the retargeted body's pelvis at
``r'_t = r_src + (s_src / s_0) * (r_t - r_0)``, ``r_src`` being the source's pelvis in its
crop; the translation follows as ``t'_t = r'_t / s'_t - P'_t`` (``P'_t`` the retargeted
pelvis in model coordinates; the root joint does not move with the pose, only with the shape).

**Keypoints** (the heatmaps) follow the retargeted body: with ``J_t`` the driver's BODY_25
joints (``BodyModel.body25``) and ``J'_t`` the retargeted body's, each present keypoint
becomes ``k'_t = proj'(J'_t) + (s'_t / s_t) * (k_t - proj(J_t))``: it keeps its offset from
the joint, scaled with the body, so the detector's own conventions survive. Keypoints the
heatmaps treat as missing (``x == 0`` or ``y == 0``) stay as they are; confidences are
unchanged. **The box** keeps its margins around the present keypoints, scaled by
``s'_t / s_t``, around the moved keypoints (with no keypoint present: moved like the
pelvis-anchored similarity). In ``camera`` mode the whole frame undergoes one similarity
``x -> r'_t + (s'_t / s_t)(x - r_t)``, and keypoints and box follow it exactly.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from bdmm_cli.dataset.kptsmpl import FramePose
from bdmm_cli.errors import InputError

RETARGET_MODES = ("none", "camera", "shape+camera")
#: BODY_25 row of the pelvis (MidHip = SMPL joint 0, the root).
PELVIS = 8
_HALF = 128.0  # 256-crop pixels per grid_sample unit


def check_mode(mode: str) -> str:
    if mode not in RETARGET_MODES:
        raise InputError(f"--retarget must be one of {', '.join(RETARGET_MODES)} (or auto), got {mode!r}")
    return mode


def _scale(pose: FramePose) -> float:
    s = float(pose.cam[0])
    if not s > 0:
        raise InputError(f"a pose has camera scale {s}; retargeting needs a positive scale")
    return s


class Retargeter:
    """Retargets driving poses for one run (see the module docstring).

    Args:
        source: the source photo's FramePose.
        first: the run's first driving FramePose (frame 0: ``s_0`` and ``r_0``).
        body: the ``BodyModel`` (its BODY_25 joints and pelvis).
        mode: one of :data:`RETARGET_MODES`.

    Calling it on a list of driving FramePoses returns the retargeted list (one batched
    ``body25`` call for the driver and, with ``shape+camera``, one for the new body).
    """

    def __init__(self, source: FramePose, first: FramePose, body, mode: str = "shape+camera") -> None:
        self.mode = check_mode(mode)
        self.body = body
        self.source = source
        if self.mode == "none":
            return
        self.s_src, self.s0 = _scale(source), _scale(first)
        pel = self._pelvis([source, first])
        self.u_src = self.s_src * (pel[0] + source.cam[1:].astype(np.float64))
        self.u0 = self.s0 * (pel[1] + first.cam[1:].astype(np.float64))

    def _tensors(self, poses: Sequence[FramePose], betas: np.ndarray | None = None):
        dev = self.body.v_template.device
        b = np.stack([p.shape_beta for p in poses]) if betas is None else np.broadcast_to(betas, (len(poses), 10))
        theta = np.stack([p.pose_theta for p in poses])
        return (torch.from_numpy(np.ascontiguousarray(b, np.float32)).to(dev),
                torch.from_numpy(np.ascontiguousarray(theta, np.float32)).to(dev))

    @torch.no_grad()
    def _body25(self, poses: Sequence[FramePose], betas: np.ndarray | None = None) -> np.ndarray:
        """(n, 25, 2) BODY_25 xy in model coordinates, float64."""
        return self.body.body25(*self._tensors(poses, betas))[..., :2].double().cpu().numpy()

    def _pelvis(self, poses: Sequence[FramePose]) -> np.ndarray:
        return self._body25(poses)[:, PELVIS]

    def __call__(self, driving: Sequence[FramePose]) -> list[FramePose]:
        if self.mode == "none" or not driving:
            return list(driving)
        joints = self._body25(driving)  # (n, 25, 2) driver
        new_joints = self._body25(driving, self.source.shape_beta) if self.mode == "shape+camera" else joints
        cams = np.stack([p.cam for p in driving]).astype(np.float64)
        s, t = cams[:, :1], cams[:, 1:]
        if not (s > 0).all():
            raise InputError("a driving pose has a non-positive camera scale; it cannot be retargeted")
        u = s * (joints[:, PELVIS] + t)  # driver pelvis, grid units
        s_new = self.s_src * s / self.s0
        u_new = self.u_src + (self.s_src / self.s0) * (u - self.u0)
        t_new = u_new / s_new - new_joints[:, PELVIS]
        ratio = s_new / s  # (n, 1)
        proj = (s[:, None] * (joints + t[:, None]) + 1.0) * _HALF  # (n, 25, 2) pixels
        proj_new = (s_new[:, None] * (new_joints + t_new[:, None]) + 1.0) * _HALF
        out = []
        for i, pose in enumerate(driving):
            kp = pose.keypoints.astype(np.float64)
            present = (kp[:, 0] != 0) & (kp[:, 1] != 0)
            moved = kp.copy()
            moved[present, :2] = proj_new[i, present] + ratio[i] * (kp[present, :2] - proj[i, present])
            box = pose.bbox_xyxy.astype(np.float64)
            if present.any():
                lo, hi = kp[present, :2].min(0), kp[present, :2].max(0)
                lo_n, hi_n = moved[present, :2].min(0), moved[present, :2].max(0)
                new_box = np.concatenate([lo_n - ratio[i] * (lo - box[:2]), hi_n + ratio[i] * (box[2:] - hi)])
            else:
                r, r_new = (u[i] + 1.0) * _HALF, (u_new[i] + 1.0) * _HALF
                new_box = np.tile(r_new, 2) + ratio[i] * (box - np.tile(r, 2))
            out.append(FramePose(
                keypoints=moved,
                bbox_xyxy=new_box,
                cam=np.concatenate([s_new[i], t_new[i]]),
                pose_theta=pose.pose_theta,
                shape_beta=self.source.shape_beta if self.mode == "shape+camera" else pose.shape_beta,
            ))
        return out


def retarget_poses(source: FramePose, driving: Sequence[FramePose], body, mode: str = "shape+camera") -> list[FramePose]:
    """The driving poses on the source's body and framing (module docstring).

    Args:
        source: the source photo's pose (256-crop pixels).
        driving: the driving video's poses; ``driving[0]`` is frame 0 of the camera rule.
        body: a ``BodyModel``.
        mode: ``none`` | ``camera`` | ``shape+camera``.
    Returns:
        One FramePose per driving pose (``none``: the driving poses themselves).
    """
    check_mode(mode)
    if mode == "none" or not driving:
        return list(driving)
    return Retargeter(source, driving[0], body, mode)(driving)


__all__ = ["PELVIS", "RETARGET_MODES", "Retargeter", "check_mode", "retarget_poses"]
