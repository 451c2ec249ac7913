"""SPIN's input crop inside the 256x256 frame, and its camera converted to that frame.

Exactly BDMM's ``SMPLDataset/human_pose3d_estimators/spin/dataset.py::preprocess`` and
``cam_init2orig`` / ``cam_norm`` (``docs/data_path.md`` section 6):

Crop. ``box`` = person box in the 256 crop; ``scale = 200 / max(w, h)``; the image is
resized by ``floor(shape * scale)`` (cv2 bilinear), zero-padded by 224 on every side, and
the 224x224 window around the rounded, scaled box centre is cut out (``start_pt`` = its
top-left corner in the padded image). RGB / 255, ImageNet mean (0.485, 0.456, 0.406) and
std (0.229, 0.224, 0.225).

Camera. SPIN predicts ``[s, tx, ty]`` with crop pixel ``p224 = (s (X + t) + 1) * 112``.
With ``s1 = 112 s``, ``t1 = t + 1/s``: ``p224 = s1 (X + t1)``. A 256-frame pixel is
``p = (p224 + start_pt - 224) / scale = s2 (X + t2)``, with ``s2 = s1 / scale`` and
``t2 = t1 + (start_pt - 224) / s1``. In grid_sample units of an N = 256 frame,
``s = 2 s2 / N``, ``t = t2 - N / (2 s2)``, so ``p = (s (X + t) + 1) N / 2``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

IMG_RES = 224
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_MEAN = np.array(IMAGENET_MEAN, dtype=np.float32)
_STD = np.array(IMAGENET_STD, dtype=np.float32)


@dataclass(frozen=True)
class SpinCrop:
    """One SPIN input and what is needed to map its camera back.

    Attributes:
        image: (3, 224, 224) float32 tensor, normalised RGB.
        scale: float, ``200 / max(box w, box h)``.
        start_pt: (2,) float64, top-left (x, y) of the 224 window in the padded, scaled image.
    """

    image: Tensor
    scale: float
    start_pt: np.ndarray


def spin_crop(image: np.ndarray, box_xyxy: np.ndarray) -> SpinCrop:
    """Cut SPIN's 224x224 input around `box_xyxy` of `image`.

    Args:
        image: (H, W, 3) uint8 RGB (the 256x256 person crop).
        box_xyxy: (4,) person box ``x0, y0, x1, y1`` in pixels of `image`.
    Returns:
        SpinCrop (see the module docstring for the exact steps).
    """
    import cv2

    x0, y0, x1, y1 = (float(v) for v in box_xyxy)
    size = max(x1 - x0, y1 - y0)
    if not np.isfinite(size) or size < 2.0:
        raise ValueError(f"person box {box_xyxy} is too small for SPIN's crop")
    scale = 200.0 / size
    h, w = image.shape[:2]
    new_h, new_w = int(np.floor(h * scale)), int(np.floor(w * scale))
    scaled = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    factors = np.array([new_h / h, new_w / w])  # [y, x] as in the official code
    # The official code multiplies (cx, cy) by [fy, fx]; identical for square frames.
    center = np.array([(x0 + x1) / 2.0, (y0 + y1) / 2.0])
    center_scaled = np.round(center * factors).astype(np.int64) + IMG_RES
    margin = IMG_RES // 2
    start = center_scaled - margin
    # The official code zero-pads the scaled image by 224 on every side and slices the
    # window out of it; copying only the overlap into a zero window gives the same pixels.
    end = np.minimum(center_scaled + margin, [new_w + 2 * IMG_RES, new_h + 2 * IMG_RES])
    window = np.zeros((IMG_RES, IMG_RES, 3), np.uint8)  # (if clipped at the far end: zero-filled)
    sx0, sy0 = start - IMG_RES  # window corner in scaled-image pixels
    sx1, sy1 = end - IMG_RES
    xs, xe = max(sx0, 0), min(sx1, new_w)
    ys, ye = max(sy0, 0), min(sy1, new_h)
    if xe > xs and ye > ys:
        window[ys - sy0:ye - sy0, xs - sx0:xe - sx0] = scaled[ys:ye, xs:xe]
    # numpy for the normalisation: small per-frame tensors pay torch's threading overhead
    x = (window.astype(np.float32) / np.float32(255.0) - _MEAN) / _STD
    image_t = torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))
    return SpinCrop(image=image_t, scale=scale, start_pt=start.astype(np.float64))


def spin_cam_to_frame(cam: Tensor, scale: Tensor, start_pt: Tensor, frame_size: int = 256) -> Tensor:
    """Convert SPIN crop cameras to cameras of the `frame_size` frame (section 6).

    Args:
        cam: (B, 3) ``[s, tx, ty]`` predicted for the 224 crop.
        scale: (B,) or (B, 1) crop scales.
        start_pt: (B, 2) crop corners (x, y).
        frame_size: N, the frame the camera is expressed in (256).
    Returns:
        (B, 3) ``[s, tx, ty]`` with pixel = (s (X + t) + 1) N / 2 in the N frame.
    """
    scale = scale.reshape(-1, 1).to(cam)
    start_pt = start_pt.reshape(-1, 2).to(cam)
    s, t = cam[:, 0:1], cam[:, 1:3]
    s1 = s * (IMG_RES / 2)
    t1 = t + 1.0 / s
    s2 = s1 / scale
    t2 = t1 + (start_pt - IMG_RES) / s1
    n = float(frame_size)
    return torch.cat([2.0 * s2 / n, t2 - n / (2.0 * s2)], dim=1)


def project_pixels(points: Tensor, cam: Tensor, frame_size: float) -> Tensor:
    """Pixels of 3D points under a weak-perspective camera: ``(s (X + t) + 1) N / 2``.

    Args:
        points: (B, J, 3) (only x, y are used); cam: (B, 3); frame_size: N.
    Returns:
        (B, J, 2) pixel coordinates (x, y).
    """
    s = cam[:, None, 0:1]
    t = cam[:, None, 1:3]
    return (s * (points[..., :2] + t) + 1.0) * (frame_size / 2.0)


__all__ = ["IMG_RES", "SpinCrop", "project_pixels", "spin_cam_to_frame", "spin_crop"]
