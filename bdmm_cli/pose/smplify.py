"""Optional SMPLify-style refinement of SPIN's SMPL to the 2D keypoints (camera fixed).

What it does (a basic version of the authors' step 4, ``official_data_path.md`` sec. 5):
one L-BFGS step (max_iter 20, lr 1.0, strong Wolfe line search, as the authors) over the
72 pose and 10 shape parameters of each frame, the camera held fixed, minimising

    sum_j conf_j^2 * rho(|proj(J_j(theta, beta)) - k_j|)        (Geman-McClure, sigma 100 px)
    + w_pose  * |theta - theta_SPIN|^2 + w_shape * |beta|^2

where J are the SMPL joints of the body model (its posed joints), projected with the
frame's weak-perspective camera into the 256 crop, and k the BODY_25 keypoints of the 11
joints SMPL shares with OpenPose (neck, shoulders, elbows, wrists, knees, ankles; the
hips are left out because SMPL's and OpenPose's hip joints differ). Differences from
the authors: no GMM pose prior (``gmm_08.pkl`` is not redistributable with this tool; the
quadratic pull towards SPIN's estimate stands in), no temporal term, per frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from bdmm_cli.pose.spin_crop import project_pixels

#: (BODY_25 index, SMPL joint index) pairs used by the data term.
BODY25_SMPL_PAIRS = (
    (1, 12), (2, 17), (3, 19), (4, 21), (5, 16), (6, 18), (7, 20), (10, 5), (11, 8), (13, 4), (14, 7),
)


@dataclass(frozen=True)
class SmplifyConfig:
    max_iter: int = 20
    lr: float = 1.0
    sigma: float = 100.0
    pose_weight: float = 1000.0
    shape_weight: float = 5.0
    frame_size: int = 256


def gmof(residual_sq: Tensor, sigma: float) -> Tensor:
    """Geman-McClure: sigma^2 r^2 / (sigma^2 + r^2)."""
    s2 = sigma * sigma
    return s2 * residual_sq / (s2 + residual_sq)


def refine_smpl(
    body_model,
    keypoints: Tensor,
    cam: Tensor,
    pose: Tensor,
    betas: Tensor,
    config: SmplifyConfig = SmplifyConfig(),
) -> tuple[Tensor, Tensor]:
    """Refine SMPL to 2D keypoints with the camera fixed.

    Args:
        body_model: a :class:`bdmm_cli.body.BodyModel` (``forward_with_joints``).
        keypoints: (B, 25, 3) BODY_25 ``x, y, conf`` in pixels of the 256 crop.
        cam: (B, 3) cameras of the 256 frame (fixed).
        pose: (B, 72), betas: (B, 10) initial SMPL (SPIN's).
    Returns:
        (pose (B, 72), betas (B, 10)) refined, detached, float32.
    """
    b25 = torch.tensor([p[0] for p in BODY25_SMPL_PAIRS])
    smpl_j = torch.tensor([p[1] for p in BODY25_SMPL_PAIRS])
    target = keypoints[:, b25, :2].detach().float()
    conf = keypoints[:, b25, 2].detach().float()
    cam = cam.detach().float()
    pose0 = pose.detach().float()
    opt_pose = pose0.clone().requires_grad_(True)
    opt_betas = betas.detach().float().clone().requires_grad_(True)
    optimizer = torch.optim.LBFGS(
        [opt_pose, opt_betas], lr=config.lr, max_iter=config.max_iter, line_search_fn="strong_wolfe"
    )

    def closure() -> Tensor:
        optimizer.zero_grad()
        _, joints = body_model.forward_with_joints(opt_betas, opt_pose)
        px = project_pixels(joints[:, smpl_j].float(), cam, config.frame_size)
        res = ((px - target) ** 2).sum(-1)
        data = (conf**2 * gmof(res, config.sigma)).sum()
        prior = config.pose_weight * ((opt_pose - pose0) ** 2).sum() + config.shape_weight * (opt_betas**2).sum()
        loss = data + prior
        loss.backward()
        return loss

    if bool((conf > 0).any()):
        optimizer.step(closure)
    return opt_pose.detach(), opt_betas.detach()


__all__ = ["BODY25_SMPL_PAIRS", "SmplifyConfig", "refine_smpl"]
