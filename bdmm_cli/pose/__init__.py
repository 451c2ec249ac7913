"""Pose front-end: person keypoints (BODY_25), crop, SPIN/HMR regressor, smoothing, cache.

    from bdmm_cli.pose import PoseEstimator, PoseConfig, PosedFrame, estimate_video, estimate_image, read_pose_dir
    from bdmm_cli.pose import HMR, load_spin_state_dict, KeypointDetector, MediaPipePoseDetector, Body25
    from bdmm_cli.pose import OpenPoseBody25, load_openpose, OpenPoseDetector, load_keypoint_model

See README.md in this folder for the MediaPipe -> BODY_25 table and the version choice.
"""

from __future__ import annotations

from bdmm_cli.dataset.pose_dir import PosedFrame, read_pose_dir, write_pose_dir
from bdmm_cli.pose.body25 import BODY25_NAMES, Body25, body25_from_mediapipe
from bdmm_cli.pose.crop import CropTracker, CropTransform, crop_to_square, crop_window, map_keypoints
from bdmm_cli.pose.detector import KeypointDetector, MediaPipePoseDetector, load_keypoint_model, resolve_keypoints
from bdmm_cli.pose.estimate import PoseConfig, PoseEstimator, PoseStream, estimate_image, estimate_video, pose_cache_root
from bdmm_cli.pose.filters import KeypointSmoother, OneEuroFilter, SmplSmoother
from bdmm_cli.pose.gmm import MaxMixturePrior, find_gmm_prior, install_gmm_prior, load_gmm_prior
from bdmm_cli.pose.hmr import HMR, HMROutput, check_spin_state_dict, extract_spin_state_dict, load_hmr, load_pose_regressor, load_spin_state_dict, spin_expected_shapes, spin_state_dict_keys
from bdmm_cli.pose.largest import LargestPersonDetector, MultiPoseDetector, select_person
from bdmm_cli.pose.openpose import OpenPoseBody25, OpenPoseDetector, decode_body25, load_openpose, preprocess_openpose
from bdmm_cli.pose.smplify import SmplifyConfig, SmplifyResult, refine_smpl
from bdmm_cli.pose.spin_crop import SpinCrop, project_pixels, spin_cam_to_frame, spin_crop
from bdmm_cli.pose.validity import valid_head_frames

__all__ = [
    "BODY25_NAMES", "Body25", "CropTracker", "CropTransform", "HMR", "HMROutput",
    "KeypointDetector", "KeypointSmoother", "LargestPersonDetector", "MaxMixturePrior",
    "MediaPipePoseDetector", "MultiPoseDetector", "OneEuroFilter", "OpenPoseBody25",
    "OpenPoseDetector", "PoseConfig", "PoseEstimator", "PoseStream", "PosedFrame", "SmplSmoother",
    "SmplifyConfig", "SmplifyResult", "SpinCrop", "body25_from_mediapipe", "check_spin_state_dict",
    "crop_to_square", "crop_window", "decode_body25", "estimate_image", "estimate_video",
    "extract_spin_state_dict", "find_gmm_prior", "install_gmm_prior", "load_gmm_prior", "load_hmr",
    "load_keypoint_model", "load_openpose", "load_pose_regressor", "load_spin_state_dict",
    "map_keypoints", "pose_cache_root", "preprocess_openpose", "project_pixels", "read_pose_dir",
    "refine_smpl", "resolve_keypoints", "select_person", "spin_cam_to_frame", "spin_crop",
    "spin_expected_shapes", "spin_state_dict_keys", "valid_head_frames", "write_pose_dir",
]
