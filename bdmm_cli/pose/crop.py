"""The authors' person crop: running union of boxes, height x1.3, square, edge pad, 256.

A faithful port of BDMM's ``SMPLDataset/human_cropper/cropper.py`` as used by
``preprocess.py`` (``docs/data_path.md`` section 5, step 3):

1. ``union_boxes``: the "active" box is the running union (min x0, y0; max x1, y1) of
   the per-frame keypoint boxes seen so far in the video.
2. ``enlarge_box``: centre (floored), height x ``factor`` (1.3), width = that height,
   clamped to the image, integer pixels.
3. ``pad_box``: the authors' second padding step, reproduced as written (it compares
   the box's width with its height under swapped names, so it pads the already longer
   side; it only matters when step 2 was clamped by the image border).
4. ``square_box``: pads the shorter side towards a square, clamped to the image.
5. ``crop_to_square``: cut, edge-pad the shorter side to a square, resize to 256
   (cv2 bilinear). ``scale = 256 / padded_size``; ``start_pt`` = (top-left corner
   minus padding) x scale; a point p of the frame maps to ``p * scale - start_pt``.

``CropTracker`` runs this per frame (``mode="union"``, the authors'), or with a per-frame
box whose centre and size are One-Euro smoothed (``mode="smoothed"``), which follows a
person who moves across a wide frame with less empty margin.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bdmm_cli.pose.filters import OneEuroFilter

CROP_SIZE = 256
CROP_FACTOR = 1.3


def union_boxes(box: np.ndarray, active: np.ndarray | None) -> np.ndarray:
    """Running union of XYXY boxes (``update_active_boxes``)."""
    box = np.asarray(box, dtype=np.float64)
    if active is None:
        return box.copy()
    return np.array([min(active[0], box[0]), min(active[1], box[1]), max(active[2], box[2]), max(active[3], box[3])])


def enlarge_box(box: np.ndarray, image_shape: tuple[int, int], factor: float = CROP_FACTOR) -> tuple[int, int, int, int]:
    """Height x `factor` around the floored centre, width = new height, clamped (``enlarge_boxes``)."""
    x0, y0, x1, y1 = (float(v) for v in box)
    height, width = image_shape
    h = y1 - y0
    ctr_x = (x0 + x1) // 2
    ctr_y = (y0 + y1) // 2
    new_h = h * factor
    ny0 = max(0, int(ctr_y - new_h / 2))
    ny1 = min(height, int(ctr_y + new_h / 2))
    side = ny1 - ny0
    nx0 = max(0, int(ctr_x - side / 2))
    nx1 = min(width, int(ctr_x + side / 2))
    return nx0, ny0, nx1, ny1


def _split(pad_size: int) -> tuple[int, int]:
    pad = pad_size // 2
    return (pad, pad) if pad_size % 2 == 0 else (pad, pad + 1)


def _grow(box: tuple[int, int, int, int], image_shape: tuple[int, int], along_x: bool, amount: int):
    """Grow `box` by `amount` pixels along x or y (split as ``_split``), clamped to the image."""
    orig_h, orig_w = image_shape
    x0, y0, x1, y1 = box
    p1, p2 = _split(amount)
    if along_x:
        return max(0, x0 - p1), y0, min(orig_w, x1 + p2), y1
    return x0, max(0, y0 - p1), x1, min(orig_h, y1 + p2)


def pad_box(box: tuple[int, int, int, int], image_shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """The authors' ``pad_boxes``, reproduced as written (see the module docstring): the
    LONGER side grows by the difference of the sides."""
    box_w, box_h = int(box[2] - box[0]), int(box[3] - box[1])
    return _grow(box, image_shape, along_x=box_w > box_h, amount=abs(box_w - box_h))


def square_box(box: tuple[int, int, int, int], image_shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """Pad the shorter side towards a square, clamped (``get_approximate_square_crop_boxes``)."""
    box_w, box_h = int(box[2] - box[0]), int(box[3] - box[1])
    return _grow(box, image_shape, along_x=box_h > box_w, amount=abs(box_w - box_h))


def crop_window(active_box: np.ndarray, image_shape: tuple[int, int], factor: float = CROP_FACTOR) -> tuple[int, int, int, int]:
    """Steps 2-4: the integer frame region ``x0, y0, x1, y1`` that is cut out."""
    x0, y0, x1, y1 = square_box(pad_box(enlarge_box(active_box, image_shape, factor), image_shape), image_shape)
    if x1 - x0 < 2 or y1 - y0 < 2:
        raise ValueError(f"person box {np.asarray(active_box).tolist()} gives an empty crop")
    return x0, y0, x1, y1


@dataclass(frozen=True)
class CropTransform:
    """How frame pixels map into the square crop: ``p_crop = p_frame * scale - start_pt``.

    Attributes:
        window: (x0, y0, x1, y1) integer frame region that was cut (before edge padding).
        scale: crop size / padded square size.
        start_pt: (2,) float64 (x, y), the padded square's corner times `scale`.
        size: side of the crop in pixels (256).
    """

    window: tuple[int, int, int, int]
    scale: float
    start_pt: np.ndarray
    size: int = CROP_SIZE

    def points_to_crop(self, xy: np.ndarray) -> np.ndarray:
        """(..., 2) frame pixels -> crop pixels."""
        return np.asarray(xy, dtype=np.float64) * self.scale - self.start_pt

    def points_to_frame(self, xy: np.ndarray) -> np.ndarray:
        """(..., 2) crop pixels -> frame pixels."""
        return (np.asarray(xy, dtype=np.float64) + self.start_pt) / self.scale

    def box_to_crop(self, box: np.ndarray) -> np.ndarray:
        """(4,) XYXY frame box -> crop box (``crop_resize_boxes``)."""
        b = np.asarray(box, dtype=np.float64)
        return np.concatenate([self.points_to_crop(b[:2]), self.points_to_crop(b[2:])])


def crop_transform(window: tuple[int, int, int, int], size: int = CROP_SIZE) -> CropTransform:
    """The transform of ``crop_to_square`` for a window (no pixels needed)."""
    x0, y0, x1, y1 = window
    h, w = y1 - y0, x1 - x0
    start = np.array([x0, y0], dtype=np.float64)
    p1, _ = _split(abs(h - w))
    if h < w:
        start -= (0, p1)
    elif h > w:
        start -= (p1, 0)
    scale = size / max(h, w)
    return CropTransform(window=(int(x0), int(y0), int(x1), int(y1)), scale=scale, start_pt=start * scale, size=size)


def crop_to_square(image: np.ndarray, window: tuple[int, int, int, int], size: int = CROP_SIZE) -> tuple[np.ndarray, CropTransform]:
    """Step 5: cut `window`, edge-pad to a square, resize to `size` (``process_crop_img``).

    Args:
        image: (H, W, 3) uint8.
        window: integer (x0, y0, x1, y1) from :func:`crop_window`.
    Returns:
        ((size, size, 3) uint8 crop, its CropTransform).
    """
    import cv2

    x0, y0, x1, y1 = window
    crop = image[y0:y1, x0:x1]
    h, w = crop.shape[:2]
    p1, p2 = _split(abs(h - w))
    if h < w:
        crop = np.pad(crop, ((p1, p2), (0, 0), (0, 0)), mode="edge")
    elif h > w:
        crop = np.pad(crop, ((0, 0), (p1, p2), (0, 0)), mode="edge")
    out = cv2.resize(crop, (size, size), interpolation=cv2.INTER_LINEAR)
    return out, crop_transform(window, size)


def map_keypoints(keypoints: np.ndarray, transform: CropTransform, missing: str = "official") -> np.ndarray:
    """(25, 3) frame keypoints -> crop keypoints (``crop_resize_kps``).

    Args:
        keypoints: rows ``x, y, conf``; missing joints have conf 0.
        missing: "official" maps a missing joint as OpenPose's ``(-1, -1)`` like any
            joint (the authors' data: it lands just off the top-left of the crop and the
            heatmap draws a partial blob there; what the released weights were trained
            on); "zero" writes ``(0, 0, 0)`` (no heatmap blob).
    """
    kp = np.asarray(keypoints, dtype=np.float64).copy()
    absent = kp[:, 2] <= 0
    if missing == "official":
        kp[absent, :2] = -1.0
        kp[:, :2] = transform.points_to_crop(kp[:, :2])
    elif missing == "zero":
        kp[:, :2] = transform.points_to_crop(kp[:, :2])
        kp[absent, :2] = 0.0
    else:
        raise ValueError(f"missing must be 'official' or 'zero', got {missing!r}")
    kp[absent, 2] = 0.0
    return kp.astype(np.float32)


def center_square_window(image_shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """The largest centred square of a frame (used before any person was seen)."""
    h, w = image_shape
    side = min(h, w)
    x0, y0 = (w - side) // 2, (h - side) // 2
    return x0, y0, x0 + side, y0 + side


class CropTracker:
    """Per-frame crop windows for a video.

    Args:
        mode: "union" (the authors': running union of all boxes so far) or "smoothed"
            (each frame's own box, its centre and height One-Euro smoothed).
        factor: height enlargement (1.3).
        fps: frame rate for the smoothed mode's filter.
    """

    def __init__(self, mode: str = "union", factor: float = CROP_FACTOR, fps: float = 15.0) -> None:
        if mode not in ("union", "smoothed"):
            raise ValueError(f"crop mode must be 'union' or 'smoothed', got {mode!r}")
        self.mode = mode
        self.factor = factor
        self.active: np.ndarray | None = None
        self._filter = OneEuroFilter(freq=fps, mincutoff=1.0, beta=0.05, dcutoff=1.0) if mode == "smoothed" else None
        self._last_window: tuple[int, int, int, int] | None = None

    def update(self, box: np.ndarray | None, image_shape: tuple[int, int]) -> tuple[int, int, int, int]:
        """The window for this frame; `box` None (nobody found) keeps the last window."""
        if box is not None:
            if self.mode == "union":
                self.active = union_boxes(box, self.active)
            else:
                x0, y0, x1, y1 = (float(v) for v in box)
                c = self._filter(np.array([(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0]))
                self.active = np.array([c[0] - c[2] / 2, c[1] - c[3] / 2, c[0] + c[2] / 2, c[1] + c[3] / 2])
            self._last_window = crop_window(self.active, image_shape, self.factor)
        if self._last_window is None:
            return center_square_window(image_shape)
        return self._last_window


__all__ = [
    "CROP_FACTOR",
    "CROP_SIZE",
    "CropTracker",
    "CropTransform",
    "center_square_window",
    "crop_to_square",
    "crop_transform",
    "crop_window",
    "enlarge_box",
    "map_keypoints",
    "pad_box",
    "square_box",
    "union_boxes",
]
