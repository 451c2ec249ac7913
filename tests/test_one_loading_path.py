"""VGG19 and the metric networks take the one loading path of G, D, D_V, SPIN and OpenPose:
`hub.resolve_weights` (so a folder in our format works, and a missing path is one error),
`state_dict.read_checkpoint_file` (pickled code refused) and `state_dict.load_strict`."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file
from torchvision.models import AlexNet

from bdmm_cli.errors import CheckpointError, InputError
from bdmm_cli.metrics.fvd import load_i3d
from bdmm_cli.metrics.lpips import load_lpips
from bdmm_cli.train.losses import VGG19Features, load_vgg19


class _Payload:
    """A pickled object whose unpickling would run code (print): never allowed."""

    def __reduce__(self):
        return (print, ("pickled code ran",))


def _vgg(seed: int = 3) -> VGG19Features:
    torch.manual_seed(seed)
    net = VGG19Features(width_divisor=16)
    for p in net.parameters():
        p.normal_()
    return net


def test_vgg19_from_a_folder_in_our_format(tmp_path):
    net = _vgg()
    folder = tmp_path / "vgg19"
    folder.mkdir()
    # torchvision's whole file: features (more layers than the losses use) and a classifier
    sd = {f"features.{k}": v for k, v in net.features.state_dict().items()}
    sd["classifier.0.weight"] = torch.zeros(2, 2)
    save_file(sd, str(folder / "model.safetensors"))
    loaded = load_vgg19(str(folder), width_divisor=16)
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), net.state_dict().values()))
    assert not any(p.requires_grad for p in loaded.parameters()) and not loaded.training
    x = torch.rand(1, 3, 32, 32)
    assert all(torch.equal(loaded(x)[k], net(x)[k]) for k in ("relu1_1", "relu3_2"))


def test_vgg19_file_missing_a_tensor_or_with_pickled_code_or_absent(tmp_path, capsys):
    sd = dict(_vgg().features.state_dict())
    del sd["2.bias"]
    torch.save(sd, tmp_path / "short.pth")
    with pytest.raises(CheckpointError, match=r"does not fit VGG19: 1 missing: 2\.bias"):
        load_vgg19(str(tmp_path / "short.pth"), width_divisor=16)
    torch.save({"0.weight": _Payload()}, tmp_path / "evil.pth")
    with pytest.raises(CheckpointError, match="refuses to run pickled code"):
        load_vgg19(str(tmp_path / "evil.pth"), width_divisor=16)
    assert "pickled code ran" not in capsys.readouterr().out
    with pytest.raises(InputError, match="not found"):
        load_vgg19(str(tmp_path / "absent.pth"))


def test_metric_networks_from_a_folder_and_refusing_pickled_code(tmp_path):
    torch.manual_seed(0)
    alex = AlexNet().eval()
    folder = tmp_path / "alexnet"
    folder.mkdir()
    save_file(alex.state_dict(), str(folder / "model.safetensors"))
    linear = {f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1) for i, c in enumerate((64, 192, 384, 256, 256))}
    ours = load_lpips(folder, linear)
    theirs = load_lpips(alex, linear)
    x, y = torch.rand(2, 1, 3, 64, 64) * 2 - 1
    assert torch.equal(ours(x, y), theirs(x, y))

    torch.save({"features.0.weight": _Payload()}, tmp_path / "evil.pth")
    with pytest.raises(CheckpointError, match="refuses to run pickled code"):
        load_lpips(tmp_path / "evil.pth", linear)
    with pytest.raises(InputError, match="not found"):
        load_i3d(tmp_path / "absent.pt")
