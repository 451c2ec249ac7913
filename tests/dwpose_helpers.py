"""Tiny stand-ins for DWPose's two ONNX files, exported by the tests with torch.onnx.

Same input and output signatures as the published files (``yolox_l.onnx``: (N, 3, 640, 640)
-> (N, 8400, 85); ``dw-ll_ucoco_384.onnx``: (N, 3, 384, 288) -> (N, 133, 576), (N, 133, 768)),
with outputs a test can predict:

- :class:`StandInDetector` answers, for every image, a fixed table of YOLOX head rows that
  encode the person boxes it was built with (canvas pixels of the 640 x 640 letterbox).
- :class:`StandInPose` answers, for every crop, SimCC vectors peaked at fixed crop positions
  (bins = 2 x crop pixels) with a chosen peak height (the score); the positions move by
  ``gain`` bins per unit of the crop's mean normalised value, so brighter frames move the
  person (for the tracking tests).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch import nn

DET_SIZE = 640
STRIDES = (8, 16, 32)
POSE_H, POSE_W = 384, 288
K = 133


def yolox_rows(boxes: list[tuple[float, float, float, float, float]]) -> np.ndarray:
    """(8400, 85) YOLOX head rows whose decoding gives `boxes` (canvas ``cx, cy, w, h, score``),
    each on the stride-32 cell holding its centre; every other row has objectness 0."""
    rows = np.zeros((sum((DET_SIZE // s) ** 2 for s in STRIDES), 85), dtype=np.float32)
    start = sum((DET_SIZE // s) ** 2 for s in STRIDES[:-1])
    n = DET_SIZE // 32
    for cx, cy, w, h, score in boxes:
        gx, gy = int(cx // 32), int(cy // 32)
        r = rows[start + gy * n + gx]
        r[:4] = (cx / 32 - gx, cy / 32 - gy, math.log(w / 32), math.log(h / 32))
        r[4], r[5] = score, 1.0  # objectness, person
    return rows


class StandInDetector(nn.Module):
    def __init__(self, boxes):
        super().__init__()
        self.register_buffer("rows", torch.from_numpy(yolox_rows(boxes)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rows.unsqueeze(0) + 0.0 * x.mean(dim=(1, 2, 3)).view(-1, 1, 1)


class StandInPose(nn.Module):
    """Peaks at crop pixel `xy` (K, 2) with heights `scores` (K,)."""

    def __init__(self, xy: np.ndarray, scores: np.ndarray, gain: float = 0.0, width: float = 1.5):
        super().__init__()
        self.register_buffer("mx", torch.tensor(np.asarray(xy)[:, 0] * 2, dtype=torch.float32))
        self.register_buffer("my", torch.tensor(np.asarray(xy)[:, 1] * 2, dtype=torch.float32))
        self.register_buffer("amp", torch.tensor(np.asarray(scores), dtype=torch.float32))
        self.register_buffer("bx", torch.arange(POSE_W * 2, dtype=torch.float32))
        self.register_buffer("by", torch.arange(POSE_H * 2, dtype=torch.float32))
        self.gain, self.width = gain, width

    def forward(self, x: torch.Tensor):
        shift = self.gain * x.mean(dim=(1, 2, 3)).view(-1, 1, 1)
        sx = self.amp.view(1, -1, 1) * torch.exp(-((self.bx.view(1, 1, -1) - self.mx.view(1, -1, 1) - shift) ** 2)
                                                 / (2 * self.width ** 2))
        sy = self.amp.view(1, -1, 1) * torch.exp(-((self.by.view(1, 1, -1) - self.my.view(1, -1, 1) - shift) ** 2)
                                                 / (2 * self.width ** 2))
        return sx, sy


def export(module: nn.Module, path: Path, kind: str, batched: bool = True) -> Path:
    """torch.onnx export with the published files' input/output names and shapes."""
    import warnings

    if kind == "det":
        dummy, ins, outs = torch.zeros(1, 3, DET_SIZE, DET_SIZE), ["images"], ["output"]
    else:
        dummy, ins, outs = torch.zeros(1, 3, POSE_H, POSE_W), ["input"], ["simcc_x", "simcc_y"]
    axes = {n: {0: "batch"} for n in ins + outs} if batched else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), (dummy,), str(path), dynamo=False, input_names=ins, output_names=outs,
                          dynamic_axes=axes, opset_version=17)
    return path


def skeleton_xy(seed: int = 0) -> np.ndarray:
    """(133, 2) crop pixels (integers or halves: exact SimCC bins) for a standing person in the
    288 x 384 crop: the 23 body and foot points at plausible places, face and hands scattered."""
    rng = np.random.default_rng(seed)
    xy = np.stack([rng.integers(40, 248, K), rng.integers(40, 344, K)], axis=1).astype(np.float64)
    body = {0: (144, 60), 1: (152, 52), 2: (136, 52), 3: (162, 58), 4: (126, 58), 5: (176, 100),
            6: (112, 100), 7: (190, 150), 8: (98, 150), 9: (196, 196), 10: (92, 196), 11: (164, 200),
            12: (124, 200), 13: (166, 270), 14: (122, 270), 15: (168, 330), 16: (120, 330),
            17: (182, 352), 18: (190, 350), 19: (164, 340), 20: (106, 352), 21: (98, 350), 22: (124, 340)}
    for k, v in body.items():
        xy[k] = v
    return xy + 0.5 * (np.arange(K)[:, None] % 2)  # half pixels too


def write_standins(folder: Path, boxes=((280.0, 240.0, 160.0, 320.0, 0.9),), xy=None, scores=None,
                   gain: float = 0.0, batched: bool = True) -> tuple[Path, Path]:
    """yolox_l.onnx and dw-ll_ucoco_384.onnx stand-ins in `folder` (created)."""
    folder.mkdir(parents=True, exist_ok=True)
    xy = skeleton_xy() if xy is None else xy
    scores = np.full(K, 0.9) if scores is None else scores
    det = export(StandInDetector(list(boxes)), folder / "yolox_l.onnx", "det", batched)
    pose = export(StandInPose(xy, scores, gain), folder / "dw-ll_ucoco_384.onnx", "pose", batched)
    return det, pose
