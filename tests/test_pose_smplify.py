"""SMPLify as the authors ran it (docs/smplify.md), on the synthetic body model.

- the GMM file in the authors' format (a latin1 pickle of means/covars/weights), read
  without running code; the prior against the mixture NLL written out in float64;
- the whole objective against an independent float64 evaluation of the doc's formulas;
- fits on synthetic bodies whose keypoints are exact projections: a fit started at the
  truth stays there, one started away returns towards it;
- the 64-frame batching (as one problem per batch) through the estimator.
"""

from __future__ import annotations

import math
import os
import pickle

import numpy as np
import pytest
import torch

from bdmm_cli.body import load_body_model, write_synthetic_body_model
from bdmm_cli.errors import InputError, MissingResourceError
from bdmm_cli.pose.gmm import (
    MaxMixturePrior,
    find_gmm_prior,
    install_gmm_prior,
    installed_gmm_path,
    load_gmm_prior,
    read_gmm_file,
)
from bdmm_cli.pose.smplify import (
    BODY25_TO_SMPL45,
    SmplifyConfig,
    camera_translation,
    fit_batch,
    keypoints_to_smpl45,
    perspective_projection,
    refine_smpl,
    smplify_joints,
    smplify_loss,
    vertex_joint_ids,
)


def make_gmm(seed: int = 0, k: int = 8, scale: float = 0.3, mean_scale: float = 0.1) -> dict:
    rng = np.random.default_rng(seed)
    means = rng.normal(0, mean_scale, (k, 69))
    covars = []
    for _ in range(k):
        a = rng.normal(0, 1, (69, 69)) * 0.05
        covars.append(a @ a.T + np.eye(69) * scale ** 2 * rng.uniform(0.5, 1.5))
    weights = rng.uniform(0.5, 1.5, k)
    return {"means": means, "covars": np.stack(covars), "weights": weights / weights.sum()}


def write_gmm_pickle(path, gmm: dict) -> os.PathLike:
    with open(path, "wb") as fh:
        pickle.dump(gmm, fh, protocol=2)  # a Python-2-era protocol, as the authors' file
    return path


@pytest.fixture(scope="module")
def body(tmp_path_factory):
    return load_body_model(write_synthetic_body_model(tmp_path_factory.mktemp("body") / "synth.npz"))


@pytest.fixture(scope="module")
def gmm():
    return make_gmm()


@pytest.fixture(scope="module")
def prior(gmm):
    return MaxMixturePrior(gmm)


def test_gmm_file_reads_safely_in_the_authors_format(tmp_path, gmm):
    path = write_gmm_pickle(tmp_path / "gmm_08.pkl", gmm)
    got = read_gmm_file(path)
    for key in ("means", "covars", "weights"):
        np.testing.assert_array_equal(got[key], gmm[key])

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    with open(tmp_path / "evil.pkl", "wb") as fh:
        pickle.dump({"means": Evil()}, fh, protocol=2)
    with pytest.raises(InputError, match="refusing"):
        read_gmm_file(tmp_path / "evil.pkl")
    bad = dict(gmm, means=gmm["means"][:, :60])
    with pytest.raises(InputError, match="means"):
        read_gmm_file(write_gmm_pickle(tmp_path / "bad.pkl", bad))
    with pytest.raises(InputError, match="missing weights"):
        read_gmm_file(write_gmm_pickle(tmp_path / "nokey.pkl", {"means": gmm["means"], "covars": gmm["covars"]}))


def test_gmm_install_find_and_load(tmp_path, gmm):
    assert find_gmm_prior() is None
    with pytest.raises(MissingResourceError, match="gmm_08.pkl"):
        load_gmm_prior()
    src = write_gmm_pickle(tmp_path / "gmm_08.pkl", gmm)
    dest, changed = install_gmm_prior(src)
    assert changed and dest == installed_gmm_path() and find_gmm_prior() == dest
    assert install_gmm_prior(src) == (dest, False)  # idempotent
    other = write_gmm_pickle(tmp_path / "other.pkl", make_gmm(seed=5))
    with pytest.raises(InputError, match="--force"):
        install_gmm_prior(other)
    loaded = load_gmm_prior()
    torch.testing.assert_close(loaded.means, torch.tensor(gmm["means"], dtype=torch.float32))


def test_prior_is_the_best_component_nll(prior, gmm):
    """E = min_k [NLL_k] - 0.5 ln det of the tightest component (the doc's restatement)."""
    rng = np.random.default_rng(1)
    theta = rng.normal(0, 0.3, (5, 69))
    logdet = np.array([np.linalg.slogdet(c)[1] for c in gmm["covars"]])
    nll = np.empty((5, 8))
    for k in range(8):
        d = theta - gmm["means"][k]
        quad = np.einsum("bi,ij,bj->b", d, np.linalg.inv(gmm["covars"][k]), d)
        nll[:, k] = 0.5 * quad + 0.5 * logdet[k] + 34.5 * math.log(2 * math.pi) - math.log(gmm["weights"][k])
    want = nll.min(1) - 0.5 * logdet.min()
    got = prior(torch.tensor(theta, dtype=torch.float32)).double().numpy()
    np.testing.assert_allclose(got, want, rtol=2e-5)


def loss_float64(joints, body_pose, betas, cam, kp25, gmm, temporal=True):
    """The doc's objective, written out in float64 numpy (docs/smplify.md sections 2 and 4)."""
    b = joints.shape[0]
    kp = np.zeros((b, 45, 3))
    for src, dst in BODY25_TO_SMPL45:
        kp[:, dst, :2] = kp25[:, src, :2] * 224 / 256
        kp[:, dst, 2] = kp25[:, src, 2]
    s, tx, ty = cam[:, 0], cam[:, 1], cam[:, 2]
    tz = 2 * 5000 / (224 * s + 1e-9)
    u = 5000 * (joints[..., 0] + tx[:, None]) / (joints[..., 2] + tz[:, None]) + 112
    v = 5000 * (joints[..., 1] + ty[:, None]) / (joints[..., 2] + tz[:, None]) + 112

    def rho(r):
        return 100.0 ** 2 * r ** 2 / (100.0 ** 2 + r ** 2)

    c2 = kp[..., 2] ** 2
    e2d = (c2 * (rho(u - kp[..., 0]) + rho(v - kp[..., 1]))).sum(1)
    sqrtdet = np.sqrt(np.linalg.det(gmm["covars"]))
    ck = gmm["weights"] / ((2 * np.pi) ** 34.5 * sqrtdet / sqrtdet.min())
    gmm_e = np.min([0.5 * np.einsum("bi,ij,bj->b", body_pose - m, np.linalg.inv(c), body_pose - m) - np.log(w)
                    for m, c, w in zip(gmm["means"], gmm["covars"], ck)], axis=0)
    full = np.concatenate([np.zeros((b, 3)), body_pose], 1)
    angle = (np.exp(2 * full[:, 55]) + np.exp(-2 * full[:, 58]) + np.exp(-2 * full[:, 12])
             + np.exp(-2 * full[:, 15]))
    total = (10 * e2d + 4.78 ** 2 * gmm_e + 15.2 ** 2 * angle + 25 * (betas ** 2).sum(1)).sum()
    if temporal and b > 1:
        s2d = (c2[1:] * (np.abs(u[1:] - u[:-1]) + np.abs(v[1:] - v[:-1]))).sum()
        s3d = (c2[1:] * np.abs(joints[1:] - joints[:-1]).sum(-1)).sum()
        total += 0.01 ** 2 * s2d + 1.0 * s3d
    return total


@pytest.mark.parametrize("frames", [1, 4])
def test_loss_matches_an_independent_float64_evaluation(prior, gmm, frames):
    rng = np.random.default_rng(frames)
    joints = rng.normal(0, 0.4, (frames, 45, 3))
    body_pose = rng.normal(0, 0.3, (frames, 69))
    betas = rng.normal(0, 1, (frames, 10))
    cam = np.stack([rng.uniform(0.6, 1.0, frames), rng.normal(0, 0.1, frames), rng.normal(0, 0.1, frames)], 1)
    kp25 = np.concatenate([rng.uniform(20, 236, (frames, 25, 2)), rng.uniform(0, 1, (frames, 25, 1))], -1)
    kp25[:, 3, 2] = 0  # a missing joint
    want = loss_float64(joints, body_pose, betas, cam, kp25, gmm)
    f32 = torch.float32
    trans = camera_translation(torch.tensor(cam, dtype=f32))
    got = smplify_loss(torch.tensor(joints, dtype=f32), torch.tensor(body_pose, dtype=f32),
                       torch.tensor(betas, dtype=f32), trans, keypoints_to_smpl45(torch.tensor(kp25, dtype=f32)),
                       prior)
    assert got.item() == pytest.approx(want, rel=1e-5)
    # the neck and hips are ignored: moving them changes nothing
    kp_moved = kp25.copy()
    kp_moved[:, [1, 9, 12], :2] += 40
    assert keypoints_to_smpl45(torch.tensor(kp_moved, dtype=f32)).equal(keypoints_to_smpl45(torch.tensor(kp25, dtype=f32)))


def truth(frames: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    pose = torch.zeros(frames, 72)
    pose[:, 0] = math.pi  # SPIN's convention: the body upright in the image (y down)
    base = torch.randn(69, generator=g) * 0.15
    # elbows and knees bent the way people bend them (the angle prior's side)
    base[[52, 55, 9, 12]] = torch.tensor([-1.2, 1.2, 0.8, 0.8])
    for i in range(frames):
        pose[i, 3:] = base + torch.randn(69, generator=g) * 0.02
    betas = torch.zeros(frames, 10)
    cam = torch.tensor([[0.8, 0.02 * i, 0.1] for i in range(frames)])
    return pose, betas, cam


def exact_keypoints(body, pose, betas, cam):
    """BODY_25 keypoints (256 crop pixels, conf 1) that are exact projections of the SMPLify joints."""
    joints = smplify_joints(body, betas, pose, vertex_joint_ids(body))
    uv = perspective_projection(joints, camera_translation(cam)) * 256 / 224
    kp = torch.zeros(pose.shape[0], 25, 3)
    for src, dst in BODY25_TO_SMPL45:
        kp[:, src, :2] = uv[:, dst]
        kp[:, src, 2] = 1.0
    return kp, joints


def reprojection_error(body, pose, betas, cam, kp):
    est, _ = exact_keypoints(body, pose, betas, cam)
    m = kp[..., 2] > 0
    return (est[..., :2] - kp[..., :2]).norm(dim=-1)[m].mean().item()


@pytest.fixture(scope="module")
def broad_prior():
    """A GMM around the zero pose, broad enough not to dominate the synthetic fit."""
    return MaxMixturePrior(make_gmm(seed=2, scale=1.0, mean_scale=0.05))


def test_fit_started_at_the_truth_stays_there(body, broad_prior):
    pose, betas, cam = truth(4)
    kp, joints = exact_keypoints(body, pose, betas, cam)
    # data + temporal terms alone: the truth is where the fit stays
    no_priors = SmplifyConfig(pose_prior_weight=0.0, angle_prior_weight=0.0, shape_prior_weight=0.0)
    p, b, _, _ = fit_batch(body, broad_prior, kp, cam, pose, betas, no_priors)
    assert reprojection_error(body, p, b, cam, kp) < 0.05  # crop pixels
    assert (exact_keypoints(body, p, b, cam)[1] - joints).norm(dim=-1).max().item() < 0.01  # metres
    # the authors' weights: the priors trade a little reprojection, the fit stays close
    out_pose, out_betas, before, after = fit_batch(body, broad_prior, kp, cam, pose, betas)
    assert after <= before
    assert reprojection_error(body, out_pose, out_betas, cam, kp) < 0.5


def test_fit_started_away_returns_towards_the_truth(body, broad_prior):
    pose, betas, cam = truth(4, seed=1)
    kp, joints = exact_keypoints(body, pose, betas, cam)
    g = torch.Generator().manual_seed(7)
    start_pose = pose.clone()
    start_pose[:, 3:] += torch.randn(4, 69, generator=g) * 0.2
    start_pose[:, :3] += torch.randn(4, 3, generator=g) * 0.05
    start_betas = torch.randn(4, 10, generator=g) * 0.5
    err0 = reprojection_error(body, start_pose, start_betas, cam, kp)
    out_pose, out_betas, before, after = fit_batch(body, broad_prior, kp, cam, start_pose, start_betas)
    err1 = reprojection_error(body, out_pose, out_betas, cam, kp)
    _, j0 = exact_keypoints(body, start_pose, start_betas, cam)
    _, j1 = exact_keypoints(body, out_pose, out_betas, cam)
    assert err0 > 3.0 and err1 < 0.3 * err0
    assert after < 0.5 * before
    assert (j1 - joints).norm(dim=-1).mean() < 0.5 * (j0 - joints).norm(dim=-1).mean()
    torch.testing.assert_close(cam, truth(4, seed=1)[2])  # the camera is never touched


def test_refine_solves_consecutive_batches_separately(body, broad_prior):
    pose, betas, cam = truth(5, seed=3)
    kp, _ = exact_keypoints(body, pose, betas, cam)
    g = torch.Generator().manual_seed(1)
    start = pose.clone()
    start[:, 3:] += torch.randn(5, 69, generator=g) * 0.1
    cfg = SmplifyConfig(batch_size=2)
    res = refine_smpl(body, broad_prior, kp, cam, start, betas, cfg)
    assert res.pose.shape == (5, 72) and res.betas.shape == (5, 10) and len(res.loss_before) == 3
    for sl in (slice(0, 2), slice(2, 4), slice(4, 5)):
        p, b, _, _ = fit_batch(body, broad_prior, kp[sl], cam[sl], start[sl], betas[sl], cfg)
        torch.testing.assert_close(res.pose[sl], p)
        torch.testing.assert_close(res.betas[sl], b)
    # one problem per batch: frames 0-1 solved together differ from frame 0 solved alone
    alone, _, _, _ = fit_batch(body, broad_prior, kp[:1], cam[:1], start[:1], betas[:1], cfg)
    assert not torch.allclose(alone, res.pose[:1], atol=1e-6)


def test_vertex_joints_use_the_authors_ids_on_an_smpl_mesh(body):
    ids = vertex_joint_ids(body)
    assert len(ids) == 21 and max(ids) < body.num_vertices  # synthetic mesh: nearest vertices
    from types import SimpleNamespace

    smpl_like = SimpleNamespace(num_vertices=6890)
    assert vertex_joint_ids(smpl_like)[:5] == (332, 6260, 2800, 4071, 583)
    assert vertex_joint_ids(smpl_like)[-1] == 6133
