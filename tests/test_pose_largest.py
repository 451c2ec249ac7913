"""Largest person kept: the selection rule, and two real people of different sizes.

The two people are two copies of the real test photo (tests/data/astronaut_256.jpg,
public domain) pasted at two scales on one canvas, in both orders: MediaPipe's legacy
single-person pipeline takes the left one whatever its size, the default detector must
take the larger one.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from pose_helpers import astronaut

from bdmm_cli.pose import HMR, PoseConfig, PoseEstimator
from bdmm_cli.pose.body25 import BODY25, Body25
from bdmm_cli.pose.largest import LargestPersonDetector, MultiPoseDetector, box_iou, select_person

pytest.importorskip("mediapipe")


# -- the selection rule ------------------------------------------------------------------------

def test_largest_box_wins():
    boxes = np.array([[0, 0, 10, 10], [20, 0, 50, 40], [60, 0, 70, 30]], float)  # areas 100, 1200, 300
    assert select_person(boxes) == 1
    assert select_person(boxes[[2, 0, 1]]) == 2  # order does not matter


def test_ties_take_the_first_and_nobody_is_none():
    boxes = np.array([[0, 0, 10, 20], [30, 0, 50, 10], [60, 0, 65, 5]], float)  # 200, 200, 25
    assert select_person(boxes) == 0
    assert select_person(np.zeros((0, 4))) is None
    assert select_person(np.zeros((0, 4)), previous=np.array([0, 0, 5, 5])) is None


def test_previous_person_is_kept_until_someone_is_much_larger():
    prev = np.array([0, 0, 10, 10], float)
    followed = [1, 1, 11, 11]  # IoU with prev = 81/119 = 0.68
    assert box_iou(np.array([followed], float), prev)[0] == pytest.approx(81 / 119)
    # another person 1.44x larger: not enough (switch ratio 1.5), the followed one stays
    assert select_person(np.array([[30, 0, 42, 12], followed], float), prev) == 1
    # 1.96x larger: switch to the larger one
    assert select_person(np.array([[30, 0, 44, 14], followed], float), prev) == 0
    # the followed person is gone (no overlap): the largest
    assert select_person(np.array([[30, 0, 35, 5], [50, 0, 58, 8]], float), prev) == 1


# -- two real people ---------------------------------------------------------------------------

def two_people(big_left: bool, small: int = 192) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """640x480 canvas with the photo at 256 px and at `small` px, standing on the bottom edge.
    Returns (canvas, big box, small box) XYXY."""
    person = astronaut()
    little = cv2.resize(person, (small, small), interpolation=cv2.INTER_AREA)
    canvas = np.full((480, 640, 3), 180, np.uint8)
    xb, xs = (20, 360) if big_left else (360, 20)
    canvas[480 - 256:, xb:xb + 256] = person
    canvas[480 - small:, xs:xs + small] = little
    return canvas, np.array([xb, 224, xb + 256, 480]), np.array([xs, 480 - small, xs + small, 480])


def inside(point, box) -> bool:
    return box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3]


@pytest.mark.parametrize("big_left", [True, False])
def test_both_people_are_found(big_left):
    canvas, big, small = two_people(big_left)
    multi = MultiPoseDetector(video=False)
    try:
        people = multi.detect_all(canvas)
    finally:
        multi.close()
    noses = [b.keypoints[BODY25["Nose"], :2] for b, _ in people]
    assert len(people) == 2
    assert sum(inside(n, big) for n in noses) == 1 and sum(inside(n, small) for n in noses) == 1


@pytest.mark.parametrize("video", [False, True])
@pytest.mark.parametrize("big_left", [True, False])
def test_keypoints_belong_to_the_larger_person(big_left, video):
    canvas, big, small = two_people(big_left)
    with LargestPersonDetector(video=video) as det:
        for _ in range(2 if video else 1):  # video: the second frame goes through tracking
            body = det(canvas)
            assert body is not None
            for name in ("Nose", "Neck", "LShoulder", "RShoulder"):
                point = body.keypoints[BODY25[name]]
                assert point[2] > 0 and inside(point[:2], big), (name, point)
            assert inside(det.last_box[:2], big + [-30, -30, 30, 30]) and inside(det.last_box[2:], big + [-30, -30, 30, 30])


def test_legacy_pipeline_takes_the_left_one():
    """Why this module exists: the old default follows the first (left) person, here the smaller."""
    from bdmm_cli.pose.detector import MediaPipePoseDetector

    canvas, big, small = two_people(big_left=False)
    with MediaPipePoseDetector(video=False) as det:
        body = det(canvas)
    assert inside(body.keypoints[BODY25["Nose"], :2], small)


def test_fallback_when_the_multi_person_landmarker_finds_nobody():
    class Nobody:
        def detect_all(self, image):
            return []

    class Fixed:
        name = "fixed"

        def __call__(self, image):
            kp = np.zeros((25, 3), np.float32)
            kp[[0, 1]] = [(5, 5, 1), (5, 15, 1)]
            return Body25(kp)

    image = np.zeros((20, 20, 3), np.uint8)
    det = LargestPersonDetector(people=Nobody(), fallback=Fixed())
    assert det(image).keypoints[1, 1] == 15 and det.last_box is None
    assert LargestPersonDetector(people=Nobody(), fallback=False)(image) is None
    # the default fallback: MediaPipe's legacy tracker on the full frame, as before
    from bdmm_cli.pose.detector import MediaPipePoseDetector

    with LargestPersonDetector(video=False, people=Nobody()) as det, MediaPipePoseDetector(video=False) as legacy:
        got, want = det(astronaut()), legacy(astronaut())
    assert want is not None
    np.testing.assert_array_equal(got.keypoints, want.keypoints)


class Given:
    """A KeypointDetector returning a fixed Body25."""

    name = "given"

    def __init__(self, body):
        self.body = body

    def __call__(self, image):
        return self.body


def test_stage_default_keeps_the_larger_person():
    """By default the stage's record is the one made from the larger copy's keypoints (picked
    here by where its nose is, not by the selection rule)."""
    from bdmm_cli.pose import estimate_image
    from bdmm_cli.pose.detector import MediaPipePoseDetector

    torch.manual_seed(0)
    hmr = HMR().eval()
    canvas, big, small = two_people(big_left=False)
    assert PoseConfig().largest_person
    default = PoseEstimator(hmr)
    assert "follow" in default.detector_name()
    for video in (False, True):
        det = default.make_detector(video)
        assert isinstance(det, LargestPersonDetector) and det.video == video
        det.close()
    off = PoseEstimator(hmr, config=PoseConfig(largest_person=False))
    assert "follow" not in off.detector_name() and off.fingerprint() != default.fingerprint()
    legacy = off.make_detector(False)
    assert isinstance(legacy, MediaPipePoseDetector)
    legacy.close()

    multi = MultiPoseDetector(video=False)
    try:
        people = multi.detect_all(canvas)
    finally:
        multi.close()
    larger = [b for b, _ in people if inside(b.keypoints[BODY25["Nose"], :2], big)]
    assert len(larger) == 1
    got = estimate_image(canvas, default).pose
    want = estimate_image(canvas, PoseEstimator(hmr, detector=Given(larger[0]))).pose
    np.testing.assert_allclose(got.keypoints, want.keypoints, atol=1e-4)
    np.testing.assert_allclose(got.bbox_xyxy, want.bbox_xyxy, atol=1e-4)
    np.testing.assert_allclose(got.pose_theta, want.pose_theta, atol=1e-5)


def test_video_switches_to_a_larger_person_who_walks_in():
    """Frames 0-2: only the small copy; from frame 3 the larger one (1.78x the area, more
    than the 1.5x switch ratio) stands beside it: the detector moves to it."""
    canvas, big, small = two_people(big_left=False)
    alone = canvas.copy()
    alone[:, big[0]:big[2]] = 180
    picks = []
    with LargestPersonDetector(video=True) as det:
        for frame in [alone] * 3 + [canvas] * 3:
            nose = det(frame).keypoints[BODY25["Nose"], :2]
            picks.append("big" if inside(nose, big) else "small" if inside(nose, small) else "?")
    assert picks == ["small"] * 3 + ["big"] * 3


def test_cli_flag(tmp_path):
    import json

    from PIL import Image
    from typer.testing import CliRunner

    from bdmm_cli.cli import app
    from bdmm_cli.pose import estimate_image

    torch.manual_seed(0)
    hmr = HMR().eval()
    spin = tmp_path / "spin_ckpt.pth"
    torch.save(hmr.state_dict(), spin)
    canvas, big, small = two_people(big_left=False)
    photo = tmp_path / "two.png"
    Image.fromarray(canvas).save(photo)
    keypoints = {}
    for flag, largest in (("--largest-person", True), ("--first-person", False)):
        out = tmp_path / flag
        result = CliRunner().invoke(app, ["pose", str(photo), "-o", str(out), "--spin", str(spin), flag])
        assert result.exit_code == 0, result.output
        data = json.loads((out / "kptsmpls" / "frame_00000.json").read_text())
        kp = np.array(data["pose_keypoints_2d"], np.float32).reshape(25, 3)
        api = estimate_image(canvas, PoseEstimator(hmr, config=PoseConfig(largest_person=largest)))
        np.testing.assert_allclose(kp, api.pose.keypoints, atol=1e-3)
        keypoints[largest] = kp
    assert not np.allclose(keypoints[True], keypoints[False], atol=1.0)
