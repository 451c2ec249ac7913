"""`bdmm eval` on the authors' result strips, and `bdmm eval --paper` on stand-ins of their releases.

The strips are built from frames that are also written as separate files, so every metric on
the strips must equal the same metric on the files (an independent reading of the same pixels)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.models import AlexNet
from typer.testing import CliRunner

import release_helpers as R
from bdmm_cli.cli import app
from bdmm_cli.errors import InputError
from bdmm_cli.metrics.evaluate import EvalConfig, FeatureNetworks, evaluate
from bdmm_cli.metrics.paper import PAPERS
from bdmm_cli.metrics.strips import GEN_PANEL, GT_PANEL, is_strip_folder, strip_videos
from hub_server import local_hub, registry_with_datasets  # noqa: F401 - fixture
from metrics_helpers import random_inception, save_state, save_tiny_i3d
from train_helpers import make_body

runner = CliRunner()
METRICS = ("ssim", "psnr", "l1", "lpips", "fid", "fvd_16f")


@pytest.fixture(scope="module")
def stand_in(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("standin")
    torch.manual_seed(0)
    out = {
        "alexnet": save_state(AlexNet(), root / "alexnet.pth"),
        "inception": save_state(random_inception("torchvision"), root / "inception.pth"),
        "i3d": save_tiny_i3d(root / "i3d.pt"),
    }
    data = R.standin_dataset(root / "src", make_body(root), num_test=1)  # one 16-frame test video: FVD_16f runs
    results = R.standin_results(data, root / "res" / "eval_bdmm_dancefashion_checkpoints")
    out.update(data=data, results=results, pred=results.with_name(results.name + ".pred"),
               gt=results.with_name(results.name + ".gt"))
    return out


@pytest.fixture(scope="module")
def on_strips(stand_in) -> dict:
    """Every metric on the strips, with the data set's FID statistics and FVD real videos."""
    return evaluate(stand_in["results"], None, _config(stand_in), _networks(stand_in))


def _config(s) -> EvalConfig:
    return EvalConfig(metrics="all", protocol="bdmm", device="cpu", fvd_runs=2, fid_stats=s["data"] / "fid_stat.npz",
                      fvd_real=s["data"] / "test_frames", use_cache=False)


def _networks(s) -> FeatureNetworks:
    return FeatureNetworks(inception=s["inception"], lpips_backbone=s["alexnet"], i3d=s["i3d"])


def _net_args(s) -> list[str]:
    return ["--inception", str(s["inception"]), "--alexnet", str(s["alexnet"]), "--i3d", str(s["i3d"])]


def test_strips_are_read_as_panel_3_and_panel_5(stand_in):
    assert is_strip_folder(stand_in["results"]) and not is_strip_folder(stand_in["pred"])
    gen, gt = strip_videos(stand_in["results"])
    assert [v.name for v in gen] == [v.name for v in gt] == ["video_00.mp4"]
    assert gen[0].panel == GEN_PANEL and gt[0].panel == GT_PANEL and gen[0].size == (128, 128)
    # 16 frames per video: the padded duplicates (to 18) overwrote each other
    assert [v.num_frames for v in gen] == [16]
    files = sorted((stand_in["pred"] / "video_00.mp4").glob("*.png"))
    for a, path in zip(gen[0].frames(), files):
        assert np.array_equal(a, np.asarray(Image.open(path).convert("RGB")))
    truth = sorted((stand_in["data"] / "test" / "video_00.mp4" / "frames").glob("*.png"))
    for b, path in zip(gt[0].frames(), truth):  # GT panel = the data set's frame
        assert np.array_equal(b, np.asarray(Image.open(path).convert("RGB")))


def test_eval_on_strips_equals_eval_on_the_same_frames_as_files(stand_in, on_strips):
    on_files = evaluate(stand_in["pred"], stand_in["gt"], _config(stand_in), _networks(stand_in))
    assert on_strips["meta"]["layout"] == "strips" and on_files["meta"]["layout"] == "videos"
    for key in METRICS:
        assert on_strips[key] is not None, key
        assert on_strips[key] == pytest.approx(on_files[key], rel=1e-9, abs=1e-12), key
    assert 0 < on_strips["ssim"] < 1 and on_strips["psnr"] > 20  # noisy copies: close, not equal
    assert on_strips["meta"]["fvd_real"] == str(stand_in["data"] / "test_frames")
    assert on_strips["meta"]["fid_real"] == str(stand_in["data"] / "fid_stat.npz")
    assert on_strips["meta"]["fvd"]["fvd_16f"]["videos_real"] == 1


def test_strip_layout_errors(stand_in, tmp_path):
    cfg = EvalConfig(metrics="l1")
    with pytest.raises(InputError, match="drop --gt"):
        evaluate(stand_in["results"], stand_in["gt"], EvalConfig(metrics="l1", layout="strips"))
    with pytest.raises(InputError, match="not a strip"):
        evaluate(stand_in["data"] / "test_frames", None, EvalConfig(metrics="l1", layout="strips"))
    with pytest.raises(InputError, match="give --gt"):
        evaluate(stand_in["pred"], None, cfg)
    res = runner.invoke(app, ["eval", "-m", "l1", "--pred", str(stand_in["pred"])])
    assert res.exit_code == 1 and "error:" in res.output and "Traceback" not in res.output


def test_cli_strips_with_the_data_sets_statistics(stand_in, tmp_path):
    from bdmm_cli.dataset.download import download_dataset

    download_dataset("fashionvideo", str(stand_in["data"]))
    out = tmp_path / "s.json"
    res = runner.invoke(app, ["eval", "--pred", str(stand_in["results"]), "--data", "fashionvideo", "-m", "fid,fvd",
                              "--fvd-runs", "2", "--json", str(out), *_net_args(stand_in)])
    assert res.exit_code == 0, res.output
    meta = json.loads(out.read_text())["meta"]
    assert meta["fid_real"].endswith("fashionvideo/fid_stat.npz") and meta["fvd_real"].endswith("fashionvideo/test_frames")
    assert meta["layout"] == "strips"


def test_paper_table_downloads_what_is_missing_and_compares(stand_in, on_strips, local_hub, tmp_path, monkeypatch):
    zips = {"fashionvideo": tmp_path / "UBC_fashion_smpl.zip", "fashionvideo-results": tmp_path / "generated.zip"}
    zips["fashionvideo"].write_bytes(R.zip_folder(stand_in["data"]))
    zips["fashionvideo-results"].write_bytes(R.zip_folder(stand_in["results"]))
    monkeypatch.setenv("BDMM_REGISTRY", str(registry_with_datasets(tmp_path, local_hub, zips)))
    args = ["eval", "--paper", "fashionvideo", "--fvd-runs", "2", "--device", "cpu", *_net_args(stand_in)]
    res = runner.invoke(app, args)
    assert res.exit_code == 1 and "--accept-licenses" in res.output and local_hub.count() == 0
    out = tmp_path / "paper.json"
    res = runner.invoke(app, [*args, "--accept-licenses", "--json", str(out)])
    assert res.exit_code == 0, res.output
    assert "license of fashionvideo" in res.output and "license of fashionvideo-results" in res.output
    report = json.loads(out.read_text())
    rows = {r["metric"]: r for r in report["rows"]}
    assert list(rows) == ["ssim", "psnr", "l1", "fid", "lpips", "fvd"]
    paper = PAPERS["fashionvideo"].values
    assert {m: r["paper"] for m, r in rows.items()} == paper == {
        "ssim": 0.918, "psnr": 24.07, "l1": 0.0302, "fid": 14.08, "lpips": 0.0478, "fvd": 148.3}
    # the measured column is `evaluate` on the released strips with the data set's statistics
    direct = on_strips
    for m, r in rows.items():
        if m == "fvd":  # Table 1's FVD is fvd_128f: the 16-frame stand-in video is too short for it
            assert r["key"] == "fvd_128f" and r["released"] is None and r["difference"] is None
            continue
        assert r["released"] == pytest.approx(direct[m], rel=1e-9), m
        assert r["difference"] == pytest.approx(r["released"] - r["paper"]), m
    assert report["eval"]["fvd_16f"]["mean"] == pytest.approx(direct["fvd_16f"]["mean"], rel=1e-9)
    assert report["eval"]["meta"]["protocol"] == "bdmm" and report["eval"]["meta"]["layout"] == "strips"
    for text in ("0.918", "24.07", "148.3", "released images", "difference"):
        assert text in res.output
    # both are installed now: a second run would download nothing
    from bdmm_cli.dataset.download import download_dataset

    n = local_hub.count()
    for name in zips:
        assert download_dataset(name, accept_licenses=True).status == "already installed"
    assert local_hub.count() == n
    # --paper takes no --pred
    res = runner.invoke(app, [*args, "--pred", str(stand_in["results"])])
    assert res.exit_code == 1 and "--paper" in res.output
