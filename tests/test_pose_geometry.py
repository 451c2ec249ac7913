"""Crop geometry, SPIN's crop and camera conversion, rotations, One-Euro filter."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from bdmm_cli.pose.crop import (
    CropTracker,
    crop_to_square,
    crop_window,
    enlarge_box,
    map_keypoints,
    square_box,
    union_boxes,
)
from bdmm_cli.pose.filters import KeypointSmoother, OneEuroFilter, SmplSmoother, smoothing_factor
from bdmm_cli.pose.rotations import (
    axis_angle_to_rotmat,
    rot6d_to_rotmat,
    rotmat_to_axis_angle,
    rotmat_to_rot6d,
)
from bdmm_cli.pose.spin_crop import IMAGENET_MEAN, IMAGENET_STD, project_pixels, spin_cam_to_frame, spin_crop
from pose_helpers import one_euro_reference


def _dot_image(h: int, w: int, points: list[tuple[int, int]], radius: int = 1) -> np.ndarray:
    img = np.zeros((h, w, 3), np.uint8)
    for x, y in points:
        img[y - radius:y + radius + 1, x - radius:x + radius + 1] = 255
    return img


def _centroid(img: np.ndarray) -> np.ndarray:
    g = img.astype(np.float64).mean(-1)
    g = np.where(g > 0.3 * g.max(), g, 0)
    ys, xs = np.nonzero(g)
    wts = g[ys, xs]
    return np.array([(xs * wts).sum() / wts.sum(), (ys * wts).sum() / wts.sum()])


# -- crop ------------------------------------------------------------------------------------

def test_crop_window_is_the_authors_geometry():
    shape = (720, 1280)  # H, W
    box = np.array([600.0, 200.0, 700.0, 500.0])  # 100 x 300 person
    x0, y0, x1, y1 = enlarge_box(box, shape, 1.3)
    # height 300 * 1.3 = 390 around the floored centre (650, 350), width = height
    assert (y0, y1) == (int(350 - 195), int(350 + 195))
    assert (x0, x1) == (int(650 - 195), int(650 + 195))
    assert crop_window(box, shape) == (x0, y0, x1, y1)  # already square: steps 3-4 keep it
    # clamped at the left border: the square step pads the other side
    left = crop_window(np.array([0.0, 200.0, 60.0, 500.0]), shape)
    assert left[0] == 0 and left[1] >= 0 and left[3] <= 720


def test_running_union_only_grows():
    tracker = CropTracker("union")
    shape = (480, 640)
    w1 = tracker.update(np.array([300.0, 100.0, 340.0, 300.0]), shape)
    w2 = tracker.update(np.array([200.0, 120.0, 240.0, 310.0]), shape)
    np.testing.assert_array_equal(tracker.active, [200.0, 100.0, 340.0, 310.0])
    assert (w2[3] - w2[1]) >= (w1[3] - w1[1])
    assert tracker.update(None, shape) == w2  # nobody: the last window is kept
    np.testing.assert_array_equal(union_boxes(np.array([1, 2, 3, 4.0]), None), [1, 2, 3, 4])


def test_keypoints_land_on_the_same_image_content():
    """A dot at frame pixel p appears in the 256 crop at transform.points_to_crop(p)."""
    shape = (300, 500)
    for window in [(100, 20, 300, 280), (0, 0, 300, 200), (250, 0, 500, 300)]:  # tall, wide, square
        p = (window[0] + 40, window[1] + 60)
        img = _dot_image(*shape, [p], radius=2)
        crop, tf = crop_to_square(img, window, 256)
        assert crop.shape == (256, 256, 3)
        expected = tf.points_to_crop(np.array(p, float))
        np.testing.assert_allclose(_centroid(crop), expected, atol=1.0)
        np.testing.assert_allclose(tf.points_to_frame(expected), p, atol=1e-9)


def test_square_box_and_edge_padding():
    img = np.zeros((100, 200, 3), np.uint8)
    img[:, :, 0] = np.arange(200)[None, :]  # horizontal ramp
    crop, tf = crop_to_square(img, (0, 0, 200, 100), 256)  # wide window: rows edge-padded
    # edge padding repeats the first/last row, so every row of the crop is the same ramp
    assert np.abs(crop[0].astype(int) - crop[128].astype(int)).max() <= 1
    assert tf.scale == pytest.approx(256 / 200)
    assert square_box((10, 10, 20, 40), (100, 100)) == (0, 10, 30, 40)


def test_map_keypoints_missing_joint_conventions():
    tf = crop_to_square(np.zeros((100, 100, 3), np.uint8), (20, 10, 80, 90), 256)[1]
    kp = np.zeros((25, 3), np.float32)
    kp[0] = (50, 50, 0.9)
    official = map_keypoints(kp, tf, "official")
    zero = map_keypoints(kp, tf, "zero")
    np.testing.assert_allclose(official[0, :2], tf.points_to_crop(np.array([50.0, 50.0])), atol=1e-4)
    np.testing.assert_allclose(zero[0], official[0])
    # official: OpenPose's (-1, -1) mapped like any joint -> off the crop, conf 0
    np.testing.assert_allclose(official[1, :2], tf.points_to_crop(np.array([-1.0, -1.0])), atol=1e-4)
    assert official[1, 2] == 0 and (official[1, :2] < 0).any()
    np.testing.assert_array_equal(zero[1], [0, 0, 0])


def test_smoothed_crop_follows_a_moving_box_with_lag():
    tracker = CropTracker("smoothed", fps=15)
    shape = (400, 1000)
    centres = []
    for i in range(10):
        x = 100 + 60 * i
        w = tracker.update(np.array([x, 100.0, x + 50, 300.0]), shape)
        centres.append((w[0] + w[2]) / 2)
    assert all(b >= a for a, b in zip(centres, centres[1:]))  # follows the motion
    assert centres[-1] < 100 + 60 * 9 + 25  # but lags behind (smoothed)


# -- SPIN crop and camera --------------------------------------------------------------------

def test_spin_crop_normalisation_and_box_scale():
    img = np.full((256, 256, 3), 128, np.uint8)
    crop = spin_crop(img, np.array([28.0, 28.0, 228.0, 228.0]))
    assert crop.image.shape == (3, 224, 224)
    assert crop.scale == pytest.approx(1.0)
    c = crop.image[:, 112, 112].numpy()
    np.testing.assert_allclose(c, (128 / 255 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD), atol=1e-5)
    # outside the image the crop is zero padding -> (0 - mean) / std
    far = spin_crop(img, np.array([236.0, 236.0, 276.0, 276.0]))  # centred on the corner
    np.testing.assert_allclose(far.image[:, 223, 223].numpy(), -np.array(IMAGENET_MEAN) / np.array(IMAGENET_STD), atol=1e-5)


def _official_preprocess(img: np.ndarray, box) -> tuple[np.ndarray, float, np.ndarray]:
    """BDMM's spin/dataset.py::preprocess step by step (RGB input; no colour swap)."""
    import cv2

    x0, y0, x1, y1 = box
    scale = 200 / max(x1 - x0, y1 - y0)
    new_size = np.floor(np.array(img.shape[0:2]) * scale).astype(int)
    scaled = cv2.resize(img, (new_size[1], new_size[0]))
    factors = [new_size[0] / img.shape[0], new_size[1] / img.shape[1]]
    center = np.round(np.array([(x0 + x1) / 2, (y0 + y1) / 2]) * factors).astype(int)
    padded = np.pad(scaled, ((224,), (224,), (0,)), mode="constant")
    center += 224
    start = (center - 112).astype(int)
    end = (center + 112).astype(int)
    end[0] = min(end[0], padded.shape[1])
    end[1] = min(end[1], padded.shape[0])
    return padded[start[1]:end[1], start[0]:end[0]], scale, start


@pytest.mark.parametrize("box", [(40.0, 30.0, 180.0, 230.0), (0.0, 0.0, 256.0, 256.0), (-30.5, 100.2, 90.0, 300.7),
                                 (200.0, 10.0, 250.0, 60.0)])
def test_spin_crop_equals_the_official_preprocess(box):
    img = np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    ref, scale, start = _official_preprocess(img, box)
    ours = spin_crop(img, np.array(box))
    denorm = ours.image.numpy() * np.array(IMAGENET_STD)[:, None, None] + np.array(IMAGENET_MEAN)[:, None, None]
    np.testing.assert_allclose(np.transpose(denorm, (1, 2, 0)) * 255, ref, atol=1e-3)
    assert ours.scale == pytest.approx(scale)
    np.testing.assert_array_equal(ours.start_pt, start)


@pytest.mark.parametrize("box", [(40.0, 30.0, 180.0, 230.0), (100.0, 80.0, 160.0, 250.0), (5.0, 60.0, 250.0, 200.0)])
def test_camera_conversion_lands_on_the_same_pixels(box):
    """Points projected through SPIN's crop camera, then carried to the 256 frame through
    the crop's real pixel geometry, coincide with the converted camera's projection."""
    box = np.array(box)
    # 1. the image geometry of the crop: a dot at frame pixel p shows up at crop pixel q
    p = np.array([box[0] + 20, box[1] + 30], int)
    crop = spin_crop(_dot_image(256, 256, [tuple(p)], radius=2), box)
    denorm = crop.image.numpy() * np.array(IMAGENET_STD)[:, None, None] + np.array(IMAGENET_MEAN)[:, None, None]
    q = _centroid(np.transpose(denorm, (1, 2, 0)))
    q_pred = p * crop.scale + 224 - crop.start_pt  # crop pixel <-> frame pixel relation
    np.testing.assert_allclose(q, q_pred, atol=1.0)
    # 2. random 3D points and SPIN cameras: project in the crop, map to the frame
    rng = np.random.default_rng(0)
    pts = torch.tensor(rng.uniform(-0.8, 0.8, (4, 30, 3)))
    cam224 = torch.tensor(np.stack([rng.uniform(0.6, 1.2, 4), rng.normal(0, 0.1, 4), rng.normal(0, 0.1, 4)], 1))
    scale = torch.full((4,), crop.scale, dtype=torch.float64)
    start = torch.tensor(np.repeat(crop.start_pt[None], 4, 0))
    cam256 = spin_cam_to_frame(cam224, scale, start, 256)
    in_crop = project_pixels(pts, cam224, 224).numpy()
    via_image = (in_crop - 224 + crop.start_pt) / crop.scale
    np.testing.assert_allclose(project_pixels(pts, cam256, 256).numpy(), via_image, atol=1e-9)


# -- rotations -----------------------------------------------------------------------------

def test_rot6d_gives_orthonormal_matrices():
    x = torch.randn(100, 6, dtype=torch.float64) * 3
    r = rot6d_to_rotmat(x)
    eye = torch.eye(3, dtype=torch.float64).expand(100, 3, 3)
    torch.testing.assert_close(r.transpose(1, 2) @ r, eye, atol=1e-10, rtol=0)
    torch.testing.assert_close(torch.det(r), torch.ones(100, dtype=torch.float64), atol=1e-10, rtol=0)
    # columns: b1 is a1 normalised; b2 is in the plane of a1, a2
    a = x.view(-1, 3, 2)
    torch.testing.assert_close(r[:, :, 0], a[:, :, 0] / a[:, :, 0].norm(dim=1, keepdim=True))
    torch.testing.assert_close(rot6d_to_rotmat(rotmat_to_rot6d(r)), r)


def test_rot6d_gradcheck():
    x = torch.randn(3, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(rot6d_to_rotmat, (x,))


def test_axis_angle_conversions_match_scipy():
    rng = np.random.default_rng(1)
    aa = rng.normal(0, 1.2, (200, 3))
    aa[0] = 0
    aa[1] = [math.pi - 1e-4, 0, 0]  # near 180 degrees
    aa[2] = [1e-9, 0, 0]
    r_ref = Rotation.from_rotvec(aa).as_matrix()
    r = axis_angle_to_rotmat(torch.tensor(aa)).numpy()
    np.testing.assert_allclose(r, r_ref, atol=1e-10)
    back = rotmat_to_axis_angle(torch.tensor(r_ref)).numpy()
    np.testing.assert_allclose(Rotation.from_rotvec(back).as_matrix(), r_ref, atol=1e-8)
    assert np.all(np.linalg.norm(back, axis=1) <= math.pi + 1e-9)
    assert not np.isnan(rotmat_to_axis_angle(torch.full((1, 3, 3), float("nan"))).numpy()).any()


# -- One-Euro --------------------------------------------------------------------------------

def test_one_euro_matches_its_formula():
    rng = np.random.default_rng(3)
    signal = np.cumsum(rng.normal(0, 5, (40, 2, 3)), axis=0)
    f = OneEuroFilter(freq=15, mincutoff=1, beta=0.05, dcutoff=1)
    ours = np.stack([f(s) for s in signal])
    for idx in np.ndindex(2, 3):
        ref = np.array(one_euro_reference(signal[(slice(None), *idx)]))
        np.testing.assert_allclose(ours[(slice(None), *idx)], ref, rtol=1e-12, atol=1e-9)
    # first sample passes through; a constant signal stays constant
    g = OneEuroFilter()
    assert [g(np.array(7.0)).item() for _ in range(5)] == [7.0] * 5
    # the authors' constants: alpha at mincutoff 1 Hz, 15 Hz sampling
    assert smoothing_factor(15, 1) == pytest.approx(1 / (1 + 15 / (2 * math.pi)))
    assert smoothing_factor(15, 1) == pytest.approx(0.295218, abs=1e-6)


def test_keypoint_smoother_skips_and_restarts_missing_joints():
    # the plain per-joint filter (the authors' frame order is tested in test_pose_smoothing.py)
    sm = KeypointSmoother(skip_first=False, match=False)
    kp = np.zeros((25, 3), np.float32)
    kp[:, 2] = 1
    kp[:, 0] = 10
    sm(kp)
    kp2 = kp.copy()
    kp2[:, 0] = 20
    kp2[3] = 0  # joint 3 missing
    out = sm(kp2)
    assert 10 < out[0, 0] < 20  # smoothed
    np.testing.assert_array_equal(out[3], [0, 0, 0])  # left missing
    kp3 = kp2.copy()
    kp3[3] = (50, 60, 1)
    out3 = sm(kp3)
    np.testing.assert_allclose(out3[3], [50, 60, 1])  # restarted: first sample passes through


def test_smpl_smoother_works_on_rotations():
    """Two frames whose axis-angle differ by a 2*pi wrap (same rotation) stay that rotation;
    a raw axis-angle average would give a very different rotation."""
    sm = SmplSmoother()
    axis = np.array([0.0, 0.0, 1.0])
    pose1 = np.zeros(72)
    pose1[:3] = axis * (math.pi - 0.05)
    pose2 = np.zeros(72)
    pose2[:3] = -axis * (math.pi - 0.05)  # rotation by -(pi - 0.05) = pi + 0.05: 0.1 rad away
    p1, _, _ = sm(pose1, np.zeros(10), np.array([1.0, 0, 0]))
    p2, b2, c2 = sm(pose2, np.ones(10), np.array([1.0, 0, 0]))
    r1 = Rotation.from_rotvec(pose1[:3])
    r_out = Rotation.from_rotvec(p2[:3].astype(np.float64))
    assert (r_out * r1.inv()).magnitude() < 0.1 + 1e-4  # between the two, not flipped around
    np.testing.assert_allclose(p2[3:], 0, atol=1e-6)
    assert 0 < b2[0] < 1  # shape smoothed too
