"""SPIN's HMR regressor: ResNet-50 features + iterative error feedback -> SMPL and camera.

Layer names are exactly SPIN's (``nkolot/SPIN`` ``models/hmr.py``), so both official
checkpoints load with a strict key check:

- ``conv1.*``, ``bn1.*``, ``layer1.*`` .. ``layer4.*``: the ResNet-50 trunk
  (torchvision's ``resnet50(weights=None)``, whose Bottleneck puts the stride on
  ``conv2`` exactly like SPIN's; its ``fc`` head is dropped);
- ``fc1``, ``fc2`` (with dropout), ``decpose`` (144), ``decshape`` (10), ``deccam`` (3);
- buffers ``init_pose`` (1, 144) in 6D, ``init_shape`` (1, 10), ``init_cam`` (1, 3): the
  mean parameters of ``smpl_mean_params.npz``.

The regressor (``docs/data_path.md`` section 6)::

    theta_0 = (init_pose, init_shape, init_cam)
    theta_{k+1} = theta_k + dec(drop(fc2(drop(fc1([f, theta_k])))))     k = 0, 1, 2
    R = GramSchmidt(pose_6d.view(-1, 3, 2));  pose_aa = axis_angle(R) (NaN -> 0)

Checkpoints: SPIN's ``model_checkpoint.pt`` is a dict holding the state dict under
``"model"`` (plus ``optimizer``, ``epoch``, ...); BDMM's ``spin_ckpt.pth`` is the flat state
dict. :func:`load_pose_regressor` (the one SPIN loader: registry name, folder or file) and
:func:`load_spin_state_dict` accept both (and a ``module.`` prefix) and raise
:class:`~bdmm_cli.errors.CheckpointError` naming missing, unexpected or misshaped keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch import Tensor, nn

from bdmm_cli.errors import CheckpointError, InputError, MissingResourceError
from bdmm_cli.hub.resolve import resolve_weights
from bdmm_cli.pose.rotations import rot6d_to_rotmat, rotmat_to_axis_angle
from bdmm_cli.state_dict import check_weights, flatten_state_dict, load_strict, read_checkpoint_file

NUM_JOINTS = 24
NPOSE = NUM_JOINTS * 6
FEATURE_DIM = 2048
IMG_RES = 224


@dataclass(frozen=True)
class HMROutput:
    """What the regressor predicts for a batch of B crops.

    Attributes:
        pose_6d: (B, 144) 6D rotations of the 24 joints (the IEF state).
        rotmat: (B, 24, 3, 3) rotation matrices from Gram-Schmidt.
        pose: (B, 72) axis-angle, global orientation first (NaN -> 0).
        betas: (B, 10) SMPL shape.
        cam: (B, 3) weak-perspective camera [s, tx, ty] of SPIN's 224x224 crop.
    """

    pose_6d: Tensor
    rotmat: Tensor
    pose: Tensor
    betas: Tensor
    cam: Tensor

    @property
    def smpl(self) -> Tensor:
        """(B, 85) ``[cam | pose | betas]``, what SPIN's ``forward`` returns in BDMM."""
        return torch.cat([self.cam, self.pose, self.betas], dim=1)


def read_smpl_mean_params(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SPIN's ``smpl_mean_params.npz`` read without pickle: (pose (1, 144) 6D, shape (1, 10),
    cam (1, 3)) float32; InputError naming the file when it is not that."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            pose, shape, cam = (np.asarray(data[k], dtype=np.float32).reshape(1, -1) for k in ("pose", "shape", "cam"))
    except (OSError, KeyError, ValueError) as exc:
        raise InputError(f"cannot read SMPL mean parameters {path}: expected an .npz with pose, shape, cam") from exc
    if pose.shape != (1, NPOSE) or shape.shape != (1, 10) or cam.shape != (1, 3):
        raise InputError(f"SMPL mean parameters {path} have shapes {pose.shape}, {shape.shape}, {cam.shape}")
    return pose, shape, cam


class HMR(nn.Module):
    """SPIN's HMR: ResNet-50 trunk + 3-iteration IEF regressor (key names as SPIN).

    Args:
        mean_params: optional path of ``smpl_mean_params.npz`` (keys ``pose`` (144),
            ``shape`` (10), ``cam`` (3)) to fill the ``init_*`` buffers; a checkpoint
            overwrites them anyway, since SPIN stores them in its state dict.
        n_iter: IEF iterations (3 in SPIN).
    """

    def __init__(self, mean_params: str | Path | None = None, n_iter: int = 3) -> None:
        super().__init__()
        from torchvision.models import resnet50

        trunk = resnet50(weights=None)
        self.conv1 = trunk.conv1
        self.bn1 = trunk.bn1
        self.relu = trunk.relu
        self.maxpool = trunk.maxpool
        self.layer1 = trunk.layer1
        self.layer2 = trunk.layer2
        self.layer3 = trunk.layer3
        self.layer4 = trunk.layer4
        self.avgpool = nn.AdaptiveAvgPool2d(1)  # == SPIN's AvgPool2d(7) on 224x224 input
        self.n_iter = int(n_iter)

        self.fc1 = nn.Linear(FEATURE_DIM + NPOSE + 13, 1024)
        self.drop1 = nn.Dropout()
        self.fc2 = nn.Linear(1024, 1024)
        self.drop2 = nn.Dropout()
        self.decpose = nn.Linear(1024, NPOSE)
        self.decshape = nn.Linear(1024, 10)
        self.deccam = nn.Linear(1024, 3)
        for layer in (self.decpose, self.decshape, self.deccam):
            nn.init.xavier_uniform_(layer.weight, gain=0.01)

        self.register_buffer("init_pose", torch.zeros(1, NPOSE))
        self.register_buffer("init_shape", torch.zeros(1, 10))
        self.register_buffer("init_cam", torch.zeros(1, 3))
        if mean_params is not None:
            self.load_mean_params(mean_params)

    def load_mean_params(self, path: str | Path) -> None:
        """Fill ``init_pose``/``init_shape``/``init_cam`` from ``smpl_mean_params.npz``."""
        pose, shape, cam = read_smpl_mean_params(path)
        self.init_pose.copy_(torch.from_numpy(pose))
        self.init_shape.copy_(torch.from_numpy(shape))
        self.init_cam.copy_(torch.from_numpy(cam))

    def features(self, x: Tensor) -> Tensor:
        """(B, 3, 224, 224) normalised RGB -> (B, 2048) pooled ResNet-50 features."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.avgpool(x).flatten(1)

    def forward(self, x: Tensor) -> HMROutput:
        """Regress SMPL for a batch of SPIN crops.

        Args:
            x: (B, 3, 224, 224) RGB in [0, 1] normalised with the ImageNet mean/std.
        Returns:
            HMROutput with pose (B, 72), betas (B, 10), cam (B, 3) in SPIN's crop frame.
        """
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected (B, 3, H, W) images, got {tuple(x.shape)}")
        b = x.shape[0]
        feat = self.features(x)
        pose = self.init_pose.expand(b, -1)
        shape = self.init_shape.expand(b, -1)
        cam = self.init_cam.expand(b, -1)
        for _ in range(self.n_iter):
            h = self.drop1(self.fc1(torch.cat([feat, pose, shape, cam], dim=1)))
            h = self.drop2(self.fc2(h))
            pose = self.decpose(h) + pose
            shape = self.decshape(h) + shape
            cam = self.deccam(h) + cam
        rotmat = rot6d_to_rotmat(pose).view(b, NUM_JOINTS, 3, 3)
        aa = rotmat_to_axis_angle(rotmat).reshape(b, NUM_JOINTS * 3)
        return HMROutput(pose_6d=pose, rotmat=rotmat, pose=aa, betas=shape, cam=cam)


def _meta_hmr() -> HMR:
    with torch.device("meta"):
        return HMR()


def spin_expected_shapes() -> dict[str, tuple[int, ...]]:
    """Every key of SPIN's HMR state dict and its shape, read off the network built on the
    meta device (nothing allocated): the ResNet-50 trunk under torchvision's names, the
    regressor (fc1, fc2, decpose, decshape, deccam) and the init_* mean-parameter buffers."""
    return {k: tuple(v.shape) for k, v in _meta_hmr().state_dict().items()}


def spin_state_dict_keys() -> list[str]:
    """The exact state-dict keys of SPIN's HMR (what a checkpoint must hold)."""
    return list(spin_expected_shapes())


def extract_spin_state_dict(checkpoint: Mapping[str, Any]) -> dict[str, Tensor]:
    """The HMR state dict inside a SPIN checkpoint of either layout.

    ``model_checkpoint.pt`` (a dict with ``"model"``) or ``spin_ckpt.pth`` (flat); a
    ``module.`` prefix (DataParallel) is removed (``state_dict.flatten_state_dict``).
    """
    return flatten_state_dict(checkpoint, "SPIN checkpoint")


def _with_counters(sd: Mapping[str, Tensor], expected: Mapping[str, Any]) -> dict[str, Tensor]:
    # BatchNorm counters only matter for training; checkpoints saved before PyTorch 0.4.1 lack them.
    out = dict(sd)
    for k in expected:
        if k.endswith("num_batches_tracked") and k not in out:
            out[k] = torch.zeros((), dtype=torch.long)
    return out


def check_spin_state_dict(sd: Mapping[str, Tensor], source: str = "checkpoint") -> dict[str, Tensor]:
    """Strict key/shape check of a SPIN state dict against HMR built on the meta device;
    returns it with BatchNorm's ``num_batches_tracked`` counters added where an old
    checkpoint lacks them. CheckpointError naming missing / unexpected / misshaped keys."""
    meta = _meta_hmr()
    out = _with_counters(sd, meta.state_dict())
    check_weights(out, meta, f"{source} does not fit a SPIN/HMR regressor")
    return out


def check_spin_checkpoint(ckpt, kind: str = "spin", source: str = "checkpoint"):
    """`ckpt` (a `state_dict.Checkpoint`) checked as a SPIN regressor (:func:`check_spin_state_dict`);
    the checker of kind "spin" in the table of kinds (`bdmm_cli.kinds`)."""
    from bdmm_cli.state_dict import Checkpoint

    return Checkpoint(check_spin_state_dict(ckpt.state_dict, source), kind, {}, ckpt.provenance)


def load_spin_state_dict(module: HMR, checkpoint: Mapping[str, Any]) -> HMR:
    """Load SPIN weights into `module` with a strict key and shape check (once).

    Args:
        module: an :class:`HMR` (on a real device, or on the meta device: it is then
            materialised on the CPU without random initialisation).
        checkpoint: SPIN's ``model_checkpoint.pt`` dict (state dict under ``"model"``),
            BDMM's flat ``spin_ckpt.pth`` state dict, or our safetensors' state dict.
    Returns:
        the loaded module.
    Raises:
        CheckpointError: naming the missing, unexpected or misshaped keys.
    """
    sd = _with_counters(extract_spin_state_dict(checkpoint), module.state_dict())
    return load_strict(module, sd, "not a SPIN HMR checkpoint")


def load_pose_regressor(name_or_path: str | Path = "spin", device: str | torch.device = "cpu") -> HMR:
    """SPIN's HMR regressor: the one SPIN loader.

    `name_or_path`: a registry name ("spin", "spin-original": what `bdmm setup` installed,
    else the verified download), one of our folders / ``.safetensors`` files, SPIN's
    ``model_checkpoint.pt`` or BDMM's ``spin_ckpt.pth`` (``hub.resolve_weights`` decides
    which, with its one path rule). The file is read once (``weights_only=True`` or
    safetensors), checked against HMR built on the meta device and loaded strictly.
    Eval mode, on `device`.
    """
    try:
        path = resolve_weights(name_or_path, "spin")
    except MissingResourceError as exc:
        raise MissingResourceError(
            f"SPIN weights '{name_or_path}' are missing: {exc}; run `bdmm setup --accept-licenses`, or pass "
            "--spin PATH to SPIN's model_checkpoint.pt (https://visiondata.cis.upenn.edu/spin/model_checkpoint.pt) "
            "or BDMM's spin_ckpt.pth"
        ) from None
    ckpt = read_checkpoint_file(path)
    if ckpt.kind not in ("", "spin"):
        raise CheckpointError(f"{path} is not a SPIN/HMR regressor checkpoint: it holds a {ckpt.kind.replace('_', ' ')}")
    module = load_spin_state_dict(_meta_hmr(), ckpt.state_dict)
    return module.to(device).eval()


def load_hmr(path: str | Path, device: str | torch.device = "cpu") -> HMR:
    """:func:`load_pose_regressor` for a local SPIN checkpoint (either layout, or safetensors)."""
    return load_pose_regressor(path, device)


__all__ = [
    "HMR",
    "HMROutput",
    "IMG_RES",
    "check_spin_state_dict",
    "extract_spin_state_dict",
    "load_hmr",
    "load_pose_regressor",
    "load_spin_state_dict",
    "read_smpl_mean_params",
    "spin_expected_shapes",
    "spin_state_dict_keys",
]
