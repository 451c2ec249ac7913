"""Rotation conversions used by SPIN/HMR and by the SMPL smoothing.

All functions are batched over leading dimensions and differentiable.

- ``rot6d_to_rotmat``: SPIN's 6D representation (Zhou et al. 2019) read as
  ``view(-1, 3, 2)``; Gram-Schmidt gives the columns ``b1, b2, b3 = b1 x b2``.
- ``rotmat_to_rot6d``: the inverse view (first two columns, interleaved as SPIN stores them).
- ``rotmat_to_axis_angle``: through a unit quaternion (Shepperd's method); a NaN in the
  result is replaced by 0, as SPIN does.
- ``axis_angle_to_rotmat``: Rodrigues' formula.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def rot6d_to_rotmat(x: Tensor) -> Tensor:
    """(..., 6) or (B, 6J) 6D rotations -> (N, 3, 3) rotation matrices.

    The input is reshaped to ``(-1, 3, 2)``: the two columns ``a1 = x[:, :, 0]`` and
    ``a2 = x[:, :, 1]``; ``b1 = a1/|a1|``, ``b2 = normalise(a2 - (b1.a2) b1)``,
    ``b3 = b1 x b2``; the matrix has columns ``[b1, b2, b3]``.
    """
    x = x.reshape(-1, 3, 2)
    a1, a2 = x[..., 0], x[..., 1]
    b1 = F.normalize(a1, dim=-1)
    b2 = F.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1)
    b3 = torch.cross(b1, b2, dim=-1)
    return torch.stack((b1, b2, b3), dim=-1)


def rotmat_to_rot6d(rotmat: Tensor) -> Tensor:
    """(N, 3, 3) -> (N, 6) in SPIN's layout, so that ``rot6d_to_rotmat(rotmat_to_rot6d(R)) == R``."""
    return rotmat[..., :, :2].reshape(*rotmat.shape[:-2], 6)


def rotmat_to_quaternion(rotmat: Tensor) -> Tensor:
    """(..., 3, 3) rotation matrices -> (..., 4) unit quaternions (w, x, y, z), w >= 0.

    Shepperd's method: the largest of the four diagonal combinations is used as the
    pivot, so the result is accurate for every angle.
    """
    m = rotmat
    m00, m01, m02 = m[..., 0, 0], m[..., 0, 1], m[..., 0, 2]
    m10, m11, m12 = m[..., 1, 0], m[..., 1, 1], m[..., 1, 2]
    m20, m21, m22 = m[..., 2, 0], m[..., 2, 1], m[..., 2, 2]
    # 4 * q_i^2 for the four components
    cands = torch.stack(
        [1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], dim=-1
    )
    # The quaternion computed from each pivot (rows), all scaled by 4 * q_pivot.
    q_w = torch.stack([cands[..., 0], m21 - m12, m02 - m20, m10 - m01], dim=-1)
    q_x = torch.stack([m21 - m12, cands[..., 1], m10 + m01, m02 + m20], dim=-1)
    q_y = torch.stack([m02 - m20, m10 + m01, cands[..., 2], m12 + m21], dim=-1)
    q_z = torch.stack([m10 - m01, m20 + m02, m21 + m12, cands[..., 3]], dim=-1)
    all_q = torch.stack([q_w, q_x, q_y, q_z], dim=-2)  # (..., pivot, 4)
    pivot = cands.argmax(dim=-1, keepdim=True)
    q = torch.gather(all_q, -2, pivot[..., None].expand(*pivot.shape, 4)).squeeze(-2)
    q = F.normalize(q, dim=-1)
    return torch.where(q[..., :1] < 0, -q, q)


def quaternion_to_axis_angle(q: Tensor) -> Tensor:
    """(..., 4) unit quaternions (w, x, y, z) -> (..., 3) axis-angle."""
    v = q[..., 1:]
    sin_half = v.norm(dim=-1, keepdim=True)
    angle = 2.0 * torch.atan2(sin_half, q[..., :1])
    # angle / sin(angle/2) -> 2 as the angle -> 0
    small = sin_half < 1e-6
    scale = torch.where(small, 2.0 / q[..., :1].clamp(min=1e-6), angle / sin_half.clamp(min=1e-12))
    return v * scale


def rotmat_to_axis_angle(rotmat: Tensor) -> Tensor:
    """(..., 3, 3) rotation matrices -> (..., 3) axis-angle; NaN entries become 0."""
    aa = quaternion_to_axis_angle(rotmat_to_quaternion(rotmat))
    return torch.nan_to_num(aa, nan=0.0)


def axis_angle_to_rotmat(aa: Tensor) -> Tensor:
    """(..., 3) axis-angle -> (..., 3, 3) by Rodrigues' formula (exact at angle 0)."""
    angle = aa.norm(dim=-1, keepdim=True)[..., None]  # (..., 1, 1)
    x, y, z = aa.unbind(-1)
    zero = torch.zeros_like(x)
    k = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=-1).reshape(*aa.shape[:-1], 3, 3)
    eye = torch.eye(3, dtype=aa.dtype, device=aa.device).expand_as(k)
    small = angle < 1e-6
    safe = torch.where(small, torch.ones_like(angle), angle)
    a = torch.where(small, 1.0 - angle**2 / 6.0, torch.sin(safe) / safe)
    b = torch.where(small, 0.5 - angle**2 / 24.0, (1.0 - torch.cos(safe)) / safe**2)
    return eye + a * k + b * (k @ k)


__all__ = [
    "axis_angle_to_rotmat",
    "quaternion_to_axis_angle",
    "rot6d_to_rotmat",
    "rotmat_to_axis_angle",
    "rotmat_to_quaternion",
    "rotmat_to_rot6d",
]
