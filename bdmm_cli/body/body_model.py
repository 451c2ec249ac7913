"""The SMPL body model: (betas, pose) -> vertices, through `smplx.lbs.lbs`.

The official forward (`docs/data_path.md`, section 2): Rodrigues with
|theta + 1e-8| as the angle, pose blend shapes from (R - I) of the 23 non-root joints,
joints regressed from the shaped template, no translation, vertices in model
coordinates. `smplx.lbs.lbs` computes exactly this (its `batch_rodrigues` uses
``norm(rot_vecs + 1e-8)``, its pose feature is ``rot_mats[:, 1:] - I``, and `lbs` itself
adds no translation); `tests/test_body_model.py` checks it against
:func:`reference_forward`, a direct float64 implementation of section 2 in the HMR form
(quaternion Rodrigues, global rigid transforms), to 1e-5.

The model file is read by :mod:`bdmm_cli.body.smpl_file`; `bdmm body install PATH`
converts a user's SMPL file once into ``data_dir()/body/smpl.npz``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from bdmm_cli.body.smpl_file import NUM_BETAS, NUM_JOINTS, read_smpl_file, save_model_npz
from bdmm_cli.errors import InputError, MissingResourceError
from bdmm_cli.fileio import install_converted
from bdmm_cli.paths import data_dir

__all__ = [
    "BODY25_FROM_SMPL",
    "BodyModel",
    "load_body_model",
    "installed_model_path",
    "install_body_model",
    "reference_forward",
    "MISSING_MODEL_MESSAGE",
]

MISSING_MODEL_MESSAGE = (
    "no SMPL model installed: download SMPL (https://smpl.is.tue.mpg.de) and run `bdmm body install PATH`"
)


#: Vertex count of SMPL (and SMPL-H's body), the meshes smplx's ``vertex_ids["smplh"]`` index.
SMPL_NUM_VERTICES = 6890

#: BODY_25 (OpenPose order) from the SMPL body, the mapping SPIN uses: per BODY_25 joint,
#: (name, SMPL joint index or the name of a surface vertex in smplx's ``vertex_ids["smplh"]``
#: table, the SMPL joint used instead of that vertex on a mesh without SMPL's 6890 vertices).
#: The fallback puts nose, eyes and ears on the head joint, toes on the foot joints and
#: heels on the ankles: BODY_25 points that exist on any SMPL-format body (the synthetic test
#: body has the SMPL skeleton but its own mesh).
BODY25_FROM_SMPL: tuple[tuple[str, int | str, int], ...] = (
    ("Nose", "nose", 15), ("Neck", 12, 12), ("RShoulder", 17, 17), ("RElbow", 19, 19),
    ("RWrist", 21, 21), ("LShoulder", 16, 16), ("LElbow", 18, 18), ("LWrist", 20, 20),
    ("MidHip", 0, 0), ("RHip", 2, 2), ("RKnee", 5, 5), ("RAnkle", 8, 8), ("LHip", 1, 1),
    ("LKnee", 4, 4), ("LAnkle", 7, 7), ("REye", "reye", 15), ("LEye", "leye", 15),
    ("REar", "rear", 15), ("LEar", "lear", 15), ("LBigToe", "LBigToe", 10),
    ("LSmallToe", "LSmallToe", 10), ("LHeel", "LHeel", 7), ("RBigToe", "RBigToe", 11),
    ("RSmallToe", "RSmallToe", 11), ("RHeel", "RHeel", 8),
)


def installed_model_path() -> Path:
    """Where `bdmm body install` puts the converted model."""
    return data_dir() / "body" / "smpl.npz"


class BodyModel(nn.Module):
    """SMPL-format linear blend skinning model.

    Buffers: v_template (V, 3), shapedirs (V, 3, 10), posedirs (207, 3V),
    J_regressor (24, V), lbs_weights (V, 24), parents (24,), faces (F, 3) int64, and
    cocoplus_regressor (19, V) when the file has one (else None).
    Attribute `kind` is "smpl" for a real model and "synthetic" for the generated one.
    """

    def __init__(self, model: dict[str, np.ndarray], dtype: torch.dtype = torch.float32, kind: str | None = None):
        super().__init__()

        def buf(name: str, value: np.ndarray, dt=dtype) -> None:
            self.register_buffer(name, torch.as_tensor(np.asarray(value), dtype=dt), persistent=False)

        nv = model["v_template"].shape[0]
        buf("v_template", model["v_template"])
        buf("shapedirs", model["shapedirs"])
        buf("posedirs", np.reshape(model["posedirs"], (nv * 3, -1)).T)
        buf("J_regressor", model["J_regressor"])
        buf("lbs_weights", model["weights"])
        parents = np.asarray(model["kintree_table"][0], dtype=np.int64).copy()
        parents[0] = -1
        buf("parents", parents, torch.int64)
        faces = np.asarray(model["f"])
        if faces.size and (faces.min() < 0 or faces.max() >= nv):  # checked here, on the CPU, once
            raise ValueError(f"body model faces index vertices outside 0..{nv - 1}")
        buf("faces", faces, torch.int64)
        if "cocoplus_regressor" in model:  # HMR's 19 cocoplus joints (the authors' head-size filter)
            buf("cocoplus_regressor", model["cocoplus_regressor"])
        else:
            self.register_buffer("cocoplus_regressor", None, persistent=False)
        self.kind = kind or str(np.asarray(model.get("kind", "smpl")))

    @property
    def num_vertices(self) -> int:
        return int(self.v_template.shape[0])

    @property
    def num_faces(self) -> int:
        return int(self.faces.shape[0])

    def forward(self, betas: Tensor, pose: Tensor) -> Tensor:
        """Vertices of the posed body.

        Args:
            betas: (B, 10) shape coefficients.
            pose: (B, 72) axis-angle of the 24 joints, global orientation first.
        Returns:
            (B, V, 3) vertices in model coordinates (float32 by default).
        """
        return self.forward_with_joints(betas, pose)[0]

    def forward_with_joints(self, betas: Tensor, pose: Tensor) -> tuple[Tensor, Tensor]:
        """(vertices (B, V, 3), posed joints (B, 24, 3))."""
        from smplx.lbs import lbs

        if betas.ndim != 2 or betas.shape[1] != NUM_BETAS:
            raise ValueError(f"betas must have shape (B, {NUM_BETAS}), got {tuple(betas.shape)}")
        if pose.ndim != 2 or pose.shape[1] != 3 * NUM_JOINTS or pose.shape[0] != betas.shape[0]:
            raise ValueError(f"pose must have shape ({betas.shape[0]}, {3 * NUM_JOINTS}), got {tuple(pose.shape)}")
        dt = self.v_template.dtype
        verts, joints = lbs(
            betas.to(dt),
            pose.to(dt),
            self.v_template,
            self.shapedirs,
            self.posedirs,
            self.J_regressor,
            self.parents,
            self.lbs_weights,
            pose2rot=True,
        )
        return verts, joints

    def body25_sources(self) -> tuple[list[int], list[int]]:
        """Where each BODY_25 point comes from on this mesh: (rows, vertex ids).

        ``rows[j]`` indexes the concatenation [24 posed joints | picked vertices];
        ``vertex ids`` are the picked vertices (SPIN's on a 6890-vertex mesh, none otherwise).
        """
        from smplx.vertex_ids import vertex_ids

        smpl_mesh = self.num_vertices == SMPL_NUM_VERTICES
        rows, picked = [], []
        for _, src, fallback in BODY25_FROM_SMPL:
            if isinstance(src, str) and smpl_mesh:
                picked.append(int(vertex_ids["smplh"][src]))
                rows.append(NUM_JOINTS + len(picked) - 1)
            else:
                rows.append(src if isinstance(src, int) else fallback)
        return rows, picked

    def body25(self, betas: Tensor, pose: Tensor) -> Tensor:
        """BODY_25 joints of the posed body (SPIN's SMPL -> OpenPose mapping, `BODY25_FROM_SMPL`).

        Only the few picked vertices are skinned (the same LBS as :meth:`forward`, through
        smplx's helpers), so this is much cheaper than a full forward.

        Args:
            betas: (B, 10); pose: (B, 72).
        Returns:
            (B, 25, 3) in model coordinates, like the vertices.
        """
        from smplx.lbs import batch_rigid_transform, batch_rodrigues, blend_shapes, vertices2joints

        if betas.ndim != 2 or betas.shape[1] != NUM_BETAS or pose.shape != (betas.shape[0], 3 * NUM_JOINTS):
            raise ValueError(f"body25 needs betas (B, {NUM_BETAS}) and pose (B, {3 * NUM_JOINTS}), "
                             f"got {tuple(betas.shape)} and {tuple(pose.shape)}")
        rows, picked = self.body25_sources()
        dt = self.v_template.dtype
        betas, pose = betas.to(dt), pose.to(dt)
        b = betas.shape[0]
        v_shaped = self.v_template + blend_shapes(betas, self.shapedirs)  # (B, V, 3)
        joints_rest = vertices2joints(self.J_regressor, v_shaped)
        rots = batch_rodrigues(pose.reshape(-1, 3)).view(b, NUM_JOINTS, 3, 3)
        joints, rel = batch_rigid_transform(rots, joints_rest, self.parents)
        points = joints
        if picked:
            idx = torch.tensor(picked, device=v_shaped.device)
            cols = (idx[:, None] * 3 + torch.arange(3, device=idx.device)).reshape(-1)
            feat = (rots[:, 1:] - torch.eye(3, dtype=dt, device=rots.device)).reshape(b, -1)
            v_posed = v_shaped.index_select(1, idx) + (feat @ self.posedirs[:, cols]).view(b, len(picked), 3)
            tf = (self.lbs_weights.index_select(0, idx) @ rel.reshape(b, NUM_JOINTS, 16)).view(b, -1, 4, 4)
            verts = (tf[..., :3, :3] @ v_posed[..., None])[..., 0] + tf[..., :3, 3]
            points = torch.cat([joints, verts], dim=1)
        return points[:, rows]


def _quat_rodrigues(theta: Tensor) -> Tensor:
    """(N, 3) axis-angle -> (N, 3, 3), HMR form: angle |theta + 1e-8|, via a unit quaternion."""
    angle = torch.norm(theta + 1e-8, dim=1, keepdim=True)
    axis = theta / angle
    half = angle * 0.5
    q = torch.cat([torch.cos(half), torch.sin(half) * axis], dim=1)
    q = q / q.norm(dim=1, keepdim=True)
    w, x, y, z = q.unbind(1)
    return torch.stack(
        [
            w * w + x * x - y * y - z * z, 2 * (x * y - w * z), 2 * (w * y + x * z),
            2 * (w * z + x * y), w * w - x * x + y * y - z * z, 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (w * x + y * z), w * w - x * x - y * y + z * z,
        ],
        dim=1,
    ).view(-1, 3, 3)


def reference_forward(model: dict[str, np.ndarray], betas: Tensor, pose: Tensor) -> Tensor:
    """Direct float64 implementation of the official SMPL forward (section 2).

    Written independently of smplx, for checking: v_shaped = v_template + shapedirs.beta,
    J = J_regressor v_shaped, R = Rodrigues(theta) with angle |theta + 1e-8|,
    v_posed = v_shaped + posedirs.(R[1:] - I), world transforms G_k = G_parent(k) [R_k | J_k - J_parent],
    skinning with G_k - G_k J_k, no translation. Returns (B, V, 3) float64.
    """
    f64 = torch.float64
    v_template = torch.as_tensor(model["v_template"], dtype=f64)
    shapedirs = torch.as_tensor(model["shapedirs"], dtype=f64)
    posedirs = torch.as_tensor(model["posedirs"], dtype=f64)
    jreg = torch.as_tensor(model["J_regressor"], dtype=f64)
    weights = torch.as_tensor(model["weights"], dtype=f64)
    parents = [int(p) for p in model["kintree_table"][0]]
    betas, pose = betas.to(f64), pose.to(f64)
    b = betas.shape[0]
    v_shaped = v_template[None] + torch.einsum("vcl,bl->bvc", shapedirs, betas)
    joints = torch.einsum("jv,bvc->bjc", jreg, v_shaped)
    rots = _quat_rodrigues(pose.reshape(-1, 3)).view(b, NUM_JOINTS, 3, 3)
    feat = (rots[:, 1:] - torch.eye(3, dtype=f64)).reshape(b, -1)
    v_posed = v_shaped + torch.einsum("vcp,bp->bvc", posedirs, feat)
    world = []
    for k in range(NUM_JOINTS):
        local = torch.zeros(b, 4, 4, dtype=f64)
        local[:, :3, :3] = rots[:, k]
        rel = joints[:, k] - (joints[:, parents[k]] if k > 0 else 0)
        local[:, :3, 3] = rel
        local[:, 3, 3] = 1
        world.append(local if k == 0 else world[parents[k]] @ local)
    g = torch.stack(world, dim=1)  # (B, 24, 4, 4)
    g_rest = g.clone()
    g_rest[..., :3, 3] = g[..., :3, 3] - torch.einsum("bjrc,bjc->bjr", g[..., :3, :3], joints)
    t = torch.einsum("vj,bjrc->bvrc", weights, g_rest)
    return torch.einsum("bvrc,bvc->bvr", t[..., :3, :3], v_posed) + t[..., :3, 3]


def load_body_model(path: Path | None = None, device: str | torch.device = "cpu") -> BodyModel:
    """Load a body model.

    Args:
        path: an SMPL file (.pkl in HMR or standard layout, or .npz); None for the
            model installed with `bdmm body install`.
        device: where the buffers live.
    Raises:
        MissingResourceError: path is None and no model is installed.
        InputError: the file is missing or not an SMPL model.
    """
    if path is None:
        path = installed_model_path()
        if not path.is_file():
            raise MissingResourceError(MISSING_MODEL_MESSAGE)
    model = read_smpl_file(Path(path))
    return BodyModel(model).to(device)


def install_body_model(source: Path, force: bool = False) -> tuple[Path, bool]:
    """Convert an SMPL file into data_dir()/body/smpl.npz (atomic write).

    Returns (installed path, changed). Installing the same file again is a no-op;
    replacing a different installed model needs `force`.
    """
    source = Path(source).expanduser()
    if not source.is_file():
        raise InputError(f"SMPL model file {source} does not exist")
    model = read_smpl_file(source)

    def write(tmp: Path, digest: str) -> None:
        save_model_npz(model, tmp, extra={"source_sha256": np.asarray(digest), "source_name": np.asarray(source.name)})

    return install_converted(source, installed_model_path(), "a body model", write, force)
