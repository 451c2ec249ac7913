"""Mesh flows: for every target pixel, where to sample the source photo.

Official rule (`docs/data_path.md`, section 3): rasterize the target mesh with the
target camera; at a covered pixel with face f and barycentric weights w, the flow is
sum_k w_k * (u, v)_source[f, k], the SOURCE projection of the same surface point; -2 where
the target mesh does not cover the pixel (grid_sample then reads zeros there). Occluded
source faces are sampled anyway (no visibility test), as in the original.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bdmm_cli.body.camera import check_cam, project, project_ndc
from bdmm_cli.body.rasterizer import Fragments, check_mesh, rasterize

__all__ = ["mesh_flow", "flow_from_fragments", "window_flows", "warp", "MeshFlow", "UNCOVERED"]

#: Flow value of pixels the target mesh does not cover (outside the grid_sample range).
UNCOVERED = -2.0


def _rasterize(verts_ndc: Tensor, faces: Tensor, image_size, backend: str) -> Fragments:
    """The backend's rasterizer on a mesh :func:`mesh_flow` has already checked."""
    if backend == "torch":
        return rasterize(verts_ndc, faces, image_size, check=False)
    if backend == "pytorch3d":
        from bdmm_cli.body.pytorch3d_backend import rasterize_pytorch3d

        return rasterize_pytorch3d(verts_ndc, faces, image_size, check=False)
    raise ValueError(f"unknown rasterizer backend {backend!r} (use 'torch' or 'pytorch3d')")


def flow_from_fragments(frags: Fragments, uv_src: Tensor, faces: Tensor) -> Tensor:
    """Apply target barycentrics to the source projection of the same faces.

    Args:
        frags: target fragments, fields (B, H, W[, 3]).
        uv_src: (B, V, 2) source projection (grid_sample coordinates).
        faces: (F, 3) int64.
    Returns:
        (B, H, W, 2) flow, UNCOVERED (-2) where pix_to_face < 0.
    """
    b, nv = uv_src.shape[:2]
    faces = faces.to(uv_src.device, torch.int64)
    p2f = frags.pix_to_face.reshape(-1)
    idx = (p2f >= 0).nonzero().squeeze(1)  # covered flat pixels
    hw = p2f.numel() // b
    vid = faces.index_select(0, p2f.index_select(0, idx)) + ((idx // hw) * nv)[:, None]  # (M, 3)
    flat_uv = uv_src.reshape(b * nv, 2)
    bary = frags.bary_coords.reshape(-1, 3).index_select(0, idx).to(uv_src.dtype)  # (M, 3)
    vals = sum(bary[:, k : k + 1] * flat_uv.index_select(0, vid[:, k]) for k in range(3))
    flow = torch.full((p2f.numel(), 2), UNCOVERED, dtype=uv_src.dtype, device=uv_src.device)
    return flow.index_put((idx,), vals).view(*frags.pix_to_face.shape, 2)


def mesh_flow(
    verts_src: Tensor,
    verts_tgt: Tensor,
    faces: Tensor,
    cam_src: Tensor,
    cam_tgt: Tensor,
    image_size: int | tuple[int, int],
    *,
    backend: str = "torch",
) -> Tensor:
    """Flow from the target image to the source image (official `get_flow`).

    Args:
        verts_src, verts_tgt: (B, V, 3) vertices of the source and target bodies.
        faces: (F, 3) int64.
        cam_src, cam_tgt: (B, 3) weak-perspective cameras [s, tx, ty].
        image_size: S (or (H, W)) of the target image.
        backend: "torch" (default, any device) or "pytorch3d" (when installed).
    Returns:
        (B, H, W, 2) grid_sample coordinates (x, y) into the source image; -2 where
        the target mesh does not cover the pixel.
    """
    check_mesh(verts_tgt, faces)
    if verts_src.shape != verts_tgt.shape:
        raise ValueError(
            f"source and target vertices differ in shape: {tuple(verts_src.shape)} vs {tuple(verts_tgt.shape)}"
        )
    check_cam(cam_src, verts_src.shape[0])
    check_cam(cam_tgt, verts_tgt.shape[0])
    frags = _rasterize(project_ndc(verts_tgt, cam_tgt), faces, image_size, backend)
    return flow_from_fragments(frags, project(verts_src, cam_src), faces)


def window_flows(
    verts_src: Tensor,
    cam_src: Tensor,
    verts_frames: Tensor,
    cams_frames: Tensor,
    verts_pre: Tensor,
    cam_pre: Tensor,
    verts_post: Tensor,
    cam_post: Tensor,
    faces: Tensor,
    image_size: int,
    *,
    backend: str = "torch",
) -> tuple[Tensor, Tensor, Tensor]:
    """All T + 2 flows of a window (every frame, the previous and the next) in one call.

    Args:
        verts_src: (B, V, 3) source body; cam_src: (B, 3).
        verts_frames: (B, T, V, 3) the window's bodies; cams_frames: (B, T, 3).
        verts_pre, verts_post: (B, V, 3) bodies of the frames before / after the window;
            cam_pre, cam_post: (B, 3).
        faces: (F, 3) int64; image_size: S.
    Returns:
        flows (B, T, S, S, 2), flow_pre (B, S, S, 2), flow_post (B, S, S, 2).
    """
    if verts_frames.ndim != 4 or cams_frames.ndim != 3:
        raise ValueError(
            f"verts_frames must be (B, T, V, 3) and cams_frames (B, T, 3), got "
            f"{tuple(verts_frames.shape)} and {tuple(cams_frames.shape)}"
        )
    b, t, v, _ = verts_frames.shape
    tgt_v = torch.cat([verts_frames, verts_pre[:, None], verts_post[:, None]], dim=1)  # (B,T+2,V,3)
    tgt_c = torch.cat([cams_frames, cam_pre[:, None], cam_post[:, None]], dim=1)  # (B,T+2,3)
    src_v = verts_src[:, None].expand(b, t + 2, v, 3)
    src_c = cam_src[:, None].expand(b, t + 2, 3)
    flows = mesh_flow(
        src_v.reshape(b * (t + 2), v, 3),
        tgt_v.reshape(b * (t + 2), v, 3),
        faces,
        src_c.reshape(b * (t + 2), 3),
        tgt_c.reshape(b * (t + 2), 3),
        image_size,
        backend=backend,
    )
    flows = flows.view(b, t + 2, *flows.shape[1:])
    return flows[:, :t], flows[:, t], flows[:, t + 1]


def warp(image: Tensor, flow: Tensor) -> Tensor:
    """Warp the source image with a flow: bilinear, zeros outside, align_corners=False.

    The one warp of the project: the generator warps its encoder features with it too (a few
    dozen calls per window next to full-size convolutions, so this rank check costs nothing measurable).

    Args:
        image: (B, C, H, W); flow: (B, H', W', 2) grid_sample coordinates.
    Returns:
        (B, C, H', W').
    """
    if image.ndim != 4 or flow.ndim != 4 or flow.shape[-1] != 2 or flow.shape[0] != image.shape[0]:
        raise ValueError(f"warp needs image (B,C,H,W) and flow (B,H,W,2), got {tuple(image.shape)} and {tuple(flow.shape)}")
    return F.grid_sample(image, flow.to(image.dtype), mode="bilinear", padding_mode="zeros", align_corners=False)


class MeshFlow(nn.Module):
    """Module form of :func:`mesh_flow` for a fixed topology and image size."""

    def __init__(self, faces: Tensor, image_size: int, backend: str = "torch"):
        super().__init__()
        self.register_buffer("faces", torch.as_tensor(faces, dtype=torch.int64), persistent=False)
        self.image_size = image_size
        self.backend = backend

    def forward(self, verts_src: Tensor, verts_tgt: Tensor, cam_src: Tensor, cam_tgt: Tensor) -> Tensor:
        return mesh_flow(verts_src, verts_tgt, self.faces, cam_src, cam_tgt, self.image_size, backend=self.backend)
