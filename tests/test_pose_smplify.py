"""SMPLify-style refinement (camera fixed) on the synthetic body model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bdmm_cli.body import load_body_model, write_synthetic_body_model
from bdmm_cli.pose.smplify import BODY25_SMPL_PAIRS, SmplifyConfig, refine_smpl
from bdmm_cli.pose.spin_crop import project_pixels


@pytest.fixture(scope="module")
def body(tmp_path_factory):
    return load_body_model(write_synthetic_body_model(tmp_path_factory.mktemp("body") / "synth.npz"))


def _keypoints(body, pose, betas, cam):
    _, joints = body.forward_with_joints(betas, pose)
    px = project_pixels(joints, cam, 256)
    kp = torch.zeros(pose.shape[0], 25, 3)
    for b25, smpl_j in BODY25_SMPL_PAIRS:
        kp[:, b25, :2] = px[:, smpl_j]
        kp[:, b25, 2] = 1.0
    return kp


def _error(body, pose, betas, cam, kp):
    return (_keypoints(body, pose, betas, cam)[..., :2] - kp[..., :2]).norm(dim=-1)[kp[..., 2] > 0].mean().item()


def test_refinement_pulls_the_fit_to_the_keypoints(body):
    torch.manual_seed(0)
    gt = torch.zeros(2, 72)
    gt[:, 3:] = torch.randn(2, 69) * 0.2
    betas = torch.zeros(2, 10)
    cam = torch.tensor([[0.9, 0.0, 0.1], [0.7, 0.05, 0.0]])
    kp = _keypoints(body, gt, betas, cam)
    start = gt.clone()
    start[:, 3:] += torch.randn(2, 69) * 0.15
    before = _error(body, start, betas, cam, kp)
    pose, betas_out = refine_smpl(body, kp, cam, start, betas, SmplifyConfig(pose_weight=10.0))
    after = _error(body, pose, betas_out, cam, kp)
    assert before > 2.0
    assert after < 0.5 * before
    assert pose.shape == (2, 72) and betas_out.shape == (2, 10) and torch.isfinite(pose).all()


def test_no_keypoints_leaves_the_estimate(body):
    pose = torch.randn(1, 72) * 0.1
    betas = torch.randn(1, 10)
    out_pose, out_betas = refine_smpl(body, torch.zeros(1, 25, 3), torch.tensor([[1.0, 0, 0]]), pose, betas)
    torch.testing.assert_close(out_pose, pose)
    torch.testing.assert_close(out_betas, betas)


def test_estimator_with_refinement_on_a_photo(body):
    from pose_helpers import ASTRONAUT

    from bdmm_cli.pose import HMR, PoseConfig, PoseEstimator, estimate_image

    torch.manual_seed(0)
    hmr = HMR().eval()
    plain = estimate_image(ASTRONAUT, PoseEstimator(hmr)).pose
    refined = estimate_image(ASTRONAUT, PoseEstimator(hmr, config=PoseConfig(refine=True), body_model=body)).pose
    np.testing.assert_array_equal(refined.cam, plain.cam)  # the camera is fixed
    np.testing.assert_array_equal(refined.keypoints, plain.keypoints)
    assert np.isfinite(refined.pose_theta).all() and not np.allclose(refined.pose_theta, plain.pose_theta)
    with pytest.raises(ValueError, match="body_model"):
        PoseEstimator(hmr, config=PoseConfig(refine=True))
