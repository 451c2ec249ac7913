"""The authors' frame-validity rule: frames whose fitted head is too small are dropped.

``docs/smplify.md`` section 7 / ``docs/data_path.md`` section 5 step 4: after SPIN
and SMPLify, the head box is taken from the fitted SMPL's cocoplus joints from the neck on
(cocoplus 12..18: neck, head top, nose, eyes, ears), projected orthographically with the
256-frame camera, ``j2d = s (X[:2] + (tx, ty))`` in [-1, 1], then in [0, 1] units
``q = (j2d + 1) / 2``:

    x0 = max(min q_x - 0.05, 0)   x1 = min(max q_x + 0.05, 1)
    y0 = max(min q_y - 0.05, 0)   y1 = min(max q_y, 1)          (no margin below)

each times 512 and truncated to an integer; the frame is kept iff
``(x1 - x0) * (y1 - y0) > 100`` (integers; about 25 px^2 at 256). As in the authors' code,
two negative extents give a positive product.

The cocoplus joints come from the model's ``cocoplus_regressor`` (HMR's ``smpl_model.pkl``,
the authors' file, has it). A model without one (the standard SMPL files, the synthetic
test body) uses the closest stand-ins it has: SMPL's neck and head joints and the nose,
eye and ear vertices of SMPLify's joints; the head joint sits below the head top, so the
box can be a little smaller there.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

COCOPLUS_HEAD = slice(12, 19)
HEAD_IMAGE_SIZE = 512
HEAD_MARGIN = 0.05
MIN_HEAD_AREA = 100


def head_box(head_j2d: np.ndarray, image_size: int = HEAD_IMAGE_SIZE) -> tuple[int, int, int, int]:
    """(J, 2) head joints in [-1, 1] -> integer (x0, y0, x1, y1) at ``image_size``."""
    f32 = np.float32
    q = (np.asarray(head_j2d, dtype=f32) + f32(1.0)) / f32(2.0)
    m, zero, one = f32(HEAD_MARGIN), f32(0.0), f32(1.0)
    x0 = np.maximum(q[:, 0].min() - m, zero)
    x1 = np.minimum(q[:, 0].max() + m, one)
    y0 = np.maximum(q[:, 1].min() - m, zero)
    y1 = np.minimum(q[:, 1].max(), one)
    box = (np.array([x0, y0, x1, y1], dtype=f32) * f32(image_size)).astype(np.int64)  # truncation toward 0
    return tuple(int(v) for v in box)


def head_is_large_enough(head_j2d: np.ndarray, image_size: int = HEAD_IMAGE_SIZE) -> bool:
    """The authors' rule on (J, 2) head joints in [-1, 1]: box area at 512 > 100 px."""
    x0, y0, x1, y1 = head_box(head_j2d, image_size)
    return (x1 - x0) * (y1 - y0) > MIN_HEAD_AREA


def head_joints(body_model, betas: Tensor, pose: Tensor) -> Tensor:
    """(B, 7, 3) head joints of the fitted SMPL (cocoplus 12..18, or the stand-ins)."""
    verts, joints = body_model.forward_with_joints(betas, pose)
    reg = getattr(body_model, "cocoplus_regressor", None)
    if reg is not None:
        return torch.einsum("jv,bvc->bjc", reg[COCOPLUS_HEAD].to(verts), verts)
    from bdmm_cli.pose.smplify import vertex_joint_ids

    face = list(vertex_joint_ids(body_model)[:5])  # nose, reye, leye, rear, lear
    return torch.cat([joints[:, [12, 15]], verts[:, face]], dim=1)


def valid_head_frames(body_model, pose: Tensor, betas: Tensor, cam: Tensor) -> np.ndarray:
    """(B,) bool: frames the authors keep, for (B, 72) pose, (B, 10) betas, (B, 3) 256-frame cameras."""
    dev = body_model.v_template.device
    with torch.no_grad():
        j3d = head_joints(body_model, betas.float().to(dev), pose.float().to(dev))
        cam = cam.float().to(dev)
        j2d = cam[:, None, 0:1] * (j3d[..., :2] + cam[:, None, 1:3])
    return np.array([head_is_large_enough(j) for j in j2d.cpu().numpy()], dtype=bool)


__all__ = ["HEAD_IMAGE_SIZE", "MIN_HEAD_AREA", "head_box", "head_is_large_enough", "head_joints",
           "valid_head_frames"]
