"""Pose front-end: person keypoints (BODY_25), crop, SPIN/HMR regressor, smoothing, cache.

    from bdmm_cli.pose import PoseEstimator, PoseConfig, PosedFrame, estimate_video, estimate_image, read_pose_dir
    from bdmm_cli.pose import HMR, load_spin_state_dict, KeypointDetector, MediaPipePoseDetector, Body25
    from bdmm_cli.pose import OpenPoseBody25, load_openpose, OpenPoseDetector, load_keypoint_model

Names are imported lazily: `import bdmm_cli.pose` imports neither torch nor mediapipe.
See README.md in this folder for the MediaPipe -> BODY_25 table and the version choice.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    # the stage
    "PoseConfig": "bdmm_cli.pose.estimate",
    "PoseEstimator": "bdmm_cli.pose.estimate",
    "PosedFrame": "bdmm_cli.dataset.pose_dir",
    "PoseStream": "bdmm_cli.pose.estimate",
    "estimate_image": "bdmm_cli.pose.estimate",
    "estimate_video": "bdmm_cli.pose.estimate",
    "read_pose_dir": "bdmm_cli.dataset.pose_dir",
    "write_pose_dir": "bdmm_cli.dataset.pose_dir",
    "pose_cache_root": "bdmm_cli.pose.estimate",
    # keypoints
    "Body25": "bdmm_cli.pose.body25",
    "BODY25_NAMES": "bdmm_cli.pose.body25",
    "body25_from_mediapipe": "bdmm_cli.pose.body25",
    "KeypointDetector": "bdmm_cli.pose.detector",
    "MediaPipePoseDetector": "bdmm_cli.pose.detector",
    "LargestPersonDetector": "bdmm_cli.pose.largest",
    "MultiPoseDetector": "bdmm_cli.pose.largest",
    "select_person": "bdmm_cli.pose.largest",
    "load_keypoint_model": "bdmm_cli.pose.detector",
    "resolve_keypoints": "bdmm_cli.pose.detector",
    # OpenPose BODY_25 (the authors' detector)
    "OpenPoseBody25": "bdmm_cli.pose.openpose",
    "OpenPoseDetector": "bdmm_cli.pose.openpose",
    "load_openpose": "bdmm_cli.pose.openpose",
    "preprocess_openpose": "bdmm_cli.pose.openpose",
    "decode_body25": "bdmm_cli.pose.openpose",
    # crop
    "CropTracker": "bdmm_cli.pose.crop",
    "CropTransform": "bdmm_cli.pose.crop",
    "crop_to_square": "bdmm_cli.pose.crop",
    "crop_window": "bdmm_cli.pose.crop",
    "map_keypoints": "bdmm_cli.pose.crop",
    # SPIN / HMR
    "HMR": "bdmm_cli.pose.hmr",
    "HMROutput": "bdmm_cli.pose.hmr",
    "load_spin_state_dict": "bdmm_cli.pose.hmr",
    "extract_spin_state_dict": "bdmm_cli.pose.hmr",
    "spin_state_dict_keys": "bdmm_cli.pose.hmr",
    "load_hmr": "bdmm_cli.pose.hmr",
    "load_pose_regressor": "bdmm_cli.pose.hmr",
    "check_spin_state_dict": "bdmm_cli.pose.hmr",
    "spin_expected_shapes": "bdmm_cli.pose.hmr",
    "SpinCrop": "bdmm_cli.pose.spin_crop",
    "spin_crop": "bdmm_cli.pose.spin_crop",
    "spin_cam_to_frame": "bdmm_cli.pose.spin_crop",
    "project_pixels": "bdmm_cli.pose.spin_crop",
    # smoothing and refinement
    "OneEuroFilter": "bdmm_cli.pose.filters",
    "KeypointSmoother": "bdmm_cli.pose.filters",
    "SmplSmoother": "bdmm_cli.pose.filters",
    "refine_smpl": "bdmm_cli.pose.smplify",
    "SmplifyConfig": "bdmm_cli.pose.smplify",
    "SmplifyResult": "bdmm_cli.pose.smplify",
    "MaxMixturePrior": "bdmm_cli.pose.gmm",
    "find_gmm_prior": "bdmm_cli.pose.gmm",
    "install_gmm_prior": "bdmm_cli.pose.gmm",
    "load_gmm_prior": "bdmm_cli.pose.gmm",
    # the authors' frame-validity rule
    "valid_head_frames": "bdmm_cli.pose.validity",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'bdmm_cli.pose' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_EXPORTS))
