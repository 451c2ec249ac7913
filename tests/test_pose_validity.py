"""The authors' frame-validity rule (docs/smplify.md section 7), and SMPLify in the stage.

Head box: cocoplus joints 12..18 in [0, 1] units, widened by 0.05 (not below), clamped,
times 512, truncated; kept iff the integer area is > 100. Expected boxes are worked out
by hand below.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bdmm_cli.body import BodyModel, load_body_model, write_synthetic_body_model
from bdmm_cli.body.synthetic import synthetic_body_arrays
from bdmm_cli.pose import HMR, PoseConfig, PoseEstimator
from bdmm_cli.pose.estimate import HEAD_TOO_SMALL
from bdmm_cli.pose.gmm import MaxMixturePrior
from bdmm_cli.pose.smplify import SmplifyConfig, refine_smpl, vertex_joint_ids
from bdmm_cli.pose.validity import head_box, head_is_large_enough, head_joints, valid_head_frames
from pose_helpers import SequenceDetector


def to_unit(q):
    """[0, 1] image units -> the [-1, 1] units of the projected joints."""
    return np.asarray(q, np.float32) * 2 - 1


def test_head_box_by_hand():
    # q_x in [0.40, 0.45], q_y in [0.20, 0.30]:
    # x0 = 0.35*512 = 179.2 -> 179, x1 = 0.50*512 = 256, y0 = 0.15*512 = 76.8 -> 76, y1 = 0.30*512 = 153.6 -> 153
    q = [(0.40, 0.20), (0.45, 0.30), (0.42, 0.25)]
    assert head_box(to_unit(q)) == (179, 76, 256, 153)
    assert head_is_large_enough(to_unit(q))
    # clamping: x below 0 and y above 1 (no margin below)
    q = [(0.01, 0.97), (0.03, 1.2)]
    assert head_box(to_unit(q)) == (0, 471, 40, 512)  # 0.08*512 = 40.96 -> 40; 0.92*512 = 471.04 -> 471


def test_head_area_threshold_is_strictly_more_than_100_px():
    # a point head: width = 2 * 0.05 * 512 = 51.2 -> about 51 px, height 0.05 * 512 = 25.6 -> 25 or 26 px: valid
    assert head_is_large_enough(to_unit([(0.5, 0.5)]))
    # head off the left edge: x0 = 0, x1 = (-0.2 + 0.05) * 512 = -76.8 -> -76; height positive: invalid
    assert head_box(to_unit([(-0.3, 0.4), (-0.2, 0.5)])) == (0, 179, -76, 256)
    assert not head_is_large_enough(to_unit([(-0.3, 0.4), (-0.2, 0.5)]))
    # off the top-left corner too: two negative extents, (-76) * (-128) > 100: kept, as the authors' code does
    assert head_box(to_unit([(-0.3, -0.3), (-0.2, -0.25)])) == (0, 0, -76, -128)
    assert head_is_large_enough(to_unit([(-0.3, -0.3), (-0.2, -0.25)]))
    # exact integer boxes around the threshold: x0 = 0 after clamping, y0 = 0
    # width 10 (x1 = 10/512 after the +0.05 margin), height 10 -> 100: not more than 100
    def box_with(w_px, h_px):
        qx = w_px / 512 - 0.05 + 1e-6
        qy = h_px / 512 + 1e-6
        return to_unit([(qx, qy), (qx - 0.001, qy)])
    assert head_box(box_with(10, 10))[2:] == (10, 10)
    assert not head_is_large_enough(box_with(10, 10))
    assert head_box(box_with(11, 10))[2:] == (11, 10)
    assert head_is_large_enough(box_with(11, 10))
    # the authors' quirk: two negative extents (head beyond the bottom-right) give a positive product
    # x0 = y0 = 1.45 * 512 = 742.4 -> 742, x1 = y1 = 512: (-230) * (-230) > 100
    assert head_box(to_unit([(1.5, 1.5)])) == (742, 742, 512, 512)
    assert head_is_large_enough(to_unit([(1.5, 1.5)]))


def test_head_joints_from_the_cocoplus_regressor_or_stand_ins():
    arrays = synthetic_body_arrays()
    nv = arrays["v_template"].shape[0]
    reg = np.zeros((19, nv))
    picks = [5, 17, 40, 99, 123, 200, 321]
    for row, v in zip(range(12, 19), picks):
        reg[row, v] = 1.0
    with_reg = BodyModel(dict(arrays, cocoplus_regressor=reg))
    plain = BodyModel(arrays)
    torch.manual_seed(0)
    pose, betas = torch.randn(2, 72) * 0.2, torch.randn(2, 10) * 0.3
    verts, joints = plain.forward_with_joints(betas, pose)
    torch.testing.assert_close(head_joints(with_reg, betas, pose), verts[:, picks])
    face = list(vertex_joint_ids(plain)[:5])
    torch.testing.assert_close(head_joints(plain, betas, pose), torch.cat([joints[:, [12, 15]], verts[:, face]], 1))
    # the orthographic projection of the 256-frame camera decides: a head inside the crop always
    # passes (the margins alone give about 51 x 25 px), one pushed off the left side fails
    cam = torch.tensor([[0.9, 0.0, 0.3], [0.9, -3.0, 0.0]])
    j2d = (cam[:, None, :1] * (head_joints(with_reg, betas, pose)[..., :2] + cam[:, None, 1:])).numpy()
    want = np.array([head_is_large_enough(j) for j in j2d])
    np.testing.assert_array_equal(valid_head_frames(with_reg, pose, betas, cam), want)
    assert want.tolist() == [True, False]


@pytest.fixture(scope="module")
def body(tmp_path_factory):
    return load_body_model(write_synthetic_body_model(tmp_path_factory.mktemp("body") / "synth.npz"))


def hmr_with_camera(s: float, ty: float = 0.0) -> HMR:
    torch.manual_seed(0)
    hmr = HMR().eval()
    hmr.init_cam.copy_(torch.tensor([[s, 0.0, ty]]))
    return hmr


def person(scale: float, dx: float = 0.0) -> np.ndarray:
    kp = np.zeros((25, 3), np.float32)
    pts = [(0, -110), (0, -80), (-25, -80), (-35, -40), (-40, 0), (25, -80), (35, -40), (40, 0),
           (0, 10), (-15, 10), (-15, 70), (-15, 130), (15, 10), (15, 70), (15, 130)]
    for j, (x, y) in enumerate(pts):
        kp[j] = (200 + dx + x * scale, 170 + y * scale, 0.9)
    return kp



def run(hmr, seq, body, config, prior=None):
    frames = [np.full((320, 400, 3), 10 * i, np.uint8) for i in range(len(seq))]
    est = PoseEstimator(hmr, detector=SequenceDetector(seq), config=config, body_model=body, prior=prior)
    return list(est.process(iter(frames)))


def test_stage_drops_exactly_the_frames_with_too_small_a_head(body):
    # The person walks down and right; the running-union crop keeps its top, so with this
    # camera offset (random HMR: the mesh's head hangs below the box) the head leaves the
    # bottom of the crop in the later frames.
    seq = [person(0.8), person(0.8), None, person(0.8, 60), person(0.8, 120), person(0.8, 150)]
    for i, kp in enumerate(seq):
        if kp is not None:
            kp[:15, 1] += 25 * i
    hmr = hmr_with_camera(0.9, ty=0.5)
    plain = run(hmr, seq, body, PoseConfig(smooth_smpl=False, batch_size=3))
    posed = [f for f in plain if f.pose is not None]
    want = valid_head_frames(body, torch.tensor(np.stack([f.pose.pose_theta for f in posed])),
                             torch.tensor(np.stack([f.pose.shape_beta for f in posed])),
                             torch.tensor(np.stack([f.pose.cam for f in posed])))
    assert want.any() and not want.all()  # the sequence has both kinds
    filtered = run(hmr, seq, body, PoseConfig(smooth_smpl=False, batch_size=3, head_filter=True))
    kept = {f.index for f in filtered if f.pose is not None}
    assert kept == {f.index for f, w in zip(posed, want) if w}
    dropped = [f for f in filtered if f.dropped]
    assert {f.index for f in dropped} == {f.index for f, w in zip(posed, want) if not w}
    assert all(f.dropped == HEAD_TOO_SMALL and f.pose is None for f in dropped)
    assert filtered[2].pose is None and filtered[2].dropped is None  # nobody there: not "dropped"
    for f in filtered:
        if f.pose is not None:
            g = plain[f.index]
            np.testing.assert_array_equal(f.pose.pose_theta, g.pose.pose_theta)
    with pytest.raises(ValueError, match="body_model"):
        PoseEstimator(hmr, config=PoseConfig(head_filter=True))


def test_stage_refines_in_batches_of_frames_with_a_person(body):
    """refine_batch 2 over posed frames [0, 1, 3, 4, 5] (2 has nobody): batches {0, 1}, {3, 4}, {5}."""
    seq = [person(1.0), person(1.0, 4), None, person(1.0, 8), person(1.0, 12), person(1.0, 16)]
    hmr = hmr_with_camera(0.9)
    rng = np.random.default_rng(0)
    means = rng.normal(0, 0.05, (8, 69))
    covars = np.stack([np.eye(69) * rng.uniform(0.5, 1.5) for _ in range(8)])
    prior = MaxMixturePrior({"means": means, "covars": covars, "weights": np.full(8, 1 / 8)})
    base = PoseConfig(smooth_smpl=False, batch_size=4)
    plain = [f for f in run(hmr, seq, body, base) if f.pose is not None]
    with pytest.raises(ValueError, match="GMM prior"):
        PoseEstimator(hmr, config=PoseConfig(refine=True), body_model=body)
    refined = [f for f in run(hmr, seq, body, PoseConfig(smooth_smpl=False, batch_size=4, refine=True,
                                                         refine_batch=2), prior) if f.pose is not None]
    assert [f.index for f in refined] == [0, 1, 3, 4, 5]

    def stack(name):
        return torch.tensor(np.stack([getattr(f.pose, name) for f in plain]))

    want = refine_smpl(body, prior, stack("keypoints"), stack("cam"), stack("pose_theta"), stack("shape_beta"),
                       SmplifyConfig(batch_size=2))
    got_pose = np.stack([f.pose.pose_theta for f in refined])
    np.testing.assert_allclose(got_pose, want.pose.numpy(), atol=1e-5)
    np.testing.assert_allclose(np.stack([f.pose.shape_beta for f in refined]), want.betas.numpy(), atol=1e-5)
    assert not np.allclose(got_pose, stack("pose_theta").numpy(), atol=1e-3)  # it did refine
    for a, b in zip(refined, plain):
        np.testing.assert_array_equal(a.pose.cam, b.pose.cam)  # camera fixed
        np.testing.assert_array_equal(a.pose.keypoints, b.pose.keypoints)


def test_dropped_frames_survive_the_pose_cache(body, tmp_path):
    from bdmm_cli.pose import estimate_video
    from bdmm_cli.video import VideoWriter

    seq = [person(0.8), person(0.8), person(0.8, 60), person(0.8, 120), person(0.8, 150)]
    for i, kp in enumerate(seq):
        kp[:15, 1] += 25 * i
    path = tmp_path / "v.mp4"
    with VideoWriter(path, 10, (400, 320)) as w:
        for i in range(len(seq)):
            w.write(np.full((320, 400, 3), 10 * i + 5, np.uint8))  # the detector reads the value // 10
    est = PoseEstimator(hmr_with_camera(0.9, ty=0.5), detector=SequenceDetector(seq),
                        config=PoseConfig(smooth_smpl=False, head_filter=True), body_model=body)
    first = estimate_video(path, est)
    frames1 = list(first)
    again = estimate_video(path, est)
    frames2 = list(again)
    assert not first.from_cache and again.from_cache
    assert first.dropped and first.dropped == again.dropped and again.missing == first.missing == []
    assert [f.dropped for f in frames1] == [f.dropped for f in frames2]


def test_refining_stage_does_not_hold_back_frames_before_a_batch(body):
    """Frames without anyone ahead of the next SMPLify batch come out at once (order kept)."""
    prior = MaxMixturePrior({"means": np.zeros((1, 69)), "covars": np.eye(69)[None], "weights": np.ones(1)})
    seq = [None, None, None, person(1.0), person(1.0, 4)]
    consumed = []

    def frames():
        for i in range(len(seq)):
            consumed.append(i)
            yield np.full((320, 400, 3), 10 * i, np.uint8)

    est = PoseEstimator(hmr_with_camera(0.9), detector=SequenceDetector(seq), body_model=body, prior=prior,
                        config=PoseConfig(refine=True, batch_size=1))
    stream = est.process(frames())
    first = next(stream)
    assert first.index == 0 and first.pose is None and len(consumed) <= 2
    rest = list(stream)
    assert [f.index for f in rest] == [1, 2, 3, 4] and rest[-1].pose is not None


def test_cache_key_covers_the_prior_and_the_body_model(body):
    hmr = hmr_with_camera(0.9)

    def prior(mean):
        return MaxMixturePrior({"means": np.full((1, 69), mean), "covars": np.eye(69)[None], "weights": np.ones(1)})

    def key(b, p):
        return PoseEstimator(hmr, config=PoseConfig(refine=True), body_model=b, prior=p).fingerprint()

    other_body = BodyModel(synthetic_body_arrays(seed=1))
    assert key(body, prior(0.0)) != key(body, prior(0.1))
    assert key(body, prior(0.0)) != key(other_body, prior(0.0))
    assert key(body, prior(0.0)) == key(body, prior(0.0))
