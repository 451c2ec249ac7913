"""Training items, the sharded deterministic sampler, window cutting, and the init."""

from __future__ import annotations

import pytest
import torch

from bdmm_cli.train.data import ClipDataset, ClipSampler, clip_windows, make_loader, window_inputs
from train_helpers import make_body, make_dataset, tiny_config


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("train_items")
    body = make_body(root)
    return make_dataset(root / "ds", body, num_videos=3, num_frames=9, test_list=False), body


def test_window_neighbours_follow_the_authors_rule():
    # 30-frame clip, windows of 6: previous = start - 1 (0 first), future = start + 6 (29 last)
    windows = clip_windows({"smpl": torch.zeros(1, 30, 85)}, 6)
    assert [(w.pre, w.post) for w in windows] == [(0, 6), (5, 12), (11, 18), (17, 24), (23, 29)]
    assert [w.frames for w in windows] == [tuple(range(s, s + 6)) for s in range(0, 30, 6)]
    assert [(w.pre, w.post) for w in clip_windows({"smpl": torch.zeros(1, 6, 85)}, 6)] == [(0, 5)]
    assert len(clip_windows({"smpl": torch.zeros(1, 14, 85)}, 6)) == 2  # a short tail is not trained on


def test_sampler_is_a_pure_function_of_seed_and_step_and_shards_the_global_batch():
    one = ClipSampler(5, batch_size=4, seed=1)
    ranks = [ClipSampler(5, batch_size=2, seed=1, rank=r, world_size=2) for r in range(2)]
    for step in range(6):
        assert ranks[0].keys(step) + ranks[1].keys(step) == one.keys(step)
        assert ClipSampler(5, 4, seed=1).keys(step) == one.keys(step)   # fresh object, same keys
    # every epoch is a permutation of the videos
    stream = [one.global_item(g)[0] for g in range(15)]
    assert all(sorted(stream[i:i + 5]) == list(range(5)) for i in (0, 5, 10))
    assert stream[:5] != stream[5:10] or stream[5:10] != stream[10:15]
    assert ClipSampler(5, 4, seed=2).keys(0) != one.keys(0)


def test_items_clip_and_source_ranges_and_content(data):
    root, body = data
    from bdmm_cli.dataset.layout import OfficialDataset

    ds = ClipDataset(OfficialDataset(root).videos, image_size=128, clip_len=6, source_first_n=2)
    starts, sources = set(), set()
    for seed in range(40):
        s, src = ds.choose(0, seed)
        starts.add(s)
        sources.add(src)
    assert starts == {0, 1, 2, 3} and sources == {0, 1}    # start uniform in [0, 9 - 6]; source in [0, 2)
    item = ds[(1, 7)]
    start, src = ds.choose(1, 7)
    assert item["frames"].shape == (6, 3, 128, 128) and item["keypoints"].shape == (6, 25, 3)
    assert item["smpl"].shape == (6, 85) and item["source"].shape == (3, 128, 128)
    assert -1 <= item["frames"].min() and item["frames"].max() <= 1
    from bdmm_cli.dataset.kptsmpl import read_kptsmpl

    rec = ds.videos[1]
    pose = read_kptsmpl(rec.pose_paths[start + 2])
    torch.testing.assert_close(item["smpl"][2], torch.tensor(pose.smpl))
    # keypoints stay in 256-crop pixels; window.window_inputs scales them to the 128 model size
    torch.testing.assert_close(item["keypoints"][2], torch.tensor(pose.keypoints, dtype=torch.float32))
    torch.testing.assert_close(item["source_smpl"], torch.tensor(read_kptsmpl(rec.pose_paths[src]).smpl))
    with pytest.raises(Exception, match="frames a training clip needs"):
        ClipDataset(OfficialDataset(root).videos, 128, clip_len=12)


def test_loader_resumes_at_any_step_with_the_same_batches(data):
    root, _ = data
    from bdmm_cli.dataset.layout import OfficialDataset

    ds = ClipDataset(OfficialDataset(root).videos, 128, 6, 20)
    sampler = ClipSampler(len(ds), 1, seed=0)
    full = [b["start"].tolist() + b["video"].tolist() for b in make_loader(ds, sampler, 0, 4)]
    tail = [b["start"].tolist() + b["video"].tolist() for b in make_loader(ds, sampler, 2, 4)]
    assert full[2:] == tail and len(full) == 4


def test_window_inputs_shapes_and_flows(data):
    root, body_path = data
    from bdmm_cli.body import load_body_model, mesh_flow
    from bdmm_cli.dataset.layout import OfficialDataset

    ds = ClipDataset(OfficialDataset(root).videos, 128, 6, 20)
    batch = torch.utils.data.default_collate([ds[(0, 1)], ds[(2, 3)]])
    body = load_body_model(body_path)
    inputs, real = window_inputs(batch, body, clip_windows(batch, 6)[0])
    assert inputs.heatmaps.shape == (2, 6, 25, 128, 128) and inputs.flows.shape == (2, 6, 128, 128, 2)
    assert inputs.flow_pre.shape == inputs.flow_post.shape == (2, 128, 128, 2) and real.shape == (2, 6, 3, 128, 128)
    # frame 3's flow is the mesh flow source -> clip frame 3; pre = frame 0, post = last frame (5)
    smpl, src = batch["smpl"], batch["source_smpl"]
    src_verts = body(src[:, 75:].contiguous(), src[:, 3:75].contiguous())

    def frame_flow(i):
        return mesh_flow(src_verts, body(smpl[:, i, 75:].contiguous(), smpl[:, i, 3:75].contiguous()), body.faces, src[:, :3], smpl[:, i, :3], 128)

    f3 = frame_flow(3)
    torch.testing.assert_close(inputs.flows[:, 3], f3)
    post = frame_flow(5)
    torch.testing.assert_close(inputs.flow_post, post)
    assert (inputs.flows > -2).any()   # the body covers part of the frame


def test_orthogonal_init_as_the_authors():
    from bdmm_cli.model import ModulatedDeformConv2d
    from bdmm_cli.train.loop import build_networks

    cfg = tiny_config(".", ".", init="orthogonal")
    nets = build_networks(cfg)
    g = nets.G
    convs = [m for m in g.modules() if isinstance(m, torch.nn.Conv2d)]
    for m in convs:
        w = m.weight.detach().flatten(1)
        rows, cols = w.shape
        gram = w @ w.t() if rows <= cols else w.t() @ w
        torch.testing.assert_close(gram, 0.02 ** 2 * torch.eye(min(rows, cols)), atol=1e-7, rtol=1e-4)
        assert torch.count_nonzero(m.bias) == 0
    dmm = [m for m in g.modules() if isinstance(m, ModulatedDeformConv2d)]
    assert dmm and all(m.weight.detach().norm() > 1.0 for m in dmm)     # keeps its standard normal weight
    mod = [m for m in g.modules() if type(m).__name__ == "ModulatedConv2d"]
    assert mod and all(abs(m.weight.detach().norm().item() - 0.02) < 1e-5 for m in mod)   # one direction, norm 0.02
    eq = [m for m in g.modules() if type(m).__name__ == "EqualLinear"]
    assert eq and all(torch.count_nonzero(m.bias) == 0 for m in eq)                       # bias_init 1 overridden
    sn = [m for m in nets.D.modules() if hasattr(m, "weight_orig")]
    assert sn and all(abs(m.weight_orig.detach().norm().item() - 0.02) < 1e-5 for m in sn)
