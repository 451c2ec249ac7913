"""Optional pytorch3d backend, configured to the official rules as far as pytorch3d allows.

pytorch3d has no Linux wheel on PyPI (only macOS wheels; on Linux it is built from source),
so the pure-PyTorch rasterizer in :mod:`bdmm_cli.body.rasterizer` is the default. This
backend is chosen by ``resolve_rasterizer``: ``"pytorch3d"`` on request (an error where it is
not usable), ``"auto"`` only where pytorch3d imports AND passes a one-triangle conformance
check against the pure-PyTorch rasterizer (``conforms``); otherwise ``"torch"``. Configuration: one face per pixel, no
blur, back faces culled, barycentrics clipped to [0, 1] and renormalised, pixel centres
at align_corners=False positions. Our coordinates (x right, y down) become pytorch3d's
NDC (+X left, +Y up) by negating x and y, a 180-degree rotation that keeps the winding,
so the same faces are culled. Known differences: pytorch3d interpolates depth linearly
(sum w_k z_k) where the original uses 1 / sum(w_k / z_k), and treats pixel centres exactly
on an edge by its own rule; both only matter at depth near-ties and edge ties. The
conformance test (`tests/test_body_rasterize.py`) runs only where pytorch3d is installed.
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor

from bdmm_cli.body.rasterizer import Fragments, _image_hw, check_mesh, rasterize
from bdmm_cli.errors import InputError, NotAvailableError

__all__ = ["RASTERIZERS", "conforms", "pytorch3d_available", "rasterize_pytorch3d", "resolve_rasterizer"]

#: The values of ``--rasterizer``.
RASTERIZERS = ("auto", "torch", "pytorch3d")


def pytorch3d_available() -> bool:
    try:
        import pytorch3d.renderer.mesh.rasterize_meshes  # noqa: F401
        import pytorch3d.structures  # noqa: F401
    except Exception:  # ImportError, or a broken build (undefined symbols)
        return False
    return True


def rasterize_pytorch3d(verts_ndc: Tensor, faces: Tensor, image_size, check: bool = True) -> Fragments:
    """Same contract as :func:`bdmm_cli.body.rasterizer.rasterize`, through pytorch3d."""
    if not pytorch3d_available():
        raise NotAvailableError("the pytorch3d backend needs pytorch3d, which is not installed")
    from pytorch3d.renderer.mesh.rasterize_meshes import rasterize_meshes
    from pytorch3d.structures import Meshes

    if check:
        check_mesh(verts_ndc, faces)
    h, w = _image_hw(image_size)
    b, nf = verts_ndc.shape[0], faces.shape[0]
    faces = faces.to(verts_ndc.device, torch.int64)
    flipped = torch.cat([-verts_ndc[..., :2], verts_ndc[..., 2:]], dim=-1)
    meshes = Meshes(verts=list(flipped.float()), faces=[faces] * b)
    p2f, _zbuf, bary, _dists = rasterize_meshes(
        meshes,
        image_size=(h, w),
        blur_radius=0.0,
        faces_per_pixel=1,
        perspective_correct=False,
        clip_barycentric_coords=True,
        cull_backfaces=True,
    )
    p2f = p2f[..., 0].long()
    covered = p2f >= 0
    offsets = (torch.arange(b, device=p2f.device) * nf).view(b, 1, 1)
    pix_to_face = torch.where(covered, p2f - offsets, torch.full_like(p2f, -1))
    bary = bary[..., 0, :].to(verts_ndc.dtype)
    bary = torch.where(covered[..., None], bary, torch.full_like(bary, -1.0))
    # Depth by the official rule from the returned weights.
    vidx = faces[pix_to_face.clamp(min=0)]
    z = verts_ndc[..., 2][torch.arange(b, device=p2f.device).view(b, 1, 1, 1), vidx]
    zbuf = 1.0 / (bary.clamp(min=0) / z).sum(-1)
    zbuf = torch.where(covered, zbuf, torch.full_like(zbuf, -1.0))
    return Fragments(pix_to_face=pix_to_face, bary_coords=bary, zbuf=zbuf)


def conforms(candidate, device: str = "cpu") -> bool:
    """One-triangle conformance check of a rasterizer against the pure-PyTorch one.

    ``candidate(verts_ndc (1, 3, 3), faces (1, 3), image_size) -> Fragments``. A triangle whose
    edges pass no pixel centre of a 16 x 16 image (so no edge tie can decide a pixel) must
    cover exactly the same pixels with barycentrics within 1e-4. Any exception counts as a
    failure (a broken build).
    """
    verts = torch.tensor([[[-0.71, -0.63, 2.0], [0.77, -0.52, 2.5], [-0.13, 0.83, 3.0]]], device=device)
    faces = torch.tensor([[0, 2, 1]], device=device)  # front-facing in our convention (66 pixels)
    want = rasterize(verts, faces, 16)
    try:
        got = candidate(verts, faces, 16)
        if not torch.equal(got.pix_to_face.cpu(), want.pix_to_face.cpu()):
            return False
        m = want.mask
        return bool(torch.allclose(got.bary_coords[m].float().cpu(), want.bary_coords[m].float().cpu(), atol=1e-4, rtol=0))
    except Exception:  # noqa: BLE001 - a build that cannot rasterize one triangle is not usable
        return False


@functools.cache
def resolve_rasterizer(choice: str = "auto", device: str = "cpu") -> str:
    """``--rasterizer auto|torch|pytorch3d`` -> the backend name ``window_flows`` takes.

    ``auto`` picks pytorch3d only where it imports and passes :func:`conforms` on ``device``;
    ``pytorch3d`` raises NotAvailableError where it does not (instead of silently using the
    other one); ``torch`` is the pure-PyTorch rasterizer, always available.
    """
    if choice not in RASTERIZERS:
        raise InputError(f"unknown rasterizer {choice!r} (use one of: {', '.join(RASTERIZERS)})")
    if choice == "torch":
        return "torch"
    usable = pytorch3d_available() and conforms(rasterize_pytorch3d, device)
    if usable:
        return "pytorch3d"
    if choice == "pytorch3d":
        why = "does not pass the one-triangle conformance check" if pytorch3d_available() else "is not installed"
        raise NotAvailableError(f"--rasterizer pytorch3d: pytorch3d {why} on {device}; use --rasterizer torch "
                                "(the pure-PyTorch rasterizer) or build pytorch3d from source")
    return "torch"
