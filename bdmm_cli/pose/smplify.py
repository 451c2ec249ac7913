"""SMPLify as the authors ran it (``docs/smplify.md``): SPIN's SMPL refined to the keypoints.

What runs (their ``SMPLifyRunner`` with the defaults of their preprocessing):

- batches of 64 consecutive frames with a person (gaps in the numbering bridged, the
  last batch the remainder), each ONE optimisation problem: one ``torch.optim.LBFGS``
  over body pose (B, 69), betas (B, 10) and global orientation (B, 3), in that order;
  lr 1.0, max_iter 20, strong-Wolfe line search, other settings torch's defaults;
  ``step`` called once. The camera is fixed.
- keypoints: the 25 BODY_25 keypoints of the 256 crop, scaled by 224/256 into a virtual
  224x224 image, scattered into the 45 SMPL joint slots (:data:`BODY25_TO_SMPL45`, 22
  joints; Neck and both hips ignored), confidences unchanged.
- joints: the 24 posed SMPL joints + 21 joints taken from mesh vertices (nose, eyes, ears,
  toes, heels, fingertips; :data:`SMPL_VERTEX_JOINTS`).
- camera: the 256-frame camera ``[s, tx, ty]`` as the fixed translation
  ``t = (tx, ty, 2 * 5000 / (224 s + 1e-9))``, focal 5000, principal point (112, 112):
  ``u = 5000 (X + tx) / (Z + tz) + 112`` (likewise v).
- objective, summed over the frames of the batch (:func:`smplify_loss`):

      10 * sum_j c^2 [rho(du) + rho(dv)]              rho(r) = s^2 r^2 / (s^2 + r^2), s = 100
    + 4.78^2 * GMM prior(body pose)                    (:class:`bdmm_cli.pose.gmm.MaxMixturePrior`)
    + 15.2^2 * sum exp(2 s_i theta_i)                  elbows (y), knees (x), signs +, -, -, -
    + 5^2 * |beta|^2
    + 0.01^2 * sum_j c_i^2 |p_i - p_{i-1}|_1           (frames i >= 1 of the batch, 2D)
    + 1.0^2 * sum_j c_i^2 |J_i - J_{i-1}|_1            (3D joints, no camera)

  with c the later frame's confidence. Everything in float32.

A mesh without SMPL's 6890 vertices (the synthetic test body) takes each vertex joint from
the vertex nearest, in the rest pose, to the SMPL joint it belongs to
(:func:`vertex_joint_ids`); a real SMPL mesh always uses the authors' vertex ids.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

SMPL_NUM_VERTICES = 6890
NUM_SMPLIFY_JOINTS = 45

#: (BODY_25 index, SMPL-45 slot) of the 22 keypoints SMPLify fits (docs/smplify.md sec. 2).
BODY25_TO_SMPL45 = (
    (8, 0), (13, 4), (10, 5), (14, 7), (11, 8), (5, 16), (2, 17), (6, 18), (3, 19), (7, 20), (4, 21),
    (0, 24), (15, 25), (16, 26), (17, 27), (18, 28), (19, 29), (20, 30), (21, 31), (22, 32), (23, 33), (24, 34),
)

#: SMPL-45 slots 24..44: (name, SMPL vertex id, SMPL joint it sits on).
SMPL_VERTEX_JOINTS = (
    ("nose", 332, 15), ("reye", 6260, 15), ("leye", 2800, 15), ("rear", 4071, 15), ("lear", 583, 15),
    ("LBigToe", 3216, 10), ("LSmallToe", 3226, 10), ("LHeel", 3387, 7),
    ("RBigToe", 6617, 11), ("RSmallToe", 6624, 11), ("RHeel", 6787, 8),
    ("lthumb", 2746, 22), ("lindex", 2319, 22), ("lmiddle", 2445, 22), ("lring", 2556, 22), ("lpinky", 2673, 22),
    ("rthumb", 6191, 23), ("rindex", 5782, 23), ("rmiddle", 5905, 23), ("rring", 6016, 23), ("rpinky", 6133, 23),
)

#: Body-pose (69-D) indices and signs of the angle prior: left elbow y, right elbow y, left knee x, right knee x.
ANGLE_PRIOR_INDICES = (52, 55, 9, 12)
ANGLE_PRIOR_SIGNS = (1.0, -1.0, -1.0, -1.0)


@dataclass(frozen=True)
class SmplifyConfig:
    """The authors' SMPLify settings (``docs/smplify.md`` sections 4-5).

    The prior weights are given unsquared, as in their configuration; the loss squares
    them (the data weight is not squared).
    """

    batch_size: int = 64
    max_iter: int = 20
    lr: float = 1.0
    focal_length: float = 5000.0
    image_size: int = 224          # SMPLify's virtual image
    crop_size: int = 256           # the keypoints' frame
    sigma: float = 100.0           # robustifier, 224-pixel units
    data_weight: float = 10.0
    pose_prior_weight: float = 4.78
    angle_prior_weight: float = 15.2
    shape_prior_weight: float = 5.0
    temporal_2d_weight: float = 0.01
    temporal_3d_weight: float = 1.0
    temporal: bool = True

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.max_iter < 1:
            raise ValueError("batch_size and max_iter must be >= 1")


@dataclass(frozen=True)
class SmplifyResult:
    """Refined SMPL of a sequence of frames.

    Attributes:
        pose: (N, 72) axis-angle, global orientation first (float32, detached).
        betas: (N, 10).
        loss_before, loss_after: (num_batches,) objective of each batch at the start and end.
    """

    pose: Tensor
    betas: Tensor
    loss_before: Tensor
    loss_after: Tensor


def vertex_joint_ids(body_model) -> tuple[int, ...]:
    """The 21 vertex ids of the SMPL-45 slots 24..44 for this mesh (module docstring)."""
    if body_model.num_vertices == SMPL_NUM_VERTICES:
        return tuple(v for _, v, _ in SMPL_VERTEX_JOINTS)
    with torch.no_grad():
        rest = body_model.v_template.double()
        joints = body_model.J_regressor.double() @ rest
        return tuple(int((rest - joints[j]).norm(dim=1).argmin()) for _, _, j in SMPL_VERTEX_JOINTS)


def smplify_joints(body_model, betas: Tensor, pose: Tensor, vertex_ids: tuple[int, ...]) -> Tensor:
    """(B, 45, 3) SMPLify joints: 24 posed SMPL joints, then the 21 vertex joints."""
    verts, joints = body_model.forward_with_joints(betas, pose)
    return torch.cat([joints, verts[:, list(vertex_ids)]], dim=1)


def keypoints_to_smpl45(keypoints: Tensor, config: SmplifyConfig = SmplifyConfig()) -> Tensor:
    """(B, 25, 3) BODY_25 in crop pixels -> (B, 45, 3) in SMPLify's 224 units; unused slots 0."""
    kp = keypoints.float()
    out = torch.zeros(kp.shape[0], NUM_SMPLIFY_JOINTS, 3, dtype=kp.dtype, device=kp.device)
    src = torch.tensor([b for b, _ in BODY25_TO_SMPL45], device=kp.device)
    dst = torch.tensor([s for _, s in BODY25_TO_SMPL45], device=kp.device)
    scale = config.image_size / config.crop_size
    out[:, dst, :2] = kp[:, src, :2] * scale
    out[:, dst, 2] = kp[:, src, 2]
    return out


def camera_translation(cam: Tensor, config: SmplifyConfig = SmplifyConfig()) -> Tensor:
    """(B, 3) 256-frame cameras [s, tx, ty] -> SMPLify's fixed translations (tx, ty, 2 f / (224 s + 1e-9))."""
    s, t = cam[:, 0], cam[:, 1:3]
    tz = 2.0 * config.focal_length / (config.image_size * s + 1e-9)
    return torch.cat([t, tz[:, None]], dim=1)


def perspective_projection(joints: Tensor, translation: Tensor, config: SmplifyConfig = SmplifyConfig()) -> Tensor:
    """(B, J, 3) joints, (B, 3) translation -> (B, J, 2) in 224 units (rotation identity)."""
    p = joints + translation[:, None, :]
    centre = config.image_size / 2.0
    return config.focal_length * p[..., :2] / p[..., 2:3] + centre


def smplify_loss(joints: Tensor, body_pose: Tensor, betas: Tensor, translation: Tensor, keypoints45: Tensor,
                 prior, config: SmplifyConfig = SmplifyConfig()) -> Tensor:
    """The authors' objective of one batch (module docstring), a scalar.

    Args:
        joints: (B, 45, 3) model joints; body_pose: (B, 69); betas: (B, 10);
        translation: (B, 3) fixed; keypoints45: (B, 45, 3) in 224 units (x, y, conf);
        prior: a callable (B, 69) -> (B,) (the GMM prior).
    """
    proj = perspective_projection(joints, translation, config)
    conf2 = keypoints45[..., 2] ** 2
    s2 = config.sigma ** 2
    res2 = (proj - keypoints45[..., :2]) ** 2
    rho = s2 * res2 / (s2 + res2)
    data = (conf2 * rho.sum(-1)).sum(-1)
    pose_prior = prior(body_pose)
    signs = torch.tensor(ANGLE_PRIOR_SIGNS, dtype=body_pose.dtype, device=body_pose.device)
    angle = torch.exp(2.0 * body_pose[:, list(ANGLE_PRIOR_INDICES)] * signs).sum(-1)
    shape = (betas ** 2).sum(-1)
    total = (config.data_weight * data + config.pose_prior_weight ** 2 * pose_prior
             + config.angle_prior_weight ** 2 * angle + config.shape_prior_weight ** 2 * shape)
    loss = total.sum()
    if config.temporal and joints.shape[0] > 1:
        c2 = conf2[1:]
        s2d = (c2 * (proj[1:] - proj[:-1]).abs().sum(-1)).sum()
        s3d = (c2 * (joints[1:] - joints[:-1]).abs().sum(-1)).sum()
        loss = loss + config.temporal_2d_weight ** 2 * s2d + config.temporal_3d_weight ** 2 * s3d
    return loss


def fit_batch(body_model, prior, keypoints: Tensor, cam: Tensor, pose: Tensor, betas: Tensor,
              config: SmplifyConfig = SmplifyConfig(),
              vertex_ids: tuple[int, ...] | None = None) -> tuple[Tensor, Tensor, float, float]:
    """One batch as one problem: one L-BFGS step over (body pose, betas, global orientation).

    Args:
        keypoints: (B, 25, 3) BODY_25 in crop pixels; cam: (B, 3) 256-frame cameras (fixed);
        pose: (B, 72), betas: (B, 10) SPIN's estimate.
    Returns:
        (pose (B, 72), betas (B, 10), loss before, loss after), float32, detached.
    """
    ids = vertex_joint_ids(body_model) if vertex_ids is None else vertex_ids
    dev = body_model.v_template.device
    kp45 = keypoints_to_smpl45(keypoints.detach().to(dev), config)
    trans = camera_translation(cam.detach().float().to(dev), config)
    pose = torch.nan_to_num(pose.detach().float().to(dev), nan=0.0)
    body_pose = pose[:, 3:].clone().requires_grad_(True)
    global_orient = pose[:, :3].clone().requires_grad_(True)
    opt_betas = betas.detach().float().to(dev).clone().requires_grad_(True)
    optimizer = torch.optim.LBFGS([body_pose, opt_betas, global_orient], lr=config.lr, max_iter=config.max_iter,
                                  line_search_fn="strong_wolfe")

    def objective() -> Tensor:
        joints = smplify_joints(body_model, opt_betas, torch.cat([global_orient, body_pose], dim=1), ids)
        return smplify_loss(joints, body_pose, opt_betas, trans, kp45, prior, config)

    def closure() -> Tensor:
        optimizer.zero_grad()
        loss = objective()
        loss.backward()
        return loss

    with torch.enable_grad():
        before = float(optimizer.step(closure).detach())  # L-BFGS returns its first evaluation
        with torch.no_grad():
            after = float(objective())
    out_pose = torch.cat([global_orient, body_pose], dim=1).detach()
    return out_pose, opt_betas.detach(), before, after


def refine_smpl(body_model, prior, keypoints: Tensor, cam: Tensor, pose: Tensor, betas: Tensor,
                config: SmplifyConfig = SmplifyConfig()) -> SmplifyResult:
    """Refine a sequence of frames (those with a person, in order) batch by batch.

    Consecutive runs of ``config.batch_size`` (64) frames are solved together, the last
    batch holds the remainder; nothing is shared across batches.

    Args:
        body_model: :class:`bdmm_cli.body.BodyModel`; prior: :class:`bdmm_cli.pose.gmm.MaxMixturePrior`.
        keypoints: (N, 25, 3) BODY_25 in pixels of the 256 crop; cam: (N, 3) fixed cameras;
        pose: (N, 72), betas: (N, 10) initial SMPL (SPIN's).
    """
    ids = vertex_joint_ids(body_model)
    poses, shapes, before, after = [], [], [], []
    for start in range(0, keypoints.shape[0], config.batch_size):
        sl = slice(start, start + config.batch_size)
        p, b, l0, l1 = fit_batch(body_model, prior, keypoints[sl], cam[sl], pose[sl], betas[sl], config, ids)
        poses.append(p)
        shapes.append(b)
        before.append(l0)
        after.append(l1)
    if not poses:
        return SmplifyResult(pose.detach().float(), betas.detach().float(), torch.zeros(0), torch.zeros(0))
    return SmplifyResult(torch.cat(poses), torch.cat(shapes), torch.tensor(before), torch.tensor(after))


REFINE_CHOICES = ("auto", "on", "off")


@dataclass(frozen=True)
class Refinement:
    """What ``resolve_refinement`` decided, with what it needs.

    Attributes:
        refine: run SMPLify; head_filter: apply the authors' head-size rule.
        body_model: the installed body model (when either needs it), else None.
        prior: the GMM prior (when refining), else None.
        notes: one-line explanations of what was skipped and why (for stderr).
    """

    refine: bool
    head_filter: bool
    body_model: object | None
    prior: object | None
    notes: tuple[str, ...] = ()


def resolve_refinement(refine: str = "auto", head_filter: bool | None = None,
                       device: str | torch.device = "cpu") -> Refinement:
    """Decide SMPLify and the head-size filter from what is installed.

    Args:
        refine: "auto" (refine when the GMM prior and the SMPL model are installed), "on"
            (both required) or "off".
        head_filter: None (on when the SMPL model is installed), True (required) or False.
    Raises:
        InputError: an unknown `refine` value. MissingResourceError: "on" / True without
            what it needs, naming the file and how to install it.
    """
    from bdmm_cli.body import load_body_model
    from bdmm_cli.body.body_model import installed_model_path
    from bdmm_cli.errors import InputError, MissingResourceError
    from bdmm_cli.pose.gmm import MISSING_GMM_MESSAGE, find_gmm_prior, load_gmm_prior

    if refine not in REFINE_CHOICES:
        raise InputError(f"--refine must be one of {', '.join(REFINE_CHOICES)}, got {refine!r}")
    notes: list[str] = []
    have_body = installed_model_path().is_file()
    gmm_path = find_gmm_prior() if refine != "off" else None
    if refine == "on" and gmm_path is None:
        raise MissingResourceError(f"--refine on: {MISSING_GMM_MESSAGE}")
    do_refine = refine == "on" or (refine == "auto" and gmm_path is not None and have_body)
    if refine == "auto" and gmm_path is not None and not have_body:
        notes.append("SMPLify refinement skipped: no SMPL model installed (`bdmm setup` or `bdmm body install`)")
    do_head = bool(head_filter) if head_filter is not None else have_body  # silently off without SMPL
    body_model = None
    if do_refine or do_head:
        try:
            body_model = load_body_model(None, device)
        except MissingResourceError as exc:
            what = "--refine on" if do_refine else "--head-filter"
            raise MissingResourceError(f"{what}: {exc}") from None
    prior = load_gmm_prior(gmm_path, device) if do_refine else None
    return Refinement(do_refine, do_head, body_model, prior, tuple(notes))


__all__ = [
    "REFINE_CHOICES",
    "Refinement",
    "resolve_refinement",
    "ANGLE_PRIOR_INDICES",
    "ANGLE_PRIOR_SIGNS",
    "BODY25_TO_SMPL45",
    "SMPL_VERTEX_JOINTS",
    "SmplifyConfig",
    "SmplifyResult",
    "camera_translation",
    "fit_batch",
    "keypoints_to_smpl45",
    "perspective_projection",
    "refine_smpl",
    "smplify_joints",
    "smplify_loss",
    "vertex_joint_ids",
]
