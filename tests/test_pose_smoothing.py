"""Keypoint smoothing and boxes in the authors' order (docs/data_path.md section 5).

Facts checked on hand-made sequences:
- frames 0 and 1 come out raw; the One-Euro filters start on frame 2 with frame 1 as their
  first sample; after a frame without anyone the next frame is raw again;
- a person with fewer than 3 "similar" joints (the tracker's rule) restarts the filters;
- the per-frame box is the box of the SMOOTHED keypoints: it feeds the running union (the
  crop window), the stored bbox_xyxy and SPIN's crop.
The expected values are computed here from the documented recurrence
(freq 15, mincutoff 1, beta 0.05, dcutoff 1), not with the filter under test.
"""

from __future__ import annotations


import numpy as np
import pytest
import torch

from bdmm_cli.pose import HMR, PoseConfig, PoseEstimator
from bdmm_cli.pose.body25 import Body25
from bdmm_cli.pose.crop import crop_transform, crop_window, union_boxes
from bdmm_cli.pose.filters import KeypointSmoother, similar_joint_count
from pose_helpers import SequenceDetector, one_euro_reference



def skeleton(dx: float, dy: float = 0.0, wobble: float = 0.0) -> np.ndarray:
    """A (25, 3) BODY_25 person in frame pixels; joints 15-24 missing."""
    kp = np.zeros((25, 3), np.float32)
    base = [(150, 40), (150, 70), (125, 70), (115, 110), (110, 150), (175, 70), (185, 110), (190, 150),
            (150, 160), (135, 160), (135, 220), (135, 280), (165, 160), (165, 220), (165, 280)]
    for j, (x, y) in enumerate(base):
        kp[j] = (x + dx + wobble * ((j * 7) % 5 - 2), y + dy + wobble * ((j * 3) % 4 - 1.5), 0.8)
    return kp


def test_smoother_order_first_two_raw_then_filtered():
    seq = [skeleton(0), skeleton(6, 2, 1.0), skeleton(13, 3, 2.0), skeleton(17, 1, 1.0), skeleton(25, 4, 3.0)]
    sm = KeypointSmoother()
    out = [sm(k) for k in seq]
    np.testing.assert_array_equal(out[0], seq[0])
    np.testing.assert_array_equal(out[1], seq[1])
    for j in range(15):
        for c in range(2):
            want = one_euro_reference([float(s[j, c]) for s in seq[1:]])  # frame 1 is the first sample
            got = [float(o[j, c]) for o in out[1:]]
            np.testing.assert_allclose(got, np.float32(want), rtol=0, atol=1e-4)
    assert not np.allclose(out[3][:, :2], seq[3][:, :2])  # really smoothed from frame 2 on
    for o, s in zip(out, seq):
        np.testing.assert_array_equal(o[:, 2], s[:, 2])  # the score is not filtered
        np.testing.assert_array_equal(o[15:], 0)          # missing joints stay missing


def test_smoother_restarts_after_a_gap_and_on_a_missing_joint():
    sm = KeypointSmoother()
    a, b, c, d, e = skeleton(0), skeleton(5), skeleton(9), skeleton(14), skeleton(20)
    sm(a), sm(b), sm(c)
    sm.gap()                                   # a frame without anyone
    np.testing.assert_array_equal(sm(d), d)    # raw again
    e_missing = e.copy()
    e_missing[4] = 0                           # the right wrist disappears ...
    out_e = sm(e_missing)
    for j in (0, 8, 14):
        assert out_e[j, 0] == pytest.approx(one_euro_reference([float(d[j, 0]), float(e[j, 0])])[1], abs=1e-4)
    np.testing.assert_array_equal(out_e[4], 0)
    f = skeleton(26)
    out_f = sm(f)                              # ... and comes back: its filter restarts
    np.testing.assert_array_equal(out_f[4], f[4])
    assert out_f[0, 0] != f[0, 0]


def test_similar_joints_and_an_unmatched_person_restarts():
    cur, prev = skeleton(150), skeleton(0)
    box_c, box_p = Body25(cur).box_xyxy(), Body25(prev).box_xyxy()
    sig = np.array([.26, .79, .79, .72, .62, .79, .72, .62, .79, 1.07, .87, .89, 1.07, .87, .89,
                    .25, .25, .35, .35, .35, .35, .25, .35, .35, .25]) / 10
    area = max(box_c[2] * box_c[3], box_p[2] * box_p[3])  # x1 * y1, as the authors compute it
    d2 = ((cur.astype(np.float64) - prev) ** 2).sum(1)
    want = int(((np.exp(-d2 / (2 * area * (2 * sig) ** 2)) > 0.5) & (cur[:, 2] > 0) & (prev[:, 2] > 0)).sum())
    assert similar_joint_count(cur, prev, box_c, box_p) == want == 0
    near = skeleton(8)
    assert similar_joint_count(near, prev, Body25(near).box_xyxy(), box_p) == 15
    sm = KeypointSmoother()
    sm(skeleton(0)), sm(skeleton(4)), sm(skeleton(8))
    jump = skeleton(160)
    np.testing.assert_array_equal(sm(jump), jump)  # unmatched: fresh filters, raw
    assert sm(skeleton(165))[0, 0] != skeleton(165)[0, 0]



def test_estimator_boxes_come_from_the_smoothed_keypoints():
    seq = [skeleton(0), skeleton(10, 3, 1.0), skeleton(30, 6, 2.0), skeleton(45, 2, 1.5), None,
           skeleton(60, 5, 1.0), skeleton(80, 8, 2.5), skeleton(95, 4, 1.0)]
    frames = [np.full((320, 400, 3), 10 * i, np.uint8) for i in range(len(seq))]
    torch.manual_seed(0)
    est = PoseEstimator(HMR().eval(), detector=SequenceDetector(seq), config=PoseConfig(batch_size=4))
    out = list(est.process(iter(frames)))
    assert [f.pose is None for f in out] == [s is None for s in seq]

    # expected smoothed keypoints in frame pixels: raw 0, 1; filtered from 2 on (frame 1 first);
    # raw again at 5 after the gap, filtered from 6 on (frame 5 first)
    expected = {0: seq[0].astype(np.float64), 1: seq[1].astype(np.float64)}
    for run in ((1, 2, 3), (5, 6, 7)):
        for j in range(15):
            for c in range(2):
                ys = one_euro_reference([float(seq[i][j, c]) for i in run])
                for i, y in zip(run, ys):
                    expected.setdefault(i, seq[i].astype(np.float64).copy())[j, c] = y
    active = None
    for i, frame in enumerate(out):
        if seq[i] is None:
            continue
        kp = expected[i]
        box = np.concatenate([kp[:15, :2].min(0), kp[:15, :2].max(0)]).astype(np.float32)  # smoothed box
        active = union_boxes(box, active)
        transform = crop_transform(crop_window(active, (320, 400)))
        want_kp = transform.points_to_crop(kp[:15, :2])
        np.testing.assert_allclose(frame.pose.keypoints[:15, :2], want_kp, atol=2e-3)
        np.testing.assert_allclose(frame.pose.bbox_xyxy, transform.box_to_crop(box), atol=2e-3)
        # the stored box is the box of the stored (smoothed) keypoints
        pts = frame.pose.keypoints[:15, :2]
        np.testing.assert_allclose(frame.pose.bbox_xyxy, np.concatenate([pts.min(0), pts.max(0)]), atol=2e-3)
    # the raw box would differ from the stored one where smoothing moved the joints
    raw_box = Body25(seq[3]).box_xyxy()
    assert not np.allclose(expected[3][:15, :2].min(0), raw_box[:2], atol=0.5)
