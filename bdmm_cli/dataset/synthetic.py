"""A small generated data set in the official layout, for tests, benchmarks and demos.

Each video is a smoothly moving body of a given body model (the synthetic model of
`bdmm_cli.body.synthetic` in tests): small random SMPL poses around an upright stance,
a weak-perspective camera that frames the body, frames rendered by warping one random
smooth "texture" image with the mesh flow from the first frame's body (so frames are
consistent with the flows the trainer computes), BODY_25-like keypoints from the
projected joints. Not a real person; enough to exercise every code path.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from bdmm_cli.dataset.kptsmpl import FramePose
from bdmm_cli.dataset.layout import TestSequence, default_test_list, write_test_list
from bdmm_cli.dataset.pose_dir import PosedFrame, make_pose_dir, write_posed_frame


def _smooth_texture(g: torch.Generator, size: int) -> torch.Tensor:
    """(3, S, S) smooth random colours in [-1, 1]."""
    coarse = torch.rand(1, 3, 6, 6, generator=g) * 2 - 1
    return F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)[0].clamp(-1, 1)


def _poses(g: torch.Generator, n: int, amplitude: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-frame pose (N, 72), betas (10,), cams (N, 3): smooth small motions."""
    t = torch.arange(n, dtype=torch.float32)[:, None]
    freq = 0.15 + 0.25 * torch.rand(1, 72, generator=g)
    phase = 2 * math.pi * torch.rand(1, 72, generator=g)
    amp = amplitude * torch.rand(1, 72, generator=g)
    pose = amp * torch.sin(freq * t + phase)
    pose[:, 0] += math.pi                  # upright in the image (y down), HMR convention
    pose[:, 1:3] *= 0.3
    betas = 0.3 * torch.randn(10, generator=g)
    cams = torch.stack([
        0.85 + 0.03 * torch.sin(0.2 * t[:, 0]),
        0.03 * torch.sin(0.11 * t[:, 0]),
        0.08 + 0.02 * torch.cos(0.13 * t[:, 0]),
    ], dim=1)
    return pose, betas, cams


def write_synthetic_dataset(
    root: Path | str,
    body_model: Path | str,
    num_videos: int = 2,
    num_frames: int = 36,
    image_size: int = 256,
    split: str = "train",
    seed: int = 0,
    amplitude: float = 0.25,
    test_list: bool = True,
    background: tuple[float, float, float] = (0.0, 0.0, 0.0),
) -> Path:
    """Write `num_videos` videos of `num_frames` frames to `<root>/<split>/video_XX.mp4/`.

    Frames are `image_size` PNGs; keypoints and cameras are in pixels of a 256 crop as in
    the official JSONs. With `test_list`, also writes `<root>/test_list.csv` for the split.
    `background` is the colour in [-1, 1] where the body does not cover the frame.
    Returns `root`.
    """
    from bdmm_cli.body import load_body_model, mesh_flow, warp

    root = Path(root)
    body = load_body_model(Path(body_model))
    g = torch.Generator().manual_seed(seed)
    for v in range(num_videos):
        vdir = root / split / f"video_{v:02d}.mp4"
        make_pose_dir(vdir)
        pose, betas, cams = _poses(g, num_frames, amplitude)
        with torch.no_grad():
            verts, joints = body.forward_with_joints(betas.expand(num_frames, 10), pose)
            texture = _smooth_texture(g, image_size)[None].expand(num_frames, -1, -1, -1)
            src_v = verts[:1].expand(num_frames, -1, -1)
            src_c = cams[:1].expand(num_frames, -1)
            flows = mesh_flow(src_v, verts, body.faces, src_c, cams, image_size)
            frames = warp(texture.contiguous(), flows)
            covered = (flows[..., :1] > -2).permute(0, 3, 1, 2)
            frames = torch.where(covered, frames, torch.tensor(background).view(1, 3, 1, 1))
        # keypoints in pixels of the 256 crop: pixel = (s (X + t) + 1) * 256 / 2
        xy = (cams[:, None, :1] * (joints[..., :2] + cams[:, None, 1:]) + 1) * 128.0
        kp = torch.zeros(num_frames, 25, 3)
        kp[:, :24, :2] = xy
        kp[:, :24, 2] = 0.9                                  # joint 24 stays missing (0, 0, 0)
        for i in range(num_frames):
            img = ((frames[i].permute(1, 2, 0) + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).numpy()
            xyv = kp[i, :24, :2]
            box = np.array([xyv[:, 0].min(), xyv[:, 1].min(), xyv[:, 0].max(), xyv[:, 1].max()], dtype=np.float32)
            write_posed_frame(vdir, PosedFrame(i, img, FramePose(
                keypoints=kp[i].numpy(), bbox_xyxy=box, cam=cams[i].numpy(),
                pose_theta=pose[i].numpy(), shape_beta=betas.numpy())))
    if test_list:
        from bdmm_cli.dataset.layout import OfficialDataset

        seqs: list[TestSequence] = default_test_list(OfficialDataset(root, split))
        write_test_list(root / "test_list.csv", seqs, root, force=True)
    return root
