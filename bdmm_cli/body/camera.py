"""The weak-perspective camera of HMR/SPIN/BDMM: orthographic, no rotation.

A vertex X (model coordinates, image y down, camera looking along +z) with camera
[s, tx, ty] lands at

    u = s * (X_x + tx),   v = s * (X_y + ty)

in `grid_sample` coordinates ((-1, -1) is the top-left corner of the image, v down).
Depth is not scaled: the official renderer puts the eye at z = -(1/tan(30 deg) + 1), so
the view depth is X_z + EYE_DISTANCE (about X_z + 2.732).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

#: Distance of the neural-renderer eye from the origin (viewing angle 30 degrees).
EYE_DISTANCE = 1.0 / math.tan(math.radians(30.0)) + 1.0


def check_cam(cam: Tensor, batch: int) -> None:
    if cam.ndim != 2 or cam.shape != (batch, 3):
        raise ValueError(f"camera must have shape ({batch}, 3) [s, tx, ty], got {tuple(cam.shape)}")


def project(verts: Tensor, cam: Tensor) -> Tensor:
    """Project vertices to the image plane.

    Args:
        verts: (B, V, 3) vertices in model coordinates.
        cam: (B, 3) weak-perspective cameras [s, tx, ty].
    Returns:
        (B, V, 2) positions (u, v) in grid_sample coordinates.
    """
    check_cam(cam, verts.shape[0])
    s = cam[:, None, 0:1]
    t = cam[:, None, 1:3]
    return s * (verts[..., :2] + t)


def project_ndc(verts: Tensor, cam: Tensor, z_offset: float = EYE_DISTANCE) -> Tensor:
    """Project vertices for the rasterizer: (u, v, z + z_offset).

    Args:
        verts: (B, V, 3); cam: (B, 3).
    Returns:
        (B, V, 3): u, v as in :func:`project`, and the view depth (positive in front).
    """
    uv = project(verts, cam)
    return torch.cat([uv, verts[..., 2:3] + z_offset], dim=-1)
