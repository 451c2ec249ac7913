"""One `kptsmpls/frame_XXXXX.json`: BODY_25 keypoints and SMPL of one 256x256 frame.

The authors' preprocessing (``SMPLDataset/preprocess.py``) writes, per frame, a JSON
object with these keys (``docs/data_path.md`` section 1), all in pixels of the
256x256 crop::

    {
        "bbox_xyxy": [x0, y0, x1, y1],               # person box (unused by the loader)
        "cam": [s, tx, ty],                          # weak-perspective camera, section 3
        "pose_keypoints_2d": [[x, y, conf], ...],    # 25 rows, OpenPose BODY_25 order
        "pose_theta": [72 floats],                   # SMPL axis-angle, global orient first
        "shape_beta": [10 floats]
    }

written with ``json.dump(..., sort_keys=True, indent=4, separators=(",", ":"))``. The
loader reads ``pose_keypoints_2d`` as a list of ``[x, y, conf]`` rows; a flat list of
75 numbers (the raw OpenPose layout) is accepted on reading as well. A joint is
"missing" for the heatmaps when ``x == 0`` or ``y == 0`` exactly (section 4).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bdmm_cli.errors import InputError

NUM_KEYPOINTS = 25
POSE_DIM = 72
SHAPE_DIM = 10


@dataclass(frozen=True)
class FramePose:
    """Keypoints and SMPL of one frame, in pixels of the 256x256 crop.

    Attributes:
        keypoints: (25, 3) float32, BODY_25 rows ``x, y, conf``.
        bbox_xyxy: (4,) float32, person box ``x0, y0, x1, y1``.
        cam: (3,) float32, ``s, tx, ty``: pixel = (s * (X + t) + 1) * 256 / 2.
        pose_theta: (72,) float32, SMPL axis-angle (24 joints x 3), global orient first.
        shape_beta: (10,) float32, SMPL shape coefficients.
    """

    keypoints: np.ndarray
    bbox_xyxy: np.ndarray
    cam: np.ndarray
    pose_theta: np.ndarray
    shape_beta: np.ndarray

    def __post_init__(self) -> None:
        shapes = {
            "keypoints": (NUM_KEYPOINTS, 3),
            "bbox_xyxy": (4,),
            "cam": (3,),
            "pose_theta": (POSE_DIM,),
            "shape_beta": (SHAPE_DIM,),
        }
        for name, shape in shapes.items():
            value = np.asarray(getattr(self, name), dtype=np.float32)
            if value.shape != shape:
                raise ValueError(f"FramePose.{name} must have shape {shape}, got {value.shape}")
            value = value.copy()
            value.setflags(write=False)
            object.__setattr__(self, name, value)

    @property
    def smpl(self) -> np.ndarray:
        """(85,) ``[cam | pose_theta | shape_beta]``, the vector the authors' loader builds."""
        return np.concatenate([self.cam, self.pose_theta, self.shape_beta])

    def to_json_dict(self) -> dict[str, Any]:
        """The authors' JSON object (plain Python floats)."""
        return {
            "bbox_xyxy": [float(v) for v in self.bbox_xyxy],
            "cam": [float(v) for v in self.cam],
            "pose_keypoints_2d": [[float(v) for v in row] for row in self.keypoints],
            "pose_theta": [float(v) for v in self.pose_theta],
            "shape_beta": [float(v) for v in self.shape_beta],
        }

    @classmethod
    def from_json_dict(cls, data: dict[str, Any], source: str = "pose record") -> "FramePose":
        """Parse the authors' JSON object; InputError naming the bad field otherwise."""
        if not isinstance(data, dict):
            raise InputError(f"{source}: expected a JSON object")
        missing = [k for k in ("pose_keypoints_2d", "cam", "pose_theta", "shape_beta") if k not in data]
        if missing:
            raise InputError(f"{source}: missing field(s) {', '.join(missing)}")
        def numbers(key: str, default=None) -> np.ndarray:
            value = data.get(key, default)
            try:
                return np.asarray(value, dtype=np.float32)
            except (TypeError, ValueError) as exc:
                raise InputError(f"{source}: field {key} is not a list of numbers") from exc

        kp = numbers("pose_keypoints_2d")
        if kp.ndim == 1 and kp.size == NUM_KEYPOINTS * 3:
            kp = kp.reshape(NUM_KEYPOINTS, 3)
        bbox = numbers("bbox_xyxy", [0.0, 0.0, 0.0, 0.0]).reshape(-1)
        fields = {
            "keypoints": kp,
            "bbox_xyxy": bbox,
            "cam": numbers("cam").reshape(-1),
            "pose_theta": numbers("pose_theta").reshape(-1),
            "shape_beta": numbers("shape_beta").reshape(-1),
        }
        try:
            return cls(**fields)
        except ValueError as exc:
            raise InputError(f"{source}: {exc}") from exc


def read_kptsmpl(path: str | Path) -> FramePose:
    """Read one ``kptsmpls/*.json``; InputError when missing or malformed."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"pose file not found: {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read pose file {path}: not valid JSON") from exc
    return FramePose.from_json_dict(data, source=f"pose file {path}")


def dumps_kptsmpl(pose: FramePose) -> str:
    """The JSON text the authors' `jsonify` writes (sorted keys, indent 4, no spaces)."""
    data = pose.to_json_dict()
    for name, values in data.items():
        flat = np.asarray(values, dtype=np.float64).reshape(-1)
        if not all(math.isfinite(v) for v in flat):
            raise ValueError(f"FramePose.{name} has a non-finite value")
    return json.dumps(data, sort_keys=True, indent=4, separators=(",", ":"))


def write_kptsmpl(path: str | Path, pose: FramePose, force: bool = True) -> Path:
    """Write one record atomically (temp file + rename). Returns the path.

    `force` defaults to True because a pose folder is written as a whole by one run;
    pass False to refuse overwriting an existing file.
    """
    from bdmm_cli.fileio import atomic_output

    path = Path(path)
    text = dumps_kptsmpl(pose)
    with atomic_output(path, force=force) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


__all__ = ["FramePose", "NUM_KEYPOINTS", "dumps_kptsmpl", "read_kptsmpl", "write_kptsmpl"]
