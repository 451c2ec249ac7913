"""LPIPS (AlexNet, v0.1) equals the `lpips` package given the same backbone weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.data import astronaut
from torchvision.models import AlexNet

from bdmm_cli.errors import CheckpointError, InputError
from bdmm_cli.metrics.lpips import LPIPS, load_lpips

lpips_pkg = pytest.importorskip("lpips")


def _reference(alexnet: AlexNet):
    """lpips.LPIPS with its shipped linear layers and our random AlexNet copied in."""
    ref = lpips_pkg.LPIPS(net="alex", version="0.1", pretrained=True, pnet_rand=True, verbose=False).eval()
    feats = alexnet.features
    for slice_ in (ref.net.slice1, ref.net.slice2, ref.net.slice3, ref.net.slice4, ref.net.slice5):
        for idx, module in slice_.named_children():
            if isinstance(module, torch.nn.Conv2d):
                module.load_state_dict(feats[int(idx)].state_dict())
    return ref


def _images():
    g = torch.Generator().manual_seed(0)
    rand = torch.rand(2, 3, 64, 64, generator=g) * 2 - 1
    astro = np.array(Image.fromarray(astronaut()).resize((64, 64), Image.BILINEAR))
    a = torch.from_numpy(astro).permute(2, 0, 1)[None].float() / 127.5 - 1
    b = (a + 0.2 * torch.randn(a.shape, generator=g)).clamp(-1, 1)
    return torch.cat([rand[:1], a]), torch.cat([rand[1:], b])


@pytest.fixture(scope="module")
def alexnet():
    torch.manual_seed(0)
    return AlexNet().eval()


def test_lpips_equals_lpips_package(tmp_path, alexnet):
    torch.save(alexnet.state_dict(), tmp_path / "alexnet.pth")
    ours = load_lpips(tmp_path / "alexnet.pth", "lpips-alex")  # shipped linear layers
    ref = _reference(alexnet)
    x, y = _images()
    with torch.no_grad():
        expected = ref(x, y).flatten()
    got = ours(x, y)
    assert got.shape == (2,)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-7)
    assert (got > 0).all()
    assert ours(x, x).abs().max() < 1e-6


def test_lpips_from_module_and_state_dict(alexnet):
    linear = {f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1) for i, c in enumerate((64, 192, 384, 256, 256))}
    net = load_lpips(alexnet, linear)
    x, y = _images()
    assert torch.isfinite(net(x, y)).all()
    bad = dict(linear)
    bad["lin2.model.1.weight"] = torch.rand(1, 5, 1, 1)
    with pytest.raises(CheckpointError, match="lin2"):
        LPIPS(alexnet.features, bad)
    with pytest.raises(InputError, match="at least 31x31"):
        net(x[..., :30, :30], y[..., :30, :30])


def test_lpips_wrong_backbone_file(tmp_path):
    torch.save({"features.0.weight": torch.zeros(3)}, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match="not AlexNet weights"):
        load_lpips(tmp_path / "bad.pth", "lpips-alex")
