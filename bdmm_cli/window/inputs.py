"""Posed frames of a window -> the generator's `WindowInputs` (flows, pre/post flows, heatmaps).

One rule for ``bdmm animate``, training and the test split:

1. the body model poses the window's T frames, the frame before it and the frame after it
   (:attr:`WindowPoses.smpl`, the authors' 85-vector ``[cam | pose_theta | shape_beta]``),
   and the source;
2. ``body.window_flows`` renders the T + 2 mesh flows source -> target in one batched call;
3. ``body.keypoint_heatmaps`` draws the T frames' BODY_25 heatmaps.

One size rule: poses are in pixels of the pose front-end's 256 crop (:data:`CROP_SIZE`), as
the authors' JSONs and ``FramePose`` records store them, whatever the model size ``S``.
:func:`window_inputs` reads ``S`` off the source image and scales both the keypoints
(:func:`scale_keypoints`, by ``S / 256``) and the heatmap sigma (:func:`heatmap_sigma`,
``6 * S / 256``) itself, so training, the test split and ``bdmm animate`` feed the generator
identically at every size (at 256 both factors are exactly 1 and 6, the authors' values).

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


def heatmap_sigma(image_size: int) -> float:
    """The heatmap Gaussian sigma in pixels of an ``image_size`` image: 6 at 256, scaled with the size."""
    return HEATMAP_SIGMA * image_size / CROP_SIZE


def scale_keypoints(keypoints: Tensor, image_size: int) -> Tensor:
    """(..., 25, 3) ``[x, y, conf]`` in pixels of the 256 crop -> pixels of ``image_size``.

    x and y are multiplied by ``image_size / 256`` (missing joints, 0, stay 0); conf is kept.
    """
    scale = image_size / CROP_SIZE
    return torch.cat([keypoints[..., :2] * scale, keypoints[..., 2:]], dim=-1)


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
            256 crop (:data:`CROP_SIZE`, whatever the model size); ``x == 0`` or ``y == 0`` is
            a missing joint.
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
    def from_frame_poses(cls, windows: Sequence[Sequence], device: torch.device | str = "cpu") -> "WindowPoses":
        """From ``n`` lists of T + 2 FramePoses (frames, pre, post; 256-crop pixels, kept)."""
        smpl = np.stack([np.stack([p.smpl for p in w]) for w in windows]).astype(np.float32)
        kp = np.stack([np.stack([p.keypoints for p in w[:-2]]) for w in windows]).astype(np.float32)
        return cls(smpl=torch.from_numpy(smpl).to(device), keypoints=torch.from_numpy(kp).to(device))


def gather_window(smpl: Tensor, keypoints: Tensor, window: Window) -> WindowPoses:
    """Window ``window`` of a batch of clips held as tensors.

    Args:
        smpl: (B, L, 85) per frame of the clips; keypoints: (B, L, 25, 3) in 256-crop pixels.
        window: a window of ``WindowSchedule.windows(L)``.
    Returns:
        WindowPoses with n = B.
    """
    frames = list(window.frames)
    idx = torch.tensor(frames + [window.pre, window.post], device=smpl.device)
    return WindowPoses(smpl=smpl.index_select(1, idx),
                       keypoints=keypoints.index_select(1, idx[: len(frames)].to(keypoints.device)))


@torch.no_grad()
def window_inputs(body, source: Tensor, source_smpl: Tensor, poses: WindowPoses, rasterizer: str = "torch"):
    """The generator inputs of ``n`` windows (see the module docstring).

    The model size ``S`` is the source's side; keypoints and the heatmap sigma are scaled
    from the 256 crop to ``S`` here (:func:`scale_keypoints`, :func:`heatmap_sigma`).

    Args:
        body: a ``BodyModel``.
        source: (n, 3, S, S) or (1, 3, S, S) source image(s) in [-1, 1] (1 is shared).
        source_smpl: (n, 85) or (1, 85) the source pose(s).
        poses: the windows' poses (:class:`WindowPoses`, keypoints in 256-crop pixels).
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
    kp = scale_keypoints(poses.keypoints, size)
    heat = keypoint_heatmaps(kp.reshape(n * t, *kp.shape[2:]), image_size=size, sigma=heatmap_sigma(size))
    return WindowInputs(
        source=source.expand(n, -1, -1, -1),
        heatmaps=heat.view(n, t, *heat.shape[1:]),
        flows=flows, flow_pre=flow_pre, flow_post=flow_post,
    )


__all__ = ["CROP_SIZE", "HEATMAP_SIGMA", "WindowFrames", "WindowPoses", "gather_window", "heatmap_sigma",
           "scale_keypoints", "window_inputs"]
