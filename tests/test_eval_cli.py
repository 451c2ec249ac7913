"""`bdmm eval` through Typer's CliRunner: table, JSON keys, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torchvision.models import AlexNet
from typer.testing import CliRunner

from bdmm_cli.cli import app
from bdmm_cli.metrics.evaluate import EvalConfig, FeatureNetworks, evaluate
from tests.metrics_helpers import random_inception, save_state, save_tiny_i3d, smooth_video, write_frames

runner = CliRunner()


def _videos(root, lengths, seed):
    rng = np.random.default_rng(seed)
    for i, n in enumerate(lengths):
        write_frames(root / f"v{i}", smooth_video(rng, n, size=32))
    return root


@pytest.fixture()
def weights(tmp_path):
    torch.manual_seed(0)
    return {
        "--alexnet": save_state(AlexNet(), tmp_path / "alexnet.pth"),
        "--inception": save_state(random_inception("torchvision"), tmp_path / "inception.pth"),
        "--i3d": save_tiny_i3d(tmp_path / "i3d.pt"),
    }


def _args(weights):
    return [x for k, v in weights.items() for x in (k, str(v))]


def test_eval_all_metrics_writes_json(tmp_path, weights):
    pred = _videos(tmp_path / "pred", [3, 3], 0)
    gt = _videos(tmp_path / "gt", [3, 3], 1)
    out = tmp_path / "scores.json"
    res = runner.invoke(app, ["eval", "--metric", "all", "--pred", str(pred), "--gt", str(gt),
                              "--json", str(out), "--device", "cpu", "--fvd-runs", "2", *_args(weights)])
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert list(data) == ["ssim", "psnr", "l1", "lpips", "fid", "fvd_16f", "fvd_128f",
                          "fvd_128f_subsample8f", "meta"]
    for key in ("ssim", "psnr", "l1", "lpips", "fid"):
        assert isinstance(data[key], float)
    assert data["fvd_16f"] is None  # 3-frame videos: no 16-frame clip
    assert data["meta"]["protocol"] == "bdmm"
    assert data["meta"]["counts"]["frames_pred"] == 6
    assert {"torch", "bdmm", "numpy"} <= set(data["meta"]["versions"])
    for key in ("ssim", "psnr", "l1", "lpips", "fid", "fvd_16f"):
        assert key in res.output
    # the same numbers as the Python API
    api = evaluate(pred, gt, EvalConfig(metrics="ssim,psnr,l1", protocol="bdmm"))
    assert data["ssim"] == pytest.approx(api["ssim"]) and data["psnr"] == pytest.approx(api["psnr"])

    # an existing --json is not overwritten without --force
    before = out.read_text()
    res = runner.invoke(app, ["eval", "--metric", "l1", "--pred", str(pred), "--gt", str(gt), "--json", str(out)])
    assert res.exit_code != 0 and "already exists" in res.output
    assert out.read_text() == before
    res = runner.invoke(app, ["eval", "--metric", "l1", "--pred", str(pred), "--gt", str(gt),
                              "--json", str(out), "--force"])
    assert res.exit_code == 0 and list(json.loads(out.read_text())) == ["l1", "meta"]


def test_eval_fvd_standard_protocol(tmp_path):
    weights = {"--i3d": save_tiny_i3d(tmp_path / "i3d.pt")}
    pred = _videos(tmp_path / "pred", [16, 18, 17], 2)
    gt = _videos(tmp_path / "gt", [16, 20, 17], 3)
    out = tmp_path / "fvd.json"
    res = runner.invoke(app, ["eval", "-m", "fvd,psnr", "--pred", str(pred), "--gt", str(gt), "--protocol",
                              "standard", "--json", str(out), "--i3d", str(weights["--i3d"]), "--seed", "3"])
    # psnr needs equal frame counts per video pair
    assert res.exit_code == 1 and "frames" in res.output
    res = runner.invoke(app, ["eval", "-m", "fvd", "--pred", str(pred), "--gt", str(gt), "--protocol",
                              "standard", "--json", str(out), "--i3d", str(weights["--i3d"]), "--seed", "3"])
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert list(data) == ["fvd_16f", "meta"]
    api = evaluate(pred, gt, EvalConfig(metrics="fvd", protocol="standard"), FeatureNetworks(i3d=weights["--i3d"]))
    assert data["fvd_16f"]["mean"] == pytest.approx(api["fvd_16f"]["mean"])
    assert data["fvd_16f"]["std"] == 0.0


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--metric", "ssim,bogus"], "unknown metric"),
        (["--protocol", "tf"], "unknown protocol"),
        (["--checkpoint", "x"], "--checkpoint and --data go together"),
    ],
)
def test_eval_errors_are_one_line(tmp_path, extra, message):
    write_frames(tmp_path / "p", [np.zeros((16, 16, 3), np.uint8)])
    write_frames(tmp_path / "g", [np.zeros((16, 16, 3), np.uint8)])
    args = ["eval", "--pred", str(tmp_path / "p"), "--gt", str(tmp_path / "g")]
    if extra[0] == "--checkpoint":
        args = ["eval"]
    res = runner.invoke(app, args + extra)
    assert res.exit_code != 0
    assert "error:" in res.output and message in res.output
    assert "Traceback" not in res.output


def test_eval_mismatched_folders(tmp_path):
    write_frames(tmp_path / "p", [np.zeros((16, 16, 3), np.uint8)] * 2)
    write_frames(tmp_path / "g", [np.zeros((16, 16, 3), np.uint8)])
    res = runner.invoke(app, ["eval", "-m", "ssim", "--pred", str(tmp_path / "p"), "--gt", str(tmp_path / "g")])
    assert res.exit_code == 1
    assert "error: --pred has 2 frames and --gt 1" in " ".join(res.output.split())


def test_eval_help_has_examples():
    res = runner.invoke(app, ["eval", "--help"])
    assert res.exit_code == 0
    assert "bdmm eval --metric all --pred results/ --gt test_frames/" in res.output
    assert "--protocol" in res.output and "--json" in res.output
