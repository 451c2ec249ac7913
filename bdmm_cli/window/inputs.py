"""Posed frames of a window -> the generator's `WindowInputs` (flows, pre/post flows, heatmaps).

One rule for ``bdmm animate``, training and the test split:

1. the body model poses the window's T frames, the frame before it and the frame after it
   (:attr:`WindowPoses.smpl`, the authors' 85-vector ``[cam | pose_theta | shape_beta]``),
   and the source;
2. ``body.window_flows`` renders the T + 2 mesh flows source -> target in one batched call;
3. ``body.keypoint_heatmaps`` draws the T frames' BODY_25 heatmaps.

Which frames are "before" and "after" a window is the schedule's business
(:class:`bdmm_cli.window.schedule.WindowSchedule`); :func:`gather_window` picks them out of
a clip held as tensors (training, test split), :meth:`WindowPoses.from_frame_poses` builds
them from ``FramePose`` records (the streamed animate pipeline, after retargeting).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from bdmm_cli.window.schedule import Window

#: The pose front-end's crop size: FramePose pixels are in a crop of this side.
CROP_SIZE = 256
#: Heatmap Gaussian sigma in pixels of the 256 crop (the authors' loader).
HEATMAP_SIGMA = 6.0


@dataclass(frozen=True)
class WindowFrames:
    """One window of a frame stream (what ``window.stream.windowed`` yields).

    Attributes:
        window: the schedule's :class:`Window` (indices, padding, blending).
        frames: its T frames (``PosedFrame`` records; padding repeats the last one).
        pre: the frame before the window (``window.pre``).
        post: the frame after the window (``window.post``).
    """

    window: Window
    frames: tuple
    pre: object
    post: object

    def poses(self) -> list:
        """The T + 2 FramePoses in the order :class:`WindowPoses` expects: frames, pre, post."""
        return [f.pose for f in self.frames] + [self.pre.pose, self.post.pose]


@dataclass(frozen=True)
class WindowPoses:
    """The poses of ``n`` windows of ``T`` frames, as tensors.

    Attributes:
        smpl: (n, T + 2, 85) ``[cam | pose_theta | shape_beta]`` of the T frames, then the
            frame before and the frame after the window.
        keypoints: (n, T, 25, 3) BODY_25 ``[x, y, conf]`` of the T frames in pixels of the
            model image (S x S); ``x == 0`` or ``y == 0`` is a missing joint.
    """

    smpl: Tensor
    keypoints: Tensor

    @property
    def num_windows(self) -> int:
        return int(self.smpl.shape[0])

    @property
    def window(self) -> int:
        return int(self.smpl.shape[1]) - 2

    @classmethod
    def from_frame_poses(cls, windows: Sequence[Sequence], image_size: int,
                         device: torch.device | str = "cpu") -> "WindowPoses":
        """From ``n`` lists of T + 2 FramePoses (frames, pre, post; 256-crop pixels).

        Keypoints are scaled from the 256 crop to ``image_size`` (missing ones stay 0).
        """
        smpl = np.stack([np.stack([p.smpl for p in w]) for w in windows]).astype(np.float32)
        kp = np.stack([np.stack([p.keypoints for p in w[:-2]]) for w in windows]).astype(np.float32)
        kp_t = torch.from_numpy(kp).to(device)
        scale = image_size / CROP_SIZE
        kp_t = torch.cat([kp_t[..., :2] * scale, kp_t[..., 2:]], dim=-1)
        return cls(smpl=torch.from_numpy(smpl).to(device), keypoints=kp_t)


def gather_window(smpl: Tensor, keypoints: Tensor, window: Window) -> WindowPoses:
    """Window ``window`` of a batch of clips held as tensors.

    Args:
        smpl: (B, L, 85) per frame of the clips; keypoints: (B, L, 25, 3) in pixels of S.
        window: a window of ``WindowSchedule.windows(L)``.
    Returns:
        WindowPoses with n = B.
    """
    frames = list(window.frames)
    idx = torch.tensor(frames + [window.pre, window.post], device=smpl.device)
    return WindowPoses(smpl=smpl.index_select(1, idx),
                       keypoints=keypoints.index_select(1, idx[: len(frames)].to(keypoints.device)))


@torch.no_grad()
def window_inputs(body, source: Tensor, source_smpl: Tensor, poses: WindowPoses,
                  sigma: float = HEATMAP_SIGMA, rasterizer: str = "torch"):
    """The generator inputs of ``n`` windows (see the module docstring).

    Args:
        body: a ``BodyModel``.
        source: (n, 3, S, S) or (1, 3, S, S) source image(s) in [-1, 1] (1 is shared).
        source_smpl: (n, 85) or (1, 85) the source pose(s).
        poses: the windows' poses (:class:`WindowPoses`).
        sigma: heatmap Gaussian sigma in pixels of S.
        rasterizer: ``body.window_flows``'s backend ("torch" or "pytorch3d"; see
            ``body.pytorch3d_backend.resolve_rasterizer`` for ``--rasterizer auto``).
    Returns:
        ``model.WindowInputs`` (float32, on ``poses.smpl``'s device): source (n, 3, S, S),
        heatmaps (n, T, 25, S, S), flows (n, T, S, S, 2), flow_pre / flow_post (n, S, S, 2).
    """
    from bdmm_cli.body import keypoint_heatmaps, window_flows
    from bdmm_cli.model import WindowInputs

    n, t = poses.num_windows, poses.window
    size = int(source.shape[-1])
    allp = torch.cat([poses.smpl.reshape(n * (t + 2), -1), source_smpl.to(poses.smpl.device)], dim=0).float()
    verts = body(allp[:, 75:85].contiguous(), allp[:, 3:75].contiguous()).float()  # (n*(T+2)+m, V, 3)
    cams = allp[:, :3]
    v_src, c_src = verts[n * (t + 2):], cams[n * (t + 2):]
    verts = verts[: n * (t + 2)].view(n, t + 2, *verts.shape[1:])
    cams = cams[: n * (t + 2)].reshape(n, t + 2, 3)
    flows, flow_pre, flow_post = window_flows(
        v_src.expand(n, -1, -1), c_src.expand(n, -1),
        verts[:, :t], cams[:, :t],
        verts[:, t], cams[:, t], verts[:, t + 1], cams[:, t + 1],
        body.faces, size, backend=rasterizer,
    )
    kp = poses.keypoints
    heat = keypoint_heatmaps(kp.reshape(n * t, *kp.shape[2:]), image_size=size, sigma=sigma)
    return WindowInputs(
        source=source.expand(n, -1, -1, -1),
        heatmaps=heat.view(n, t, *heat.shape[1:]),
        flows=flows, flow_pre=flow_pre, flow_post=flow_post,
    )


__all__ = ["CROP_SIZE", "HEATMAP_SIGMA", "WindowFrames", "WindowPoses", "gather_window", "window_inputs"]
