"""The pure-PyTorch rasterizer against hand-computed cases and the rules of section 3."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bdmm_cli.body import Fragments, Rasterizer, rasterize
from bdmm_cli.body.pytorch3d_backend import pytorch3d_available, rasterize_pytorch3d


def centres(n: int) -> np.ndarray:
    return (2 * np.arange(n) + 1) / n - 1


def tri_mesh(xyz, faces, dtype=torch.float32):
    return torch.tensor([xyz], dtype=dtype), torch.tensor(faces, dtype=torch.int64)


# ---------------------------------------------------------------- single triangle ---


def test_triangle_coverage_with_edge_ties_and_barycentrics():
    # Lower-left half of the image: x + y <= 0 (y down). Its hypotenuse passes exactly
    # through the pixel centres with r + c = 3, which count as inside (ties inside).
    verts, faces = tri_mesh([[-1, -1, 1], [-1, 1, 1], [1, -1, 1]], [[0, 1, 2]])
    fr = rasterize(verts, faces, 4)
    assert isinstance(fr, Fragments)
    expected = np.array([[0, 0, 0, 0], [0, 0, 0, -1], [0, 0, -1, -1], [0, -1, -1, -1]])
    np.testing.assert_array_equal(fr.pix_to_face[0].numpy(), expected)
    c = centres(4)
    for r in range(4):
        for col in range(4):
            if expected[r, col] < 0:
                assert (fr.bary_coords[0, r, col] == -1).all() and fr.zbuf[0, r, col] == -1
                continue
            px, py = c[col], c[r]
            # v0 = (-1,-1), v1 = (-1,1), v2 = (1,-1): w1 = (py+1)/2, w2 = (px+1)/2.
            want = [-(px + py) / 2, (py + 1) / 2, (px + 1) / 2]
            np.testing.assert_allclose(fr.bary_coords[0, r, col].numpy(), want, atol=1e-6)
            assert fr.zbuf[0, r, col].item() == pytest.approx(1.0)


def test_back_facing_triangle_is_culled():
    verts, faces = tri_mesh([[-1, -1, 1], [1, -1, 1], [-1, 1, 1]], [[0, 1, 2]])  # clockwise on screen
    assert (rasterize(verts, faces, 4).pix_to_face == -1).all()
    # The same triangle with the kept winding covers pixels.
    assert (rasterize(verts, faces[:, [0, 2, 1]], 4).pix_to_face == 0).sum() == 10


def test_pixel_centres_follow_align_corners_false():
    # A thin triangle whose left edge sits exactly on the first column of centres of an
    # 8-pixel image (x = -7/8) and whose right edge sits just left of the second (x < -5/8).
    x0, x1 = -7 / 8, -5 / 8 - 1e-3
    verts, faces = tri_mesh([[x0, -1, 1], [x0, 1, 1], [x1, -1, 1]], [[0, 1, 2]])
    fr = rasterize(verts, faces, 8)
    cols = (fr.pix_to_face[0] >= 0).any(dim=0).nonzero().flatten().tolist()
    assert cols == [0]


def test_degenerate_and_out_of_image_faces_are_harmless():
    verts, faces = tri_mesh(
        [[-0.5, -0.5, 1], [0.5, 0.5, 1], [0.0, 0.0, 1], [3, 3, 1], [3, 5, 1], [5, 3, 1]], [[0, 1, 2], [3, 4, 5]]
    )
    fr = rasterize(verts, faces, 8)
    assert (fr.pix_to_face == -1).all()


def test_near_and_far_planes():
    verts, faces = tri_mesh([[-1, -1, 0.05], [-1, 1, 0.05], [1, -1, 0.05]], [[0, 1, 2]])
    assert (rasterize(verts, faces, 4).pix_to_face == -1).all()  # in front of znear = 0.1
    verts[..., 2] = 150.0
    assert (rasterize(verts, faces, 4).pix_to_face == -1).all()  # beyond zfar = 100
    verts[..., 2] = 50.0
    assert (rasterize(verts, faces, 4).pix_to_face == 0).sum() == 10


# ------------------------------------------------------------------------- quads ---

QUAD = [[-1, -1, 1], [1, -1, 1], [1, 1, 1], [-1, 1, 1]]  # A top-left, B top-right, C, D


def test_quad_shared_diagonal_tie_goes_to_the_lower_face_index():
    # Faces ACB (upper-right, y <= x) and ADC (lower-left, y >= x) share the diagonal
    # x = y, which passes through the centres (r, r). Equal depth -> lowest index wins.
    verts = torch.tensor([QUAD], dtype=torch.float32)
    acb_adc = torch.tensor([[0, 2, 1], [0, 3, 2]])
    p2f = rasterize(verts, acb_adc, 4).pix_to_face[0].numpy()
    r, c = np.indices((4, 4))
    np.testing.assert_array_equal(p2f, np.where(r > c, 1, 0))
    p2f = rasterize(verts, acb_adc.flip(0), 4).pix_to_face[0].numpy()
    np.testing.assert_array_equal(p2f, np.where(r < c, 1, 0))


def test_quad_barycentrics_interpolate_linear_attributes():
    # A non-square quad: barycentric interpolation of vertex positions gives back the
    # pixel centre itself (inside the quad the weights are unclamped).
    verts = torch.tensor([[[-0.8, -0.6, 1], [0.7, -0.9, 1], [0.9, 0.8, 1], [-0.6, 0.7, 1]]])
    faces = torch.tensor([[0, 2, 1], [0, 3, 2]])
    fr = rasterize(verts, faces, 16)
    m = fr.mask[0]
    assert m.sum() > 100
    tri = verts[0][faces[fr.pix_to_face[0].clamp(min=0)]]  # (H, W, 3, 3)
    pos = (fr.bary_coords[0][..., None] * tri[..., :2]).sum(-2)
    c = torch.tensor(centres(16), dtype=torch.float32)
    grid = torch.stack(torch.meshgrid(c, c, indexing="xy"), -1)
    torch.testing.assert_close(pos[m], grid[m], atol=1e-6, rtol=0)
    torch.testing.assert_close(fr.bary_coords[0][m].sum(-1), torch.ones(int(m.sum())))


# -------------------------------------------------------------------------- cube ---


def cube(angle_y: float, angle_x: float = 0.0, z: float = 3.0, scale: float = 0.5):
    """Cube of half-size `scale` with outward (right-hand) faces, rotated, in front of the eye."""
    v = np.array([[x, y, zz] for x in (-1, 1) for y in (-1, 1) for zz in (-1, 1)], dtype=float)
    quads = [  # outward normals by the right-hand rule
        (0, 1, 3, 2),  # x = -1
        (4, 6, 7, 5),  # x = +1
        (0, 4, 5, 1),  # y = -1
        (2, 3, 7, 6),  # y = +1
        (0, 2, 6, 4),  # z = -1 (faces the eye)
        (1, 5, 7, 3),  # z = +1
    ]
    faces = []
    for a, b, c, d in quads:
        faces += [(a, b, c), (a, c, d)]
    cy, sy, cx, sx = math.cos(angle_y), math.sin(angle_y), math.cos(angle_x), math.sin(angle_x)
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    rot = rx @ ry
    verts = scale * v @ rot.T + [0, 0, z]
    normals = np.array([[-1, 0, 0], [1, 0, 0], [0, -1, 0], [0, 1, 0], [0, 0, -1], [0, 0, 1]]) @ rot.T
    return verts, np.array(faces), normals


def test_cube_faces_have_outward_winding():
    verts, faces, normals = cube(0.3, 0.2)
    tri = verts[faces]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    np.testing.assert_allclose(n / np.linalg.norm(n, axis=1, keepdims=True), np.repeat(normals, 2, 0), atol=1e-12)


def test_cube_nearest_face_wins_and_back_faces_are_culled():
    verts, faces, normals = cube(0.5, 0.35)
    s = 32
    fr = rasterize(torch.tensor(verts[None], dtype=torch.float64), torch.tensor(faces), s)
    p2f = fr.pix_to_face[0].numpy()
    front = normals[:, 2] < 0  # facing the eye (at -z)
    visible_quads = set(np.unique(p2f[p2f >= 0]) // 2)
    assert visible_quads == set(np.nonzero(front)[0])  # all front quads seen, no back quad
    # Analytic entry plane of the convex cube along each pixel ray (planes n.p <= d): the
    # visible face must lie on it. (zbuf follows the official 1/sum(w/z) rule, which is
    # not the linear depth of an orthographic ray, so only its range is checked.)
    d = np.einsum("qc,qc->q", normals, verts[faces[::2, 0]])
    c = centres(s)
    checked = 0
    for r in range(s):
        for col in range(s):
            x, y = c[col], c[r]
            rhs = d - normals[:, 0] * x - normals[:, 1] * y
            t = rhs / normals[:, 2]
            lo_planes = np.nonzero(front)[0]
            lo = t[lo_planes].max()
            hi = t[~front].min()
            if abs(lo - hi) < 1e-6 or np.sort(t[lo_planes])[-2] > lo - 1e-6:
                continue  # silhouette or edge between two visible faces: a tie
            hit = lo <= hi
            assert (p2f[r, col] >= 0) == hit, (r, col)
            if hit:
                checked += 1
                assert p2f[r, col] // 2 == lo_planes[t[lo_planes].argmax()]
                zs = verts[faces[p2f[r, col]], 2]
                assert zs.min() - 1e-9 <= fr.zbuf[0, r, col].item() <= zs.max() + 1e-9
    assert checked > 200


def test_a_nearer_back_face_does_not_hide_a_front_face():
    front = [[-1, -1, 5], [-1, 1, 5], [1, -1, 5]]
    back = [[-1, -1, 1], [1, -1, 1], [-1, 1, 1]]  # nearer but clockwise: culled
    verts, faces = tri_mesh(front + back, [[0, 1, 2], [3, 4, 5]])
    fr = rasterize(verts, faces, 4)
    assert set(fr.pix_to_face.unique().tolist()) == {-1, 0}
    # Flipping the nearer one makes it win where both cover.
    fr = rasterize(verts, torch.tensor([[0, 1, 2], [3, 5, 4]]), 4)
    assert set(fr.pix_to_face.unique().tolist()) == {-1, 1}


# ------------------------------------------------- reference loop on random meshes ---


def reference_rasterize(xyz: np.ndarray, faces: np.ndarray, s: int, znear=0.1, zfar=100.0):
    """Straight per-pixel, per-face loop over section 3, in float64."""
    p2f = -np.ones((s, s), dtype=np.int64)
    zbuf = np.full((s, s), np.inf)
    c = centres(s)
    for r in range(s):
        for col in range(s):
            px, py = c[col], c[r]
            for f, (i, j, k) in enumerate(faces):
                (x0, y0, z0), (x1, y1, z1), (x2, y2, z2) = xyz[i], xyz[j], xyz[k]
                cross = (x1 - x0) * (y2 - y0) - (y1 - y0) * (x2 - x0)
                if cross >= 0:  # culled (> 0) or zero area
                    continue
                edges = [((x0, y0), (x1, y1)), ((x1, y1), (x2, y2)), ((x2, y2), (x0, y0))]
                if any((py - a[1]) * (b[0] - a[0]) > (px - a[0]) * (b[1] - a[1]) for a, b in edges):
                    continue
                m = np.array([[x0, x1, x2], [y0, y1, y2], [1, 1, 1]])
                w = np.clip(np.linalg.solve(m, [px, py, 1.0]), 0, 1)
                w = w / w.sum()
                zp = 1 / (w[0] / z0 + w[1] / z1 + w[2] / z2)
                if zp <= znear or zp >= zfar:
                    continue
                if zp < zbuf[r, col]:
                    zbuf[r, col], p2f[r, col] = zp, f
    return p2f, zbuf


@pytest.mark.parametrize("seed", [0, 1])
def test_random_meshes_match_a_reference_loop(seed):
    rng = np.random.default_rng(seed)
    nf, s = 24, 12
    xyz = np.concatenate([rng.uniform(-1.2, 1.2, (3 * nf, 2)), rng.uniform(1, 3, (3 * nf, 1))], 1)
    faces = np.arange(3 * nf).reshape(nf, 3)
    want_f, want_z = reference_rasterize(xyz, faces, s)
    fr = rasterize(torch.tensor(xyz[None], dtype=torch.float64), torch.tensor(faces), s, max_candidates=50)
    got = fr.pix_to_face[0].numpy()
    np.testing.assert_array_equal(got, want_f)
    m = got >= 0
    np.testing.assert_allclose(fr.zbuf[0].numpy()[m], want_z[m], rtol=1e-9)


# ---------------------------------------------------------------- batch, tiling ---


def test_batch_elements_are_independent_and_tiling_does_not_matter():
    verts, faces, _ = cube(0.4, 0.3)
    verts2, _, _ = cube(-0.9, 0.1, scale=0.7)
    both = torch.tensor(np.stack([verts, verts2]), dtype=torch.float32)
    fr = rasterize(both, torch.tensor(faces), 24)
    for i in range(2):
        one = rasterize(both[i : i + 1], torch.tensor(faces), 24)
        torch.testing.assert_close(fr.pix_to_face[i], one.pix_to_face[0])
        torch.testing.assert_close(fr.bary_coords[i], one.bary_coords[0])
        torch.testing.assert_close(fr.zbuf[i], one.zbuf[0])
    tiled = rasterize(both, torch.tensor(faces), 24, max_candidates=7)
    torch.testing.assert_close(tiled.pix_to_face, fr.pix_to_face)
    torch.testing.assert_close(tiled.bary_coords, fr.bary_coords)


def test_non_square_image_and_module_equals_functional():
    verts, faces, _ = cube(0.4, 0.3)
    v = torch.tensor(verts[None], dtype=torch.float32)
    fr = rasterize(v, torch.tensor(faces), (12, 20))
    assert fr.pix_to_face.shape == (1, 12, 20) and fr.bary_coords.shape == (1, 12, 20, 3)
    mod = Rasterizer((12, 20))(v, torch.tensor(faces))
    torch.testing.assert_close(mod.pix_to_face, fr.pix_to_face)
    torch.testing.assert_close(mod.bary_coords, fr.bary_coords)


def test_bad_input():
    v = torch.zeros(1, 3, 3)
    with pytest.raises(ValueError):
        rasterize(v[0], torch.tensor([[0, 1, 2]]), 4)
    with pytest.raises(ValueError):
        rasterize(v, torch.tensor([[0, 1, 3]]), 4)
    with pytest.raises(ValueError):
        rasterize(v, torch.tensor([[0.0, 1.0, 2.0]]), 4)
    with pytest.raises(ValueError):
        rasterize(v, torch.tensor([[0, 1, 2]]), 0)


def test_barycentrics_are_differentiable_float64():
    # Pixel centres are far from the edges, so the face assignment is fixed and the
    # weights are smooth functions of the vertices.
    v = torch.tensor([[[-0.93, -0.87, 1.5], [-0.81, 0.91, 2.0], [0.89, -0.79, 2.5]]], dtype=torch.float64, requires_grad=True)
    faces = torch.tensor([[0, 1, 2]])

    def f(verts):
        fr = rasterize(verts, faces, 6)
        return fr.bary_coords, fr.zbuf

    assert torch.autograd.gradcheck(f, (v,), eps=1e-6, atol=1e-6)


@pytest.mark.skipif(not pytorch3d_available(), reason="pytorch3d is not installed")
def test_pytorch3d_backend_conforms():
    verts, faces, _ = cube(0.5, 0.35)
    v = torch.tensor(verts[None], dtype=torch.float32)
    ours = rasterize(v, torch.tensor(faces), 64)
    theirs = rasterize_pytorch3d(v, torch.tensor(faces), 64)
    same = ours.pix_to_face == theirs.pix_to_face
    assert same.float().mean() > 0.99  # only edge ties may differ
    m = same & ours.mask
    torch.testing.assert_close(ours.bary_coords[m], theirs.bary_coords[m], atol=1e-5, rtol=0)


def test_conformance_check_accepts_the_reference_and_rejects_a_shifted_or_broken_rasterizer():
    from bdmm_cli.body.pytorch3d_backend import conforms

    def shifted(verts, faces, size):  # one pixel (2/16 NDC) to the right
        return rasterize(verts + torch.tensor([2.0 / 16, 0.0, 0.0]), faces, size)

    def broken(verts, faces, size):
        raise RuntimeError("undefined symbol")

    assert conforms(rasterize)
    assert not conforms(shifted)
    assert not conforms(broken)


def test_resolve_rasterizer_auto_falls_back_and_an_explicit_unusable_choice_is_an_error():
    from bdmm_cli.body.pytorch3d_backend import resolve_rasterizer
    from bdmm_cli.errors import InputError, NotAvailableError

    assert resolve_rasterizer("torch") == "torch"
    with pytest.raises(InputError, match="unknown rasterizer"):
        resolve_rasterizer("opengl")
    if pytorch3d_available():
        pytest.skip("pytorch3d is installed here; the fallback case cannot be shown")
    assert resolve_rasterizer("auto") == "torch"
    with pytest.raises(NotAvailableError, match="--rasterizer torch"):
        resolve_rasterizer("pytorch3d")
