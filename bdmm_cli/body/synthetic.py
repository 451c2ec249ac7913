"""A synthetic body model in SMPL format, made by code (never presented as SMPL).

The licensed SMPL file cannot ship with bdmm, so tests and demos use this stand-in: a
procedural mesh of closed tubes along the 24 bones of the SMPL kinematic tree (same
joint order and parents, T-pose, y up, metres), a sphere for the head and short end
pieces for hands and feet. It has everything an SMPL file has: skinning weights (each
tube follows the rotation of its parent joint, blended near the joints), 10 shape blend
shapes (height, girth, leg length, seven smooth random fields), 207 pose blend shapes
(small seeded random offsets), a joint regressor (the mean of the rings at each joint, so
J_regressor . v_template is the joint exactly) and outward-facing triangles (right-hand
normals point out, like SMPL's). It is written as an SMPL-layout .npz with
``kind = "synthetic"`` and loads through :func:`bdmm_cli.body.load_body_model` like a real file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bdmm_cli.body.smpl_file import NUM_BETAS, NUM_JOINTS, save_model_npz, validate_model

__all__ = ["SMPL_PARENTS", "REST_JOINTS", "smpl_layout_body_arrays", "synthetic_body_arrays", "write_synthetic_body_model"]

#: Parent of each SMPL joint (pelvis, L hip, R hip, spine1, L knee, R knee, spine2, L ankle,
#: R ankle, spine3, L foot, R foot, neck, L collar, R collar, head, L shoulder, R shoulder,
#: L elbow, R elbow, L wrist, R wrist, L hand, R hand).
SMPL_PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21)

#: Approximate SMPL rest joints (T-pose, y up, x to the body's left, z forward), metres.
REST_JOINTS = np.array(
    [
        [0.00, 0.00, 0.00], [0.06, -0.09, 0.00], [-0.06, -0.09, 0.00], [0.00, 0.11, -0.01],
        [0.10, -0.47, 0.00], [-0.10, -0.47, 0.00], [0.00, 0.24, 0.00], [0.09, -0.87, -0.03],
        [-0.09, -0.87, -0.03], [0.00, 0.30, 0.01], [0.11, -0.93, 0.10], [-0.11, -0.93, 0.10],
        [0.00, 0.52, -0.01], [0.08, 0.42, 0.00], [-0.08, 0.42, 0.00], [0.00, 0.60, 0.03],
        [0.18, 0.44, 0.00], [-0.18, 0.44, 0.00], [0.44, 0.43, 0.00], [-0.44, 0.43, 0.00],
        [0.70, 0.44, 0.00], [-0.70, 0.44, 0.00], [0.78, 0.44, 0.00], [-0.78, 0.44, 0.00],
    ]
)

# Tube radius of the bone ending at each joint (index = child joint).
_RADIUS = {
    1: 0.08, 2: 0.08, 3: 0.12, 4: 0.07, 5: 0.07, 6: 0.13, 7: 0.05, 8: 0.05, 9: 0.13,
    10: 0.04, 11: 0.04, 12: 0.05, 13: 0.05, 14: 0.05, 15: 0.05, 16: 0.05, 17: 0.05,
    18: 0.045, 19: 0.045, 20: 0.035, 21: 0.035, 22: 0.03, 23: 0.03,
}


def _frame(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors e1, e2 with e1 x e2 = d (right-handed frame around axis d)."""
    helper = np.array([0.0, 0.0, 1.0]) if abs(d[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    e1 = np.cross(helper, d)
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(d, e1)
    return e1, e2


def _tube(start, end, radii, ring: int):
    """Closed tube: len(radii) rings from start to end and two cap vertices.

    Returns verts (n, 3), faces (m, 3) (local indices, outward), t (n,) position along
    the tube in [0, 1], ring_id (n,) (-1 for the start cap, len(radii) for the end cap),
    radial (n, 3) unit outward directions from the axis.
    """
    start, end = np.asarray(start, float), np.asarray(end, float)
    axis = end - start
    length = np.linalg.norm(axis)
    d = axis / length
    e1, e2 = _frame(d)
    n_len = len(radii)
    ts = np.linspace(0.0, 1.0, n_len)
    ang = 2 * np.pi * np.arange(ring) / ring
    dirs = np.cos(ang)[:, None] * e1 + np.sin(ang)[:, None] * e2  # (ring, 3)
    verts, t, rid, radial = [], [], [], []
    for i, (ti, ri) in enumerate(zip(ts, radii)):
        verts.append(start + ti * axis + ri * dirs)
        t += [ti] * ring
        rid += [i] * ring
        radial.append(dirs)
    verts += [start[None], end[None]]
    t += [0.0, 1.0]
    rid += [-1, n_len]
    radial += [-d[None], d[None]]
    faces = []
    for i in range(n_len - 1):
        for k in range(ring):
            a, b = i * ring + k, i * ring + (k + 1) % ring
            c, dd = (i + 1) * ring + (k + 1) % ring, (i + 1) * ring + k
            faces += [(a, b, c), (a, c, dd)]
    c0, c1 = n_len * ring, n_len * ring + 1
    top = (n_len - 1) * ring
    for k in range(ring):
        faces.append((c0, (k + 1) % ring, k))
        faces.append((c1, top + k, top + (k + 1) % ring))
    return (np.concatenate(verts), np.array(faces, dtype=np.int64), np.array(t), np.array(rid), np.concatenate(radial))


def _pieces(rings_per_metre: float, min_rings: int):
    """(owner joint, child joint or None, start, end, radii) of every tube."""
    out = []
    for j in range(1, NUM_JOINTS):
        p = SMPL_PARENTS[j]
        start, end = REST_JOINTS[p], REST_JOINTS[j]
        n = max(min_rings, int(round(np.linalg.norm(end - start) * rings_per_metre)))
        out.append((p, j, start, end, np.full(n, _RADIUS[j])))
    # End pieces of the leaf joints, skinned to the leaf itself.
    n_head = max(min_rings + 1, 5)
    phi = np.linspace(0.15, np.pi - 0.15, n_head)
    head_c = REST_JOINTS[15] + np.array([0.0, 0.10, 0.0])
    out.append((15, None, head_c - [0, 0.1, 0], head_c + [0, 0.1, 0], 0.1 * np.sin(phi)))
    for leaf, direction, length, r in ((22, [1, 0, 0], 0.08, 0.03), (23, [-1, 0, 0], 0.08, 0.03),
                                       (10, [0, 0, 1], 0.07, 0.035), (11, [0, 0, 1], 0.07, 0.035)):
        s = REST_JOINTS[leaf]
        out.append((leaf, None, s, s + length * np.asarray(direction, float), np.full(min_rings, r)))
    return out


def synthetic_body_arrays(seed: int = 0, ring: int = 8, rings_per_metre: float = 12.0, min_rings: int = 3) -> dict[str, np.ndarray]:
    """The synthetic model as SMPL-layout arrays (see the module docstring).

    The default (ring 8) has about a thousand vertices; `ring` and `rings_per_metre`
    scale it (the benchmark uses an SMPL-sized variant).
    """
    rng = np.random.default_rng(seed)
    verts, faces, weights, radial_all = [], [], [], []
    joint_rings: dict[int, list[np.ndarray]] = {j: [] for j in range(NUM_JOINTS)}
    offset = 0
    for owner, child, start, end, radii in _pieces(rings_per_metre, min_rings):
        v, f, t, rid, radial = _tube(start, end, radii, ring)
        n = len(v)
        w = np.zeros((n, NUM_JOINTS))
        if child is None:
            w[:, owner] = 1.0
        else:
            # The bone follows its parent joint; blend with the grandparent near the start
            # and with the child near the end.
            grand = SMPL_PARENTS[owner]
            near_start = np.clip(0.5 - 2 * t, 0, None) if grand >= 0 else np.zeros_like(t)
            near_end = np.clip(2 * t - 1.5, 0, None)
            w[:, owner] = 1.0 - near_start - near_end
            if grand >= 0:
                w[:, grand] += near_start
            w[:, child] += near_end
            joint_rings[child].append(offset + np.nonzero(rid == len(radii) - 1)[0])
        if child is not None:
            joint_rings[owner].append(offset + np.nonzero(rid == 0)[0])
        verts.append(v)
        faces.append(f + offset)
        weights.append(w)
        radial_all.append(radial)
        offset += n
    v_template = np.concatenate(verts)
    nv = len(v_template)
    jreg = np.zeros((NUM_JOINTS, nv))
    for j, rings in joint_rings.items():
        idx = np.concatenate(rings)
        jreg[j, idx] = 1.0 / len(idx)
    radial = np.concatenate(radial_all)

    shapedirs = np.zeros((nv, 3, NUM_BETAS))
    shapedirs[:, :, 0] = 0.08 * v_template  # height / overall scale about the pelvis
    shapedirs[:, :, 1] = 0.02 * radial  # girth
    legs = np.clip(-v_template[:, 1] / 0.9, 0, None)
    shapedirs[:, 1, 2] = -0.05 * legs  # leg length
    for k in range(3, NUM_BETAS):
        freq = rng.normal(size=(3, 3)) * 3.0
        phase = rng.uniform(0, 2 * np.pi, size=3)
        shapedirs[:, :, k] = 0.01 * np.sin(v_template @ freq + phase)
    posedirs = 1e-3 * rng.normal(size=(nv, 3, 9 * (NUM_JOINTS - 1)))
    kintree = np.stack([np.array(SMPL_PARENTS), np.arange(NUM_JOINTS)]).astype(np.int64)
    model = {
        "v_template": v_template,
        "shapedirs": shapedirs,
        "posedirs": posedirs,
        "J_regressor": jreg,
        "weights": np.concatenate(weights),
        "kintree_table": kintree,
        "f": np.concatenate(faces),
        "kind": np.asarray("synthetic"),
    }
    return validate_model(model, source="synthetic body model")


def write_synthetic_body_model(path: Path, seed: int = 0) -> Path:
    """Write the synthetic model as an SMPL-layout .npz (kind "synthetic"); returns `path`.

    Load it with ``load_body_model(path)``. Not SMPL: a procedural stand-in for tests/demos.
    """
    path = Path(path)
    save_model_npz(synthetic_body_arrays(seed), path)
    return path


def smpl_layout_body_arrays(seed: int = 0, num_vertices: int = 6890) -> dict[str, np.ndarray]:
    """The synthetic body padded to SMPL's vertex count, for code that indexes SMPL vertices.

    The extra vertices are copies of mesh vertices (same shape / pose blend shapes and
    skinning weights, so they move with the body) that no face uses; each vertex id of
    smplx's ``vertex_ids["smplh"]`` table (the BODY_25 nose, eyes, ears, toes and heels) is a
    copy of the mesh vertex nearest to the SMPL joint ``BodyModel.body25`` falls back to for
    it, so those points sit on the body like on SMPL. Not SMPL: a stand-in for tests.
    """
    from smplx.vertex_ids import vertex_ids

    from bdmm_cli.body.body_model import BODY25_FROM_SMPL

    base = synthetic_body_arrays(seed)
    nv = base["v_template"].shape[0]
    if nv > num_vertices:
        raise ValueError(f"the synthetic body has {nv} vertices, more than {num_vertices}")
    rng = np.random.default_rng(seed + 1)
    copy_of = np.concatenate([np.arange(nv), rng.integers(0, nv, num_vertices - nv)])
    for _, src, fallback in BODY25_FROM_SMPL:
        if isinstance(src, str):
            vid = int(vertex_ids["smplh"][src])
            if vid >= nv:
                target = REST_JOINTS[fallback]
                copy_of[vid] = int(np.argmin(np.linalg.norm(base["v_template"] - target, axis=1)))
    model = dict(base)
    for name in ("v_template", "shapedirs", "posedirs", "weights"):
        model[name] = base[name][copy_of]
    jreg = np.zeros((NUM_JOINTS, num_vertices))
    jreg[:, :nv] = base["J_regressor"]
    model["J_regressor"] = jreg
    return validate_model(model, source="SMPL-layout synthetic body model")
