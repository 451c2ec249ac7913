"""One person followed through a clip (``pose.follow``): the rule on boxes where the right
answer is known, synthetic two-person clips through the real MediaPipe detector, and real
footage with several people (OpenCV's ``vtest.avi`` from Debian's ``opencv-doc``)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from pose_helpers import astronaut

from bdmm_cli.pose.follow import FollowReport, PersonFollower, keypoint_similarity, left_to_right, pick_person

VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")


def person(x: float, y: float, h: float) -> tuple[np.ndarray, np.ndarray]:
    """A standing person of height h, feet centre (x, y): box XYXY and 25 keypoints."""
    box = np.array([x - h / 4, y - h, x + h / 4, y])
    ys = np.linspace(y - h, y, 25)
    xs = x + (h / 8) * np.sin(np.arange(25))
    kp = np.stack([xs, ys, np.ones(25)], 1)
    return box, kp


def frame(*people) -> tuple[np.ndarray, np.ndarray]:
    if not people:
        return np.zeros((0, 4)), np.zeros((0, 25, 3))
    return np.stack([p[0] for p in people]), np.stack([p[1] for p in people])


# -- the rule -----------------------------------------------------------------------------

def test_pick_largest_or_nth_from_the_left():
    boxes, _ = frame(person(300, 200, 80), person(100, 200, 120), person(200, 200, 100))
    assert list(left_to_right(boxes)) == [1, 2, 0]
    assert pick_person(boxes) == (1, 1)          # the largest is the leftmost here
    assert pick_person(boxes, 2) == (2, 2)       # the middle one
    assert pick_person(boxes, 3) == (0, 3)
    assert pick_person(boxes, 9) == (0, 3)       # fewer people than asked: the rightmost


def test_a_larger_person_walking_in_is_never_taken():
    f = PersonFollower()
    picks = []
    for t in range(20):
        me = person(100 + 3 * t, 300, 100)
        other = person(400 - 10 * t, 310, 220)  # twice as tall, walks right past
        picks.append(f(*frame(other, me)) if t >= 5 else f(*frame(me)))
    assert picks[:5] == [0] * 5 and picks[5:] == [1] * 15
    r = f.report
    assert (r.people_seen, r.people_at_pick, r.followed, r.picked_at, r.lost_frames) == (2, 1, 1, 0, 0)


def test_lost_person_is_a_gap_not_a_jump_and_is_taken_back():
    f = PersonFollower()
    assert f(*frame(person(100, 300, 100), person(400, 300, 90))) == 0  # the largest
    out = []
    for t in range(4):  # the followed person is hidden; the other one stays
        out.append(f(*frame(person(400, 300, 90))))
    out.append(f(*frame(person(400, 300, 90), person(112, 300, 102))))  # back, a little further on
    assert out == [None] * 4 + [1]
    assert f.report.lost_frames == 4


def test_nth_person_is_followed_and_crossing_people_do_not_swap():
    f = PersonFollower(person=2)
    got = []
    for t in range(30):
        a = person(100 + 10 * t, 300, 100)   # walks right
        b = person(400 - 10 * t, 300, 105)   # walks left; they cross at t = 15
        c = person(600, 300, 160)            # the largest, standing still
        boxes, kps = frame(c, b, a)          # detector order is not left-to-right
        i = f(boxes, kps)
        got.append(float((boxes[i, 0] + boxes[i, 2]) / 2))
    # person 2 from the left at t = 0 is b (x = 400): it must be followed all the way to x = 110
    np.testing.assert_allclose(got, [400 - 10 * t for t in range(30)])
    assert f.report == FollowReport(3, 3, 2, 0, 0, "person 2")


def test_photos_pick_anew_each_time_and_validate():
    f = PersonFollower(video=False)
    assert f(*frame(person(100, 300, 100), person(300, 300, 50))) == 0
    assert f(*frame(person(100, 300, 50), person(300, 300, 100))) == 1
    assert f(*frame()) is None
    with pytest.raises(ValueError):
        PersonFollower(person=0)


def test_keypoint_similarity_is_one_for_the_same_pose_and_ignores_missing_joints():
    _, kp = person(100, 300, 100)
    assert keypoint_similarity(kp, kp, 100) == pytest.approx(1.0)
    far = kp.copy()
    far[:, 0] += 100
    assert keypoint_similarity(far, kp, 100) < 1e-10
    none = kp.copy()
    none[:, 2] = 0
    assert keypoint_similarity(none, kp, 100) == 0.0


# -- the real detector on a synthetic two-person clip -------------------------------------

def _clip(num: int = 8):
    """640x480 frames: the small astronaut (192 px) stands left from frame 0; the larger one
    (256 px, 1.8x the area) stands right from frame 3. Returns (frames, small box)."""
    big_img, small_img = astronaut(), cv2.resize(astronaut(), (192, 192), interpolation=cv2.INTER_AREA)
    frames = []
    for t in range(num):
        canvas = np.full((480, 640, 3), 180, np.uint8)
        canvas[480 - 192:, 20:212] = small_img
        if t >= 3:
            canvas[480 - 256:, 360:616] = big_img
        frames.append(canvas)
    return frames, np.array([20, 480 - 192, 212, 480])


def test_mediapipe_follows_the_first_person_when_a_larger_one_enters():
    pytest.importorskip("mediapipe")
    from bdmm_cli.pose.body25 import BODY25
    from bdmm_cli.pose.largest import LargestPersonDetector

    frames, small = _clip()
    follower = PersonFollower()
    with LargestPersonDetector(video=True, follower=follower) as det:
        noses = [det(f).keypoints[BODY25["Nose"], :2] for f in frames]
    assert all(small[0] <= x <= small[2] and small[1] <= y <= small[3] for x, y in noses), noses
    assert follower.report.people_seen == 2 and follower.report.followed == 1


def test_estimator_reports_and_follows_person_two(tmp_path):
    """Through the pose stage (crop included): --person 2 takes the right-hand (larger) one once it is there."""
    pytest.importorskip("mediapipe")
    import torch

    from bdmm_cli.pose import HMR, PoseConfig, PoseEstimator

    torch.manual_seed(0)
    frames, small = _clip()
    frames = frames[3:]  # both people from the first frame
    est = PoseEstimator(HMR().eval(), config=PoseConfig(person=2))
    posed = list(est.process(iter(frames), video=True))
    assert all(p.pose is not None for p in posed)
    boxes = np.array([p.source_box for p in posed])
    assert (boxes[:, 0] > 300).all(), boxes  # the right-hand person
    assert est.follow_report() == FollowReport(2, 2, 2, 0, 0, "person 2")


# -- real footage --------------------------------------------------------------------------

def _segment(start: int, count: int, crop: tuple[int, int, int, int] | None = None) -> list[np.ndarray]:
    """RGB frames start..start+count-1 of vtest.avi, cropped to (x, y, w, h) when given."""
    cap = cv2.VideoCapture(str(VTEST))
    cap.set(cv2.CAP_PROP_POS_FRAMES, start)
    out = []
    for _ in range(count):
        ok, bgr = cap.read()
        assert ok
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        if crop is not None:
            x, y, w, h = crop
            rgb = np.ascontiguousarray(rgb[y:y + h, x:x + w])
        out.append(rgb)
    cap.release()
    return out


def _jumps(boxes) -> int:
    """Frame-to-frame moves of more than half a body height, or size changes over x1.6."""
    n = 0
    for a, b in zip(boxes, boxes[1:]):
        if a is None or b is None:
            continue
        h = max(a[3] - a[1], 1.0)
        move = np.linalg.norm(((a[:2] + a[2:]) - (b[:2] + b[2:])) / 2) / h
        n += int(move > 0.5 or not 1 / 1.6 <= (b[3] - b[1]) / h <= 1.6)
    return n


@pytest.mark.skipif(not VTEST.is_file(), reason="vtest.avi: apt-get install opencv-doc")
def test_vtest_crowd_is_followed_without_jumps():
    """vtest.avi frames 40-99, the 224 px square at (192, 100) scaled to 256 (as the sample
    clip): one walker, then a second and a third pass. The per-frame largest person jumps
    between them (10 times, measured); the followed person never jumps, is lost in at most a
    couple of frames, and the report counts the people."""
    pytest.importorskip("mediapipe")
    from bdmm_cli.pose.largest import MultiPoseDetector

    frames = [cv2.resize(f, (256, 256), interpolation=cv2.INTER_LANCZOS4)
              for f in _segment(40, 60, (192, 100, 224, 224))]
    follower = PersonFollower()
    followed, largest = [], []
    with MultiPoseDetector(video=True) as det:
        for f in frames:
            people = det.detect_all(f)
            boxes = np.array([b for _, b in people]).reshape(-1, 4)
            kps = np.array([p.keypoints for p, _ in people]).reshape(-1, 25, 3)
            i = follower(boxes, kps)
            followed.append(None if i is None else boxes[i])
            areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
            largest.append(boxes[int(np.argmax(areas))] if len(boxes) else None)
    assert _jumps(largest) >= 3  # the problem: the per-frame largest person changes
    assert _jumps(followed) == 0
    assert sum(b is not None for b in followed) >= 56
    assert follower.report.people_seen >= 2 and follower.report.followed == 1


def test_preview_says_which_person_is_followed(tmp_path):
    """`--preview --person 2` on the synthetic two-person clip: the summary counts two people
    and names person 2; the preview's left half carries the "person 2 of 2" label (its
    top-left band is darkened), which a one-person clip does not get."""
    pytest.importorskip("mediapipe")
    from animate_helpers import MODEL_SIZE, random_spin, synthetic_body

    from bdmm_cli.pipeline import AnimatePipeline, LoadSettings, RunSettings
    from bdmm_cli.video import VideoWriter, iter_frames

    frames, _ = _clip(9)
    videos = {}
    for name, clip in (("two", frames[3:]), ("one", frames[:3] * 2)):
        videos[name] = tmp_path / f"{name}.mp4"
        with VideoWriter(videos[name], 10, (640, 480)) as w:
            for f in clip:
                w.write(f)
    photo = Path(__file__).resolve().parents[1] / "assets" / "person.jpg"
    pipe = AnimatePipeline.from_config(LoadSettings(smpl=synthetic_body(tmp_path), device="cpu",
                                                    pose_weights=str(random_spin(tmp_path / "spin.pth")),
                                                    keypoints="mediapipe"), with_generator=False)
    corner = {}
    for name, person in (("two", 2), ("one", None)):
        out = tmp_path / f"{name}_preview.mp4"
        result = pipe(photo, videos[name], out, RunSettings(preview=True, person=person, model_size=MODEL_SIZE,
                                                            size=MODEL_SIZE, cache=False))
        summary = result.summary()
        assert summary["people_seen"] == (2 if name == "two" else 1)
        assert summary["person_followed"] == (2 if name == "two" else 1)
        corner[name] = np.stack([f[:6, :40].mean() for f in iter_frames(out)])
    assert (corner["two"] < 100).all() and (corner["one"] > 120).all(), corner
