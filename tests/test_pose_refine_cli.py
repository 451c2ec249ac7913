"""`--refine auto|on|off` and `--head-filter/--no-head-filter` on `bdmm pose` and `bdmm data prepare`."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch
from pose_helpers import ASTRONAUT
from typer.testing import CliRunner

from bdmm_cli.cli import app
from bdmm_cli.dataset.pose_dir import PosedFrame

runner = CliRunner()


@pytest.fixture(scope="module")
def spin_file(tmp_path_factory):
    from bdmm_cli.pose import HMR

    torch.manual_seed(0)
    hmr = HMR().eval()
    hmr.init_cam.copy_(torch.tensor([[0.9, 0.0, 0.0]]))  # SPIN's mean camera is about this
    path = tmp_path_factory.mktemp("spin") / "spin_ckpt.pth"
    torch.save(hmr.state_dict(), path)
    return path


def install_prior_and_body(tmp_path):
    from bdmm_cli.body import install_body_model, write_synthetic_body_model
    from bdmm_cli.pose.gmm import install_gmm_prior

    rng = np.random.default_rng(0)
    gmm = {"means": rng.normal(0, 0.05, (8, 69)), "covars": np.stack([np.eye(69) * 0.5] * 8),
           "weights": np.full(8, 0.125)}
    with open(tmp_path / "gmm_08.pkl", "wb") as fh:
        pickle.dump(gmm, fh, protocol=2)
    install_gmm_prior(tmp_path / "gmm_08.pkl")
    install_body_model(write_synthetic_body_model(tmp_path / "synthetic.npz"))


def theta(folder):
    return np.array(json.loads((folder / "kptsmpls" / "frame_00000.json").read_text())["pose_theta"])


def test_refine_on_without_the_prior_fails_in_one_line(spin_file, tmp_path):
    res = runner.invoke(app, ["pose", str(ASTRONAUT), "-o", str(tmp_path / "o"), "--spin", str(spin_file),
                              "--refine", "on"])
    assert res.exit_code != 0
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --refine on:") and "gmm_08.pkl" in lines[0]
    assert not (tmp_path / "o").exists()
    res = runner.invoke(app, ["pose", str(ASTRONAUT), "-o", str(tmp_path / "o"), "--spin", str(spin_file),
                              "--refine", "sometimes"])
    assert res.exit_code != 0 and res.output.strip().splitlines() == [
        "error: --refine must be one of auto, on, off, got 'sometimes'"]
    res = runner.invoke(app, ["pose", str(ASTRONAUT), "-o", str(tmp_path / "o"), "--spin", str(spin_file),
                              "--head-filter"])
    assert res.exit_code != 0 and res.output.strip().startswith("error: --head-filter:") and "SMPL" in res.output


@pytest.mark.mediapipe
def test_refine_auto_runs_when_the_prior_is_installed(spin_file, tmp_path):
    plain = runner.invoke(app, ["pose", str(ASTRONAUT), "-o", str(tmp_path / "plain"), "--spin", str(spin_file)])
    assert plain.exit_code == 0, plain.output
    install_prior_and_body(tmp_path)
    args = ["pose", str(ASTRONAUT), "--spin", str(spin_file), "--no-head-filter"]
    auto = runner.invoke(app, args + ["-o", str(tmp_path / "auto")])
    off = runner.invoke(app, args + ["-o", str(tmp_path / "off"), "--refine", "off"])
    assert auto.exit_code == 0 and off.exit_code == 0, auto.output + off.output
    np.testing.assert_array_equal(theta(tmp_path / "off"), theta(tmp_path / "plain"))
    assert not np.allclose(theta(tmp_path / "auto"), theta(tmp_path / "off"), atol=1e-4)  # refined
    cam = [json.loads((tmp_path / d / "kptsmpls" / "frame_00000.json").read_text())["cam"] for d in ("auto", "off")]
    assert cam[0] == cam[1]  # camera fixed


def test_prepare_reports_dropped_frames_apart(tmp_path):
    """prepare_dataset counts frames the head rule dropped separately from frames without anyone."""
    from bdmm_cli.dataset.kptsmpl import FramePose
    from bdmm_cli.dataset.prepare import prepare_dataset
    from bdmm_cli.pose.estimate import HEAD_TOO_SMALL

    (tmp_path / "videos").mkdir()
    (tmp_path / "videos" / "a.mp4").write_bytes(b"")  # only its name is used by this estimate
    pose = FramePose(keypoints=np.ones((25, 3), np.float32), bbox_xyxy=np.array([0, 0, 9, 9], np.float32),
                     cam=np.array([0.9, 0, 0], np.float32), pose_theta=np.zeros(72, np.float32),
                     shape_beta=np.zeros(10, np.float32))
    image = np.zeros((256, 256, 3), np.uint8)

    def estimate(_):
        return [PosedFrame(0, image, pose), PosedFrame(1, image, None), PosedFrame(2, image, None, HEAD_TOO_SMALL),
                PosedFrame(3, image, pose)]

    report = prepare_dataset(tmp_path / "videos", tmp_path / "out", estimate)
    (video,) = report.videos
    assert video.frames == 2 and video.skipped == (1,) and video.dropped == (2,)
    assert sorted(p.name for p in (tmp_path / "out" / "train" / "a.mp4" / "kptsmpls").iterdir()) == [
        "frame_00000.json", "frame_00003.json"]


def test_prepare_refine_on_without_the_prior_fails_before_any_work(spin_file, tmp_path):
    (tmp_path / "videos").mkdir()
    (tmp_path / "videos" / "a.mp4").write_bytes(b"not read")
    res = runner.invoke(app, ["data", "prepare", str(tmp_path / "videos"), "-o", str(tmp_path / "out"),
                              "--spin", str(spin_file), "--refine", "on"])
    assert res.exit_code != 0
    assert res.output.strip().splitlines()[-1].startswith("error: --refine on:")
    assert not (tmp_path / "out").exists()
