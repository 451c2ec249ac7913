"""The window core shared by ``bdmm animate``, training and the test split.

- :mod:`~bdmm_cli.window.schedule`: :class:`WindowSchedule` (the authors' pre/post rule,
  test mode and overlap mode) and the :class:`Window` records it produces;
- :mod:`~bdmm_cli.window.inputs`: posed frames + body model -> ``model.WindowInputs``
  (:func:`window_inputs`), with the typed records :class:`WindowFrames` (one window of a
  frame stream) and :class:`WindowPoses` (n windows' poses as tensors);
- :mod:`~bdmm_cli.window.retarget`: driving poses -> poses on the source's body and framing
  (plugs in between the poses and :func:`window_inputs`).

- :mod:`~bdmm_cli.window.stream`: a frame stream cut into windows (:func:`windowed`) and
  batches (:func:`batched`).

This package depends on ``body``, ``dataset.kptsmpl``, ``model`` and ``errors`` only, so
``train`` and ``metrics`` import it without pulling in the animate pipeline.
"""

from bdmm_cli.window.inputs import (
    CROP_SIZE,
    HEATMAP_SIGMA,
    WindowFrames,
    WindowPoses,
    gather_window,
    heatmap_sigma,
    scale_keypoints,
    window_inputs,
)
from bdmm_cli.window.retarget import RETARGET_MODES, Retargeter, retarget_poses
from bdmm_cli.window.schedule import DEFAULT_WINDOW, Window, WindowSchedule, blend_overlap, blend_weights

__all__ = [
    "CROP_SIZE",
    "DEFAULT_WINDOW",
    "HEATMAP_SIGMA",
    "RETARGET_MODES",
    "Retargeter",
    "Window",
    "WindowFrames",
    "WindowPoses",
    "WindowSchedule",
    "blend_overlap",
    "blend_weights",
    "gather_window",
    "heatmap_sigma",
    "retarget_poses",
    "scale_keypoints",
    "window_inputs",
]
