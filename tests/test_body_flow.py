"""Mesh flows and warping: analytic cases, batching, gradients."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bdmm_cli.body import (
    BodyModel,
    MeshFlow,
    mesh_flow,
    project,
    synthetic_body_arrays,
    warp,
    window_flows,
)

S = 32


@pytest.fixture(scope="module")
def body() -> BodyModel:
    return BodyModel(synthetic_body_arrays(seed=0))


def posed(body: BodyModel, n: int, seed: int, amount: float = 0.3) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    pose = torch.randn(n, 72, generator=g) * amount
    pose[:, :3] = torch.tensor([math.pi, 0.0, 0.0])  # upright, facing the camera (SPIN convention)
    betas = torch.randn(n, 10, generator=g) * 0.5
    return body(betas, pose)


def pixel_grid(s: int) -> torch.Tensor:
    """(S, S, 2) pixel centres in grid_sample coordinates, x then y."""
    return F.affine_grid(torch.eye(2, 3)[None], (1, 1, s, s), align_corners=False)[0]


def test_body_renders_upright_and_covers_part_of_the_frame(body):
    verts = posed(body, 1, 0)
    cam = torch.tensor([[1.0, 0.0, 0.1]])
    flow = mesh_flow(verts, verts, body.faces, cam, cam, S)
    mask = flow[0, ..., 0] > -2
    assert 0.05 < mask.float().mean() < 0.6
    rows = mask.any(1).nonzero().flatten()
    # y down: the head (model y up, flipped by the global orientation) is at the top rows.
    head_y = project(verts, cam)[0, :, 1][body.v_template[:, 1] > 0.6].mean()
    assert head_y < 0 and rows.min() < S // 3


def test_identity_flow_reproduces_the_source_inside_the_mask(body):
    verts = posed(body, 2, 1)
    cam = torch.tensor([[1.0, 0.0, 0.1], [0.8, 0.1, 0.0]])
    flow = mesh_flow(verts, verts, body.faces, cam, cam, S)
    mask = flow[..., 0] > -2
    grid = pixel_grid(S).expand(2, S, S, 2)
    torch.testing.assert_close(flow[mask], grid[mask], atol=2e-6, rtol=0)
    assert (flow[~mask] == -2).all()
    image = torch.rand(2, 3, S, S)
    warped = warp(image, flow)
    m = mask[:, None].expand_as(image)
    torch.testing.assert_close(warped[m], image[m], atol=1e-5, rtol=0)
    assert (warped[~m] == 0).all()  # -2 samples outside the image: zeros


@pytest.mark.parametrize("cam_src,cam_tgt", [((1.0, 0.0, 0.1), (1.0, 0.2, -0.1)), ((0.9, 0.05, 0.1), (1.2, -0.1, 0.2))])
def test_camera_translation_and_scale_give_the_analytic_flow(body, cam_src, cam_tgt):
    verts = posed(body, 1, 2)
    cs, ct = torch.tensor([cam_src]), torch.tensor([cam_tgt])
    flow = mesh_flow(verts, verts, body.faces, cs, ct, S)
    mask = flow[0, ..., 0] > -2
    assert mask.sum() > 50
    # Target pixel u_t = s_t (X + tx_t)  =>  source u_s = s_s (u_t / s_t - tx_t + tx_s).
    g = pixel_grid(S)
    s_s, tx_s, ty_s = cam_src
    s_t, tx_t, ty_t = cam_tgt
    want = torch.stack([s_s * (g[..., 0] / s_t - tx_t + tx_s), s_s * (g[..., 1] / s_t - ty_t + ty_s)], -1)
    torch.testing.assert_close(flow[0][mask], want[mask], atol=5e-6, rtol=0)


def test_flow_uses_target_barycentrics_on_the_source_projection():
    # One triangle moved between source and target: the flow is the affine map that
    # takes the target triangle onto the source triangle.
    tgt = torch.tensor([[[-0.9, -0.8, 0.0], [-0.7, 0.9, 0.0], [0.8, -0.6, 0.0]]])
    src = torch.tensor([[[-0.5, -0.5, 0.0], [-0.4, 0.3, 0.0], [0.2, -0.45, 0.0]]])
    cam = torch.tensor([[1.0, 0.0, 0.0]])
    flow = mesh_flow(src, tgt, torch.tensor([[0, 1, 2]]), cam, cam, 16)
    mask = flow[0, ..., 0] > -2
    a_t = torch.cat([tgt[0, :, :2], torch.ones(3, 1)], 1)  # rows [x y 1]
    affine = torch.linalg.solve(a_t, src[0, :, :2])  # (3, 2): [x y 1] @ affine = source
    g = pixel_grid(16)
    want = torch.cat([g, torch.ones(16, 16, 1)], -1) @ affine
    torch.testing.assert_close(flow[0][mask], want[mask], atol=1e-5, rtol=0)


def test_batch_elements_are_independent(body):
    verts = posed(body, 3, 3)
    src = posed(body, 3, 4)
    cams = torch.tensor([[1.0, 0.0, 0.1], [0.9, 0.1, 0.0], [1.1, -0.1, 0.2]])
    both = mesh_flow(src, verts, body.faces, cams.flip(0), cams, S)
    for i in range(3):
        one = mesh_flow(src[i : i + 1], verts[i : i + 1], body.faces, cams.flip(0)[i : i + 1], cams[i : i + 1], S)
        torch.testing.assert_close(both[i], one[0])


def test_window_flows_equal_separate_calls(body):
    b, t = 2, 3
    src = posed(body, b, 5)
    frames = posed(body, b * t, 6).view(b, t, -1, 3)
    pre, post = posed(body, b, 7), posed(body, b, 8)
    cam = torch.tensor([[1.0, 0.0, 0.1], [0.9, 0.05, 0.0]])
    cams = cam[:, None].repeat(1, t, 1) * torch.tensor([1.0, 1.0, 1.0])
    cams[:, :, 1] += torch.linspace(-0.1, 0.1, t)
    flows, f_pre, f_post = window_flows(src, cam, frames, cams, pre, cam, post, cam * 1.05, body.faces, S)
    assert flows.shape == (b, t, S, S, 2) and f_pre.shape == (b, S, S, 2) and f_post.shape == (b, S, S, 2)
    for i in range(t):
        torch.testing.assert_close(flows[:, i], mesh_flow(src, frames[:, i], body.faces, cam, cams[:, i], S))
    torch.testing.assert_close(f_pre, mesh_flow(src, pre, body.faces, cam, cam, S))
    torch.testing.assert_close(f_post, mesh_flow(src, post, body.faces, cam, cam * 1.05, S))


def test_module_equals_functional_and_bad_input(body):
    verts = posed(body, 1, 9)
    cam = torch.tensor([[1.0, 0.0, 0.1]])
    mod = MeshFlow(body.faces, S)
    torch.testing.assert_close(mod(verts, verts, cam, cam), mesh_flow(verts, verts, body.faces, cam, cam, S))
    with pytest.raises(ValueError):
        mesh_flow(verts, verts[:, :-1], body.faces, cam, cam, S)
    with pytest.raises(ValueError):
        mesh_flow(verts, verts, body.faces, cam[:, :2], cam, S)
    with pytest.raises(ValueError):
        warp(torch.zeros(1, 3, S, S), torch.zeros(1, S, S, 3))


def test_flow_gradcheck_float64():
    # Barycentrics are fixed per pixel, so the flow is smooth in both vertex sets away
    # from edges; pixel centres here are at least 1e-2 away from every edge.
    tgt = torch.tensor([[[-0.93, -0.87, 0.1], [-0.81, 0.91, 0.2], [0.89, -0.79, 0.3]]], dtype=torch.float64, requires_grad=True)
    src = torch.tensor([[[-0.5, -0.5, 0.0], [-0.4, 0.3, 0.0], [0.2, -0.45, 0.0]]], dtype=torch.float64, requires_grad=True)
    cam_s = torch.tensor([[1.1, 0.05, -0.02]], dtype=torch.float64, requires_grad=True)
    cam_t = torch.tensor([[1.0, 0.0, 0.0]], dtype=torch.float64)
    faces = torch.tensor([[0, 1, 2]])

    def f(s, t, cs):
        return mesh_flow(s, t, faces, cs, cam_t, 6)

    assert torch.autograd.gradcheck(f, (src, tgt, cam_s), eps=1e-6, atol=1e-6)


def test_warp_matches_grid_sample_reference():
    image = torch.rand(1, 2, 5, 7)
    flow = torch.rand(1, 4, 6, 2) * 2.4 - 1.2
    torch.testing.assert_close(
        warp(image, flow), F.grid_sample(image, flow, mode="bilinear", padding_mode="zeros", align_corners=False)
    )
    # A hand-computed bilinear sample: halfway between pixel centres (0,0) and (0,1).
    img = torch.tensor([[[[1.0, 3.0], [5.0, 7.0]]]])
    pt = torch.tensor([[[[0.0, -0.5]]]])  # x = 0 (between columns), y = -0.5 (row 0 centre)
    assert warp(img, pt).item() == pytest.approx(2.0)
    assert np.isclose(warp(img, torch.full((1, 1, 1, 2), -2.0)).item(), 0.0)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu_and_stays_within_2gb(body):
    from bdmm_cli.body import project_ndc, rasterize

    verts = posed(body, 8, 11)
    cam = torch.tensor([[1.0, 0.0, 0.1]]).repeat(8, 1)
    cpu = mesh_flow(verts, verts.flip(0), body.faces, cam, cam, 256)
    dev = torch.device("cuda")
    torch.cuda.reset_peak_memory_stats()
    gpu = mesh_flow(verts.to(dev), verts.flip(0).to(dev), body.faces.to(dev), cam.to(dev), cam.to(dev), 256).cpu()
    assert torch.cuda.max_memory_allocated() < 2 * 2**30
    same = (cpu[..., 0] > -2) == (gpu[..., 0] > -2)
    assert same.float().mean() > 0.999
    m = same & (cpu[..., 0] > -2)
    torch.testing.assert_close(gpu[m], cpu[m], atol=1e-5, rtol=0)
    fr = rasterize(project_ndc(verts, cam).to(dev), body.faces.to(dev), 64)
    assert fr.pix_to_face.device.type == "cuda"


def test_window_flows_check_the_mesh_once_and_never_read_device_faces(body, monkeypatch):
    """One check per window (not again in the rasterizer); the face indices are read only
    on the CPU (a GPU tensor's min/max would wait for the device), and BodyModel checks its
    own faces when it is built."""
    import bdmm_cli.body.flow as flow_mod
    import bdmm_cli.body.rasterizer as rast_mod
    from bdmm_cli.body.rasterizer import check_mesh

    calls = []

    def counting(verts, faces):
        calls.append(tuple(verts.shape))
        check_mesh(verts, faces)

    monkeypatch.setattr(flow_mod, "check_mesh", counting)
    monkeypatch.setattr(rast_mod, "check_mesh", counting)
    b, t = 1, 3
    src, frames = posed(body, b, 5), posed(body, b * t, 6).view(b, t, -1, 3)
    cam = torch.tensor([[1.0, 0.0, 0.1]])
    window_flows(src, cam, frames, cam[:, None].repeat(1, t, 1), src, cam, src, cam, body.faces, S)
    assert len(calls) == 1
    bad = torch.tensor([[0, 1, 99]])
    with pytest.raises(ValueError, match="outside 0..2"):
        check_mesh(torch.zeros(1, 3, 3), bad)
    check_mesh(torch.zeros(1, 3, 3, device="meta"), bad.to("meta"))  # values not read off the CPU
    arrays = synthetic_body_arrays(seed=0)
    arrays["f"] = np.array(arrays["f"]).copy()
    arrays["f"][0, 0] = arrays["v_template"].shape[0]
    with pytest.raises(ValueError, match="faces index vertices outside"):
        BodyModel(arrays)
