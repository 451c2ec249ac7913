"""SPIN/HMR: forward, both official checkpoint layouts (random weights), strict key checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bdmm_cli.errors import CheckpointError
from bdmm_cli.pose.hmr import HMR, load_hmr, load_spin_state_dict, spin_state_dict_keys
from bdmm_cli.pose.rotations import rot6d_to_rotmat, rotmat_to_axis_angle


@pytest.fixture(scope="module")
def source_hmr() -> HMR:
    torch.manual_seed(0)
    m = HMR()
    with torch.no_grad():  # non-trivial buffers so a wrong load is visible
        m.init_pose.copy_(torch.randn(1, 144))
        m.init_shape.copy_(torch.randn(1, 10))
        m.init_cam.copy_(torch.tensor([[0.9, 0.0, 0.1]]))
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.normal_(0, 0.1)
                mod.running_var.uniform_(0.5, 1.5)
    return m.eval()


@pytest.fixture(scope="module")
def target_hmr() -> HMR:
    return HMR().eval()


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(1))


def test_keys_are_spins():
    keys = spin_state_dict_keys()
    assert {"conv1.weight", "bn1.running_mean", "layer4.2.conv3.weight", "layer1.0.downsample.0.weight",
            "fc1.weight", "fc2.bias", "decpose.weight", "decshape.bias", "deccam.weight",
            "init_pose", "init_shape", "init_cam"} <= set(keys)
    assert not any(k.startswith("fc.") for k in keys)  # torchvision's classifier is gone
    with torch.device("meta"):
        shapes = {k: tuple(v.shape) for k, v in HMR().state_dict().items()}
    assert shapes["fc1.weight"] == (1024, 2048 + 144 + 10 + 3)
    assert shapes["decpose.weight"] == (144, 1024) and shapes["init_pose"] == (1, 144)


def test_forward_follows_the_ief_equations(source_hmr, images):
    with torch.no_grad():
        out = source_hmr(images)
        # independent unrolled IEF from the same layers
        feat = source_hmr.features(images)
        pose, shape, cam = (b.expand(1, -1) for b in (source_hmr.init_pose, source_hmr.init_shape, source_hmr.init_cam))
        for _ in range(3):
            h = source_hmr.fc2(source_hmr.fc1(torch.cat([feat, pose, shape, cam], 1)))
            pose, shape, cam = pose + source_hmr.decpose(h), shape + source_hmr.decshape(h), cam + source_hmr.deccam(h)
    torch.testing.assert_close(out.pose_6d, pose)
    torch.testing.assert_close(out.betas, shape)
    torch.testing.assert_close(out.cam, cam)
    rot = rot6d_to_rotmat(pose).view(1, 24, 3, 3)
    torch.testing.assert_close(out.rotmat, rot)
    torch.testing.assert_close(out.pose, rotmat_to_axis_angle(rot).reshape(1, 72))
    assert out.smpl.shape == (1, 85)
    assert torch.isfinite(out.pose).all()


def _roundtrip(source: HMR, target: HMR, checkpoint, images) -> None:
    with torch.no_grad():  # wipe the reused module so a tensor that is not loaded shows
        for t in target.state_dict().values():
            t.zero_()
    load_spin_state_dict(target, checkpoint)
    with torch.no_grad():
        torch.testing.assert_close(target(images).smpl, source(images).smpl, rtol=0, atol=0)


def test_loads_spins_model_checkpoint_layout(source_hmr, target_hmr, images, tmp_path):
    """SPIN's model_checkpoint.pt: a dict with the state dict under "model" (+ optimizer, epoch)."""
    ckpt = {"model": source_hmr.state_dict(), "optimizer": {"state": {}, "param_groups": []}, "epoch": 7,
            "total_step_count": 1000}
    torch.save(ckpt, tmp_path / "model_checkpoint.pt")
    _roundtrip(source_hmr, target_hmr, ckpt, images)
    loaded = load_hmr(tmp_path / "model_checkpoint.pt")  # through torch.load(weights_only=True)
    with torch.no_grad():
        torch.testing.assert_close(loaded(images).smpl, source_hmr(images).smpl, rtol=0, atol=0)


def test_loads_bdmms_flat_layout_and_module_prefix(source_hmr, target_hmr, images, tmp_path):
    flat = source_hmr.state_dict()
    _roundtrip(source_hmr, target_hmr, flat, images)
    _roundtrip(source_hmr, target_hmr, {f"module.{k}": v for k, v in flat.items()}, images)
    torch.save(flat, tmp_path / "spin_ckpt.pth")
    loaded = load_hmr(tmp_path / "spin_ckpt.pth")
    torch.testing.assert_close(loaded.init_pose, source_hmr.init_pose)


def test_old_checkpoint_without_batchnorm_counters_loads(source_hmr, target_hmr, images):
    sd = {k: v for k, v in source_hmr.state_dict().items() if not k.endswith("num_batches_tracked")}
    _roundtrip(source_hmr, target_hmr, sd, images)


def test_wrong_keys_are_named(source_hmr, target_hmr):
    sd = dict(source_hmr.state_dict())
    sd.pop("deccam.weight")
    sd["head.extra"] = torch.zeros(3)
    with pytest.raises(CheckpointError, match=r"missing: deccam\.weight.*unexpected: head\.extra"):
        load_spin_state_dict(target_hmr, sd)
    bad = dict(source_hmr.state_dict())
    bad["decshape.weight"] = torch.zeros(11, 1024)
    with pytest.raises(CheckpointError, match=r"misshaped: decshape\.weight \(file \(11, 1024\)"):
        load_spin_state_dict(target_hmr, bad)
    with pytest.raises(CheckpointError, match="not a SPIN"):
        load_spin_state_dict(target_hmr, {"model": {"conv.weight": torch.zeros(1)}})


def test_unreadable_checkpoint_files(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
        load_hmr(tmp_path / "junk.pt")

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"model": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="pickled objects other than tensors"):  # weights_only refuses them
        load_hmr(tmp_path / "evil.pt")


def test_mean_params_file(tmp_path):
    pose = np.random.default_rng(0).normal(size=144).astype(np.float32)
    np.savez(tmp_path / "smpl_mean_params.npz", pose=pose, shape=np.ones(10), cam=np.array([0.9, 0, 0]))
    m = HMR(mean_params=tmp_path / "smpl_mean_params.npz")
    np.testing.assert_array_equal(m.init_pose.numpy()[0], pose)
    assert m.init_cam[0, 0].item() == pytest.approx(0.9)
