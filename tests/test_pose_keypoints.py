"""MediaPipe Pose -> BODY_25: the mapping table, and keypoints on a real photo (offline)."""

from __future__ import annotations

import numpy as np
import pytest

from bdmm_cli.pose.body25 import BODY25, Body25, body25_from_mediapipe
from bdmm_cli.pose.detector import KeypointDetector, MediaPipePoseDetector
from pose_helpers import astronaut

# MediaPipe landmark indices (BlazePose topology), written out independently of the module.
MP = {"nose": 0, "left_eye": 2, "right_eye": 5, "left_ear": 7, "right_ear": 8, "left_shoulder": 11,
      "right_shoulder": 12, "left_elbow": 13, "right_elbow": 14, "left_wrist": 15, "right_wrist": 16,
      "left_hip": 23, "right_hip": 24, "left_knee": 25, "right_knee": 26, "left_ankle": 27, "right_ankle": 28,
      "left_heel": 29, "right_heel": 30, "left_foot_index": 31, "right_foot_index": 32}


def test_mapping_joint_by_joint():
    rng = np.random.default_rng(0)
    lm = np.concatenate([rng.uniform(0.1, 0.9, (33, 2)), np.ones((33, 1))], axis=1)
    w, h = 200, 100
    body = body25_from_mediapipe(lm, (w, h), min_visibility=0.5)
    px = lm[:, :2] * [w, h]
    pairs = {"Nose": "nose", "RShoulder": "right_shoulder", "RElbow": "right_elbow", "RWrist": "right_wrist",
             "LShoulder": "left_shoulder", "LElbow": "left_elbow", "LWrist": "left_wrist", "RHip": "right_hip",
             "RKnee": "right_knee", "RAnkle": "right_ankle", "LHip": "left_hip", "LKnee": "left_knee",
             "LAnkle": "left_ankle", "REye": "right_eye", "LEye": "left_eye", "REar": "right_ear",
             "LEar": "left_ear", "LBigToe": "left_foot_index", "LSmallToe": "left_foot_index",
             "LHeel": "left_heel", "RBigToe": "right_foot_index", "RSmallToe": "right_foot_index",
             "RHeel": "right_heel"}
    for op, mp in pairs.items():
        np.testing.assert_allclose(body.keypoints[BODY25[op], :2], px[MP[mp]], rtol=1e-5, err_msg=op)
    np.testing.assert_allclose(body.keypoints[BODY25["Neck"], :2],
                               (px[MP["left_shoulder"]] + px[MP["right_shoulder"]]) / 2, rtol=1e-5)
    np.testing.assert_allclose(body.keypoints[BODY25["MidHip"], :2],
                               (px[MP["left_hip"]] + px[MP["right_hip"]]) / 2, rtol=1e-5)
    assert body.valid.all()


def test_low_visibility_and_out_of_image_joints_are_missing():
    lm = np.full((33, 3), 0.5)
    lm[MP["left_shoulder"], 2] = 0.2  # hidden -> LShoulder and Neck missing
    lm[MP["right_knee"], 1] = 1.3  # below the image -> RKnee missing
    body = body25_from_mediapipe(lm, (100, 100), min_visibility=0.5)
    for name in ("LShoulder", "Neck", "RKnee"):
        np.testing.assert_array_equal(body.keypoints[BODY25[name]], [0, 0, 0])
    assert body.keypoints[BODY25["RShoulder"], 2] == pytest.approx(0.5)
    assert body.num_valid == 25 - 3
    box = body.box_xyxy()
    np.testing.assert_allclose(box, [50, 50, 50, 50])


@pytest.fixture(scope="module")
def astronaut_body() -> Body25:
    with MediaPipePoseDetector(video=False) as detector:
        assert isinstance(detector, KeypointDetector)
        body = detector(astronaut())
    assert body is not None, "MediaPipe found nobody in the astronaut photo"
    return body


@pytest.mark.mediapipe
def test_keypoints_on_a_real_photo_are_plausible(astronaut_body):
    """Waist-up photo facing the camera (checked by eye): head around x 90-135, y 10-90;
    the person within x 0-200 of the 256x256 image; arms' lower parts and legs hidden."""
    kp = astronaut_body.keypoints
    j = {name: kp[i] for name, i in BODY25.items()}
    for name in ("Nose", "Neck", "RShoulder", "LShoulder", "REye", "LEye"):
        assert j[name][2] > 0, f"{name} not detected"
    assert 90 < j["Nose"][0] < 135 and 40 < j["Nose"][1] < 90  # on the face
    assert j["REye"][1] < j["Nose"][1] < j["Neck"][1]  # eyes above the nose above the neck
    assert j["REye"][0] < j["Nose"][0] < j["LEye"][0]  # the person's right is the image's left
    assert j["RShoulder"][0] < j["Neck"][0] < j["LShoulder"][0]
    assert j["RShoulder"][1] > j["Nose"][1] + 30 and j["LShoulder"][1] > j["Nose"][1] + 30
    np.testing.assert_allclose(j["Neck"][:2], (j["RShoulder"][:2] + j["LShoulder"][:2]) / 2, atol=1e-3)
    valid = kp[kp[:, 2] > 0]
    assert (valid[:, 0] >= 0).all() and (valid[:, 0] <= 200).all() and (valid[:, 1] >= 0).all()
    for name in ("RAnkle", "LAnkle", "RKnee", "LKnee", "RHeel", "LBigToe"):  # out of the picture
        np.testing.assert_array_equal(j[name], [0, 0, 0])


@pytest.mark.mediapipe
def test_no_person_in_a_blank_image():
    with MediaPipePoseDetector(video=False) as detector:
        assert detector(np.full((200, 200, 3), 127, np.uint8)) is None
        with pytest.raises(ValueError):
            detector(np.zeros((10, 10), np.uint8))


def test_heavy_model_is_refused_offline():
    with pytest.raises(ValueError, match="bundled|ship"):
        MediaPipePoseDetector(model_complexity=2)
