"""Composing output frames: side-by-side and the preview's drawings.

Frames here are numpy ``(H, W, 3)`` uint8 RGB (what the video writer takes), batches of
them ``(N, H, W, 3)``; the conversions between frames and network tensors are in
``video.image`` (``to_uint8``, ``to_tensor``, ``resize``).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

#: Colour of the mesh overlay in the preview (RGB).
MESH_COLOUR = (40, 220, 90)


def side_by_side(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Two (N, S, S, 3) batches -> (N, S, 2S, 3): left | right."""
    return np.concatenate([left, right], axis=2)


def mesh_overlay(crops: np.ndarray, covered: Tensor, alpha: float = 0.45) -> np.ndarray:
    """Tint the pixels a mesh covers and outline its silhouette.

    Args:
        crops: (N, S, S, 3) uint8 images at the mask's resolution.
        covered: (N, S, S) bool, the pixels the mesh covers (``alpha = 0``: outline only).
    Returns:
        (N, S, S, 3) uint8.
    """
    cov = covered.float().cpu()[:, None]  # (N, 1, S, S)
    eroded = -F.max_pool2d(-cov, 3, stride=1, padding=1)
    edge = (cov - eroded).clamp(0, 1)
    base = torch.from_numpy(np.ascontiguousarray(crops)).permute(0, 3, 1, 2).float()
    colour = torch.tensor(MESH_COLOUR, dtype=torch.float32).view(1, 3, 1, 1)
    out = base * (1 - alpha * cov) + colour * alpha * cov
    out = out * (1 - edge) + colour * edge
    return out.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def body_over_photo(photo: np.ndarray, warped: np.ndarray, covered: Tensor, fade: float = 0.12) -> np.ndarray:
    """The preview's right half: the photo warped onto a body where the body is, the photo
    itself faded towards grey (``fade`` of its contrast) elsewhere, the body outlined.

    Args:
        photo: (S, S, 3) uint8; warped: (N, S, S, 3) uint8; covered: (N, S, S) bool.
    Returns:
        (N, S, S, 3) uint8.
    """
    faint = np.rint(128.0 + fade * (photo.astype(np.float32) - 128.0)).astype(np.uint8)
    mask = covered.cpu().numpy()[..., None]
    return mesh_overlay(np.where(mask, warped, faint[None]), covered, alpha=0.0)


def label_frames(frames: np.ndarray, text: str) -> np.ndarray:
    """(N, S, S, 3) uint8 -> a copy with ``text`` in the top-left corner (white on a dark band)."""
    import cv2

    out = np.ascontiguousarray(frames).copy()
    scale = max(out.shape[1] / 512.0, 0.35)
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    for frame in out:
        frame[: h + base + 6, : w + 8] //= 3
        cv2.putText(frame, text, (4, h + 3), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return out


__all__ = ["MESH_COLOUR", "body_over_photo", "label_frames", "mesh_overlay", "side_by_side"]
