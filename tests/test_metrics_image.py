"""SSIM, PSNR and L1 against scikit-image / numpy, per image and through evaluate()."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.data import astronaut, chelsea
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from bdmm_cli.errors import InputError
from bdmm_cli.metrics.evaluate import EvalConfig, evaluate
from bdmm_cli.metrics.l1 import L1, l1
from bdmm_cli.metrics.psnr import PSNR, psnr
from bdmm_cli.metrics.ssim import SSIM, data_range_for, ssim
from tests.metrics_helpers import noisy, write_frames


def _real_pairs(rng):
    """Real-looking images (skimage's astronaut, chelsea) and degraded versions of them."""
    gts, preds = [], []
    for img in (astronaut(), chelsea()):
        gt = np.asarray(Image.fromarray(img).resize((72, 64), Image.BILINEAR))
        blurred = np.asarray(Image.fromarray(gt).resize((36, 32)).resize((72, 64), Image.BILINEAR))
        gts.append(gt)
        preds.append(noisy([blurred], rng, 12)[0])
    return preds, gts


def _random_pairs(rng):
    gts = [rng.integers(0, 256, (40, 48, 3), dtype=np.uint8) for _ in range(2)]
    # a generated image that does not span the full range, so the two protocols differ
    preds = [np.clip(g * 0.6 + rng.integers(0, 60, g.shape), 0, 255).astype(np.uint8) for g in gts]
    return preds, gts


def _skimage_ssim(pred, gt, protocol):
    data_range = float(pred.max()) - float(pred.min()) if protocol == "bdmm" else 255
    return structural_similarity(
        pred, gt, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
        channel_axis=-1, data_range=data_range,
    )


def _t(img):
    return torch.from_numpy(np.stack(img)).permute(0, 3, 1, 2).float()


@pytest.mark.parametrize("protocol,range_mode", [("bdmm", "pred"), ("standard", "full")])
@pytest.mark.parametrize("kind", ["random", "real"])
def test_ssim_matches_skimage(protocol, range_mode, kind):
    rng = np.random.default_rng(1)
    preds, gts = (_random_pairs if kind == "random" else _real_pairs)(rng)
    ours = ssim(_t(preds), _t(gts), data_range_for(_t(preds), range_mode)).numpy()
    ref = [_skimage_ssim(p, g, protocol) for p, g in zip(preds, gts)]
    np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=1e-12)
    assert SSIM(range_mode)(_t(preds), _t(gts)).numpy() == pytest.approx(ours, abs=1e-12)


def test_ssim_protocols_differ_when_range_is_narrow():
    preds, gts = _random_pairs(np.random.default_rng(2))
    a = ssim(_t(preds), _t(gts), data_range_for(_t(preds), "pred"))
    b = ssim(_t(preds), _t(gts), data_range_for(_t(preds), "full"))
    assert not torch.allclose(a, b)


@pytest.mark.parametrize("kind", ["random", "real"])
def test_psnr_and_l1_match_references(kind):
    rng = np.random.default_rng(3)
    preds, gts = (_random_pairs if kind == "random" else _real_pairs)(rng)
    ours = psnr(_t(preds), _t(gts)).numpy()
    ref = [peak_signal_noise_ratio(g, p, data_range=255) for p, g in zip(preds, gts)]
    np.testing.assert_allclose(ours, ref, rtol=1e-12)
    # authors' formula, written out: 20 log10(255 / sqrt(MSE)) on 0-255 floats
    mse = [np.mean((p.astype(np.float64) - g.astype(np.float64)) ** 2) for p, g in zip(preds, gts)]
    np.testing.assert_allclose(ours, [20 * np.log10(255 / np.sqrt(m)) for m in mse], rtol=1e-12)
    ref_l1 = [np.mean(np.abs((p / 127.5 - 1) - (g / 127.5 - 1))) for p, g in zip(preds, gts)]
    np.testing.assert_allclose(l1(_t(preds), _t(gts)).numpy(), ref_l1, rtol=1e-12)
    assert PSNR()(_t(preds), _t(gts)).numpy() == pytest.approx(ours)
    assert L1()(_t(preds), _t(gts)).numpy() == pytest.approx(ref_l1)


def test_psnr_identical_images_is_inf():
    x = _t([np.full((16, 16, 3), 7, np.uint8)])
    assert torch.isinf(psnr(x, x)).all()


def test_ssim_bad_input():
    x = torch.zeros(1, 3, 8, 8)
    with pytest.raises(InputError, match="at least 11x11"):
        ssim(x, x, 255.0)
    with pytest.raises(InputError):
        ssim(torch.zeros(1, 3, 16, 16), torch.zeros(1, 3, 16, 17), 255.0)


def test_ssim_gradcheck():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 1, 12, 12, dtype=torch.float64, generator=g, requires_grad=True)
    y = torch.rand(1, 1, 12, 12, dtype=torch.float64, generator=g)
    assert torch.autograd.gradcheck(lambda a: ssim(a, y, 1.0), (x,))


@pytest.mark.parametrize("protocol", ["bdmm", "standard"])
def test_evaluate_frames_folders_match_skimage(tmp_path, protocol):
    rng = np.random.default_rng(4)
    p1, g1 = _random_pairs(rng)
    p2, g2 = _real_pairs(rng)
    # different sizes in one folder are fine as long as each pair matches
    preds = [np.asarray(Image.fromarray(p).resize((48, 40))) for p in p2] + p1
    gts = [np.asarray(Image.fromarray(g).resize((48, 40))) for g in g2] + g1
    write_frames(tmp_path / "pred", preds)
    write_frames(tmp_path / "gt", gts)
    result = evaluate(tmp_path / "pred", tmp_path / "gt", EvalConfig(metrics="ssim,psnr,l1", protocol=protocol, batch_size=3))
    assert list(result) == ["ssim", "psnr", "l1", "meta"]
    assert result["ssim"] == pytest.approx(np.mean([_skimage_ssim(p, g, protocol) for p, g in zip(preds, gts)]), abs=1e-10)
    assert result["psnr"] == pytest.approx(np.mean([peak_signal_noise_ratio(g, p, data_range=255) for p, g in zip(preds, gts)]))
    assert result["l1"] == pytest.approx(np.mean([np.mean(np.abs(p / 127.5 - g / 127.5)) for p, g in zip(preds, gts)]))
    assert result["meta"]["protocol"] == protocol
    assert result["meta"]["counts"]["frames_pred"] == 4
