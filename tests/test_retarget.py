"""Retargeting (`retarget_poses`) and `BodyModel.body25`, on the synthetic body and on an
SMPL-layout body (6890 vertices, so the vertex-picked BODY_25 points are used).

Independent expectations: the camera formula of the issue written out here with
``body.forward_with_joints`` (full LBS) for the pelvis, invariances of the rule
(identity, reframing, translation), and the smplx vertex table for ``body25``.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from bdmm_cli.body.body_model import BODY25_FROM_SMPL, BodyModel
from bdmm_cli.body.synthetic import smpl_layout_body_arrays, synthetic_body_arrays
from bdmm_cli.dataset.kptsmpl import FramePose
from bdmm_cli.errors import InputError
from bdmm_cli.pipeline import retarget_poses


@pytest.fixture(scope="module", params=["synthetic", "smpl-layout"])
def body(request):
    arrays = synthetic_body_arrays(0) if request.param == "synthetic" else smpl_layout_body_arrays(0)
    return BodyModel(arrays)


def _project(body, pose: FramePose) -> np.ndarray:
    """(25, 2) pixels of the pose's BODY_25 joints (256 crop)."""
    with torch.no_grad():
        j = body.body25(torch.tensor(pose.shape_beta)[None], torch.tensor(pose.pose_theta)[None])[0, :, :2]
    return ((pose.cam[0] * (j.double().numpy() + pose.cam[1:]) + 1.0) * 128.0)


def _pelvis_px(body, pose: FramePose) -> np.ndarray:
    with torch.no_grad():
        _, j = body.forward_with_joints(torch.tensor(pose.shape_beta)[None], torch.tensor(pose.pose_theta)[None])
    return (pose.cam[0] * (j[0, 0, :2].double().numpy() + pose.cam[1:]) + 1.0) * 128.0


def _pose(body, t: float, beta_scale: float, cam, on_joints: bool = False, seed: int = 0) -> FramePose:
    rng = np.random.default_rng(seed)
    theta = np.zeros(72, np.float32)
    theta[0] = math.pi
    theta[3:] = 0.3 * np.sin(t + np.arange(69))
    beta = (beta_scale * rng.normal(size=10)).astype(np.float32)
    cam = np.asarray(cam, np.float32)
    kp = np.zeros((25, 3), np.float32)
    kp[:, 2] = np.linspace(0.3, 0.95, 25)
    base = FramePose(keypoints=kp, bbox_xyxy=np.zeros(4), cam=cam, pose_theta=theta, shape_beta=beta)
    px = _project(body, base)
    kp[:, :2] = px if on_joints else px + rng.normal(scale=4.0, size=(25, 2))
    kp[3] = [0, 0, 0]  # a missing joint
    kp[7, 1] = 0  # missing too (y == 0), x kept
    box = np.concatenate([kp[kp[:, 0] != 0, :2].min(0) - 7, kp[kp[:, 0] != 0, :2].max(0) + 5])
    return dataclasses.replace(base, keypoints=kp, bbox_xyxy=box)


def _driving(body, n=5, on_joints=False):
    return [_pose(body, 0.5 * i, 1.0, [0.8 + 0.05 * i, 0.1 * i - 0.1, 0.05 - 0.02 * i], on_joints, seed=1) for i in range(n)]


@pytest.fixture(scope="module")
def source_of(body):
    return _pose(body, 2.0, 1.0, [1.1, -0.15, 0.1], seed=7)


def _close(a: list[FramePose], b: list[FramePose], atol=2e-3):
    for x, y in zip(a, b, strict=True):
        for f in ("keypoints", "bbox_xyxy", "cam", "pose_theta", "shape_beta"):
            np.testing.assert_allclose(getattr(x, f), getattr(y, f), atol=atol, rtol=1e-5, err_msg=f)


def test_body25_is_spins_mapping_on_an_smpl_layout_mesh():
    from smplx.vertex_ids import vertex_ids

    body = BodyModel(smpl_layout_body_arrays(0))
    g = torch.Generator().manual_seed(0)
    betas, pose = torch.randn(3, 10, generator=g), 0.4 * torch.randn(3, 72, generator=g)
    verts, joints = body.forward_with_joints(betas, pose)
    b25 = body.body25(betas, pose)
    assert b25.shape == (3, 25, 3)
    for j, (name, src, _) in enumerate(BODY25_FROM_SMPL):
        expected = verts[:, vertex_ids["smplh"][src]] if isinstance(src, str) else joints[:, src]
        torch.testing.assert_close(b25[:, j], expected, atol=1e-5, rtol=1e-5, msg=name)
    assert body.body25_sources()[1] == [332, 6260, 2800, 4071, 583, 3216, 3226, 3387, 6617, 6624, 6787]


def test_body25_fallback_without_smpl_vertices():
    body = BodyModel(synthetic_body_arrays(0))
    assert body.num_vertices != 6890
    betas, pose = torch.zeros(2, 10), 0.3 * torch.randn(2, 72)
    _, joints = body.forward_with_joints(betas, pose)
    fallback = [f if isinstance(s, str) else s for _, s, f in BODY25_FROM_SMPL]
    torch.testing.assert_close(body.body25(betas, pose), joints[:, fallback])


def test_mode_none_returns_the_input(body, source_of):
    driving = _driving(body)
    assert retarget_poses(source_of, driving, body, "none") == driving


@pytest.mark.parametrize("mode", ["camera", "shape+camera"])
def test_driving_equal_to_the_source_returns_the_source(body, source_of, mode):
    _close(retarget_poses(source_of, [source_of] * 3, body, mode), [source_of] * 3)


@pytest.mark.parametrize("mode", ["camera", "shape+camera"])
def test_reframing_the_driving_video_leaves_the_result_unchanged(body, source_of, mode):
    driving = _driving(body)
    k, d = 1.6, np.array([13.0, -21.0])  # every frame: scale x k about the image origin, shifted by d pixels

    def reframe(p: FramePose) -> FramePose:
        kp = p.keypoints.copy()
        present = (kp[:, 0] != 0) & (kp[:, 1] != 0)
        kp[present, :2] = k * kp[present, :2] + d
        # pixel x = (u + 1) 128 -> k x + d  <=>  u -> k u + (k - 1) + d / 128
        s, t = float(p.cam[0]), p.cam[1:].astype(np.float64)
        shift = (k - 1.0) + d / 128.0
        cam = np.concatenate([[k * s], t + shift / (k * s)])
        return dataclasses.replace(p, keypoints=kp, bbox_xyxy=np.tile(d, 2) + k * p.bbox_xyxy, cam=cam)

    got = retarget_poses(source_of, [reframe(p) for p in driving], body, mode)
    want = retarget_poses(source_of, driving, body, mode)
    for g, w in zip(got, want):
        keep = (w.keypoints[:, 0] != 0) & (w.keypoints[:, 1] != 0)
        np.testing.assert_allclose(g.keypoints[keep], w.keypoints[keep], atol=2e-3)
        np.testing.assert_allclose(g.cam, w.cam, atol=1e-5)
        np.testing.assert_allclose(g.bbox_xyxy, w.bbox_xyxy, atol=2e-3)


@pytest.mark.parametrize("mode", ["camera", "shape+camera"])
def test_a_driver_translated_by_d_moves_the_result_by_d_s_src_over_s0(body, source_of, mode):
    driving = _driving(body)
    d = np.array([9.0, -5.0])  # pixels, in frames 1.. (frame 0 fixes the framing)

    def shift(p):
        kp = p.keypoints.copy()
        present = (kp[:, 0] != 0) & (kp[:, 1] != 0)
        kp[present, :2] += d
        cam = np.concatenate([p.cam[:1], p.cam[1:] + d / 128.0 / p.cam[0]])
        return dataclasses.replace(p, keypoints=kp, bbox_xyxy=p.bbox_xyxy + np.tile(d, 2), cam=cam)

    base = retarget_poses(source_of, driving, body, mode)
    moved = retarget_poses(source_of, driving[:1] + [shift(p) for p in driving[1:]], body, mode)
    step = d * float(source_of.cam[0]) / float(driving[0].cam[0])
    for b, m in zip(base[1:], moved[1:]):
        np.testing.assert_allclose(_pelvis_px(body, m) - _pelvis_px(body, b), step, atol=1e-3)
        keep = (b.keypoints[:, 0] != 0) & (b.keypoints[:, 1] != 0)
        np.testing.assert_allclose(m.keypoints[keep, :2] - b.keypoints[keep, :2], np.broadcast_to(step, (keep.sum(), 2)), atol=2e-3)
        np.testing.assert_allclose(m.bbox_xyxy - b.bbox_xyxy, np.tile(step, 2), atol=2e-3)


@pytest.mark.parametrize("mode", ["camera", "shape+camera"])
def test_keypoints_on_the_driver_joints_end_on_the_retargeted_joints(body, source_of, mode):
    driving = _driving(body, on_joints=True)
    for p in retarget_poses(source_of, driving, body, mode):
        keep = (p.keypoints[:, 0] != 0) & (p.keypoints[:, 1] != 0)
        np.testing.assert_allclose(p.keypoints[keep, :2], _project(body, p)[keep], atol=2e-3)


@pytest.mark.parametrize("mode", ["camera", "shape+camera"])
def test_camera_rule_frame0_pelvis_missing_keypoints_and_shape(body, source_of, mode):
    driving = _driving(body)
    out = retarget_poses(source_of, driving, body, mode)
    s_src, s0 = float(source_of.cam[0]), float(driving[0].cam[0])
    r_src, r0 = _pelvis_px(body, source_of), _pelvis_px(body, driving[0])
    np.testing.assert_allclose(_pelvis_px(body, out[0]), r_src, atol=1e-3)  # frame 0 pelvis on the source's
    for d, o in zip(driving, out):
        np.testing.assert_allclose(o.cam[0], s_src * float(d.cam[0]) / s0, rtol=1e-6)
        np.testing.assert_allclose(_pelvis_px(body, o), r_src + s_src / s0 * (_pelvis_px(body, d) - r0), atol=1e-3)
        np.testing.assert_array_equal(o.pose_theta, d.pose_theta)
        np.testing.assert_array_equal(o.shape_beta, source_of.shape_beta if mode == "shape+camera" else d.shape_beta)
        np.testing.assert_array_equal(o.keypoints[3], [0, 0, 0])  # missing stays missing
        assert o.keypoints[7, 1] == 0 and o.keypoints[7, 0] == d.keypoints[7, 0]
        np.testing.assert_array_equal(o.keypoints[:, 2], d.keypoints[:, 2])  # confidences unchanged


def test_camera_mode_maps_the_frame_by_one_similarity(body, source_of):
    driving = _driving(body)
    out = retarget_poses(source_of, driving, body, "camera")
    r_src, r0 = _pelvis_px(body, source_of), _pelvis_px(body, driving[0])
    s_src, s0 = float(source_of.cam[0]), float(driving[0].cam[0])
    for d, o in zip(driving, out):
        r = _pelvis_px(body, d)
        r_new = r_src + s_src / s0 * (r - r0)
        ratio = s_src / s0
        keep = (d.keypoints[:, 0] != 0) & (d.keypoints[:, 1] != 0)
        np.testing.assert_allclose(o.keypoints[keep, :2], r_new + ratio * (d.keypoints[keep, :2] - r), atol=2e-3)
        np.testing.assert_allclose(o.bbox_xyxy, np.tile(r_new, 2) + ratio * (d.bbox_xyxy - np.tile(r, 2)), atol=2e-3)


def test_bad_mode_is_one_input_error(body, source_of):
    with pytest.raises(InputError, match="--retarget must be one of"):
        retarget_poses(source_of, [source_of], body, "shape")
