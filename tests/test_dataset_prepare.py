"""`bdmm data prepare` end to end on real video: MediaPipe keypoints, the crop, HMR (random
weights: SPIN's are not reachable here), written in the official layout and read back."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from bdmm_cli.cli import app
from bdmm_cli.dataset.kptsmpl import read_kptsmpl
from bdmm_cli.dataset.layout import OfficialDataset, read_test_list


def _video(path, frames=4, shift=3):
    from skimage import data

    from bdmm_cli.video import VideoWriter

    img = data.astronaut()[:256, :256]   # public domain, a waist-up person
    with VideoWriter(path, fps=10, size=(256, 256)) as w:
        for i in range(frames):
            w.write(np.ascontiguousarray(np.roll(img, i * shift, axis=1)))


@pytest.mark.mediapipe
def test_prepare_cli_writes_a_trainable_layout(tmp_path, monkeypatch):
    from bdmm_cli.pose.hmr import HMR

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    (tmp_path / "videos" / "train").mkdir(parents=True)
    (tmp_path / "videos" / "test").mkdir()
    _video(tmp_path / "videos" / "train" / "a.mp4")
    _video(tmp_path / "videos" / "test" / "b.mp4", shift=2)
    torch.manual_seed(0)
    torch.save(HMR().state_dict(), tmp_path / "spin.pt")
    out = tmp_path / "data"
    result = CliRunner().invoke(app, ["data", "prepare", str(tmp_path / "videos"), "-o", str(out),
                                      "--spin", str(tmp_path / "spin.pt")])
    assert result.exit_code == 0, result.output
    assert "train/a.mp4: 4 frames" in result.output
    (train,) = OfficialDataset(out, "train").videos
    assert train.name == "a.mp4" and len(train) == 4
    pose = read_kptsmpl(train.pose_paths[0])
    assert pose.keypoints.shape == (25, 3) and pose.pose_theta.shape == (72,)
    from PIL import Image

    assert Image.open(train.frame_paths[0]).size == (256, 256)
    (seq,) = read_test_list(out / "test_list.csv")
    assert seq.ref_frame == out / "test" / "b.mp4" / "frames" / "frame_00000.png" and len(seq.gen_frames) == 4
    # nothing the user had is overwritten silently
    again = CliRunner().invoke(app, ["data", "prepare", str(tmp_path / "videos"), "-o", str(out),
                                     "--spin", str(tmp_path / "spin.pt")])
    assert again.exit_code == 1 and "not empty" in again.output
