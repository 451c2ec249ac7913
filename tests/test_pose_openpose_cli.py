"""`--keypoints auto|openpose|mediapipe` end to end: an OpenPose file in the authors' layout is
installed through the weights registry (a local HTTP server stands in for the download), then
`bdmm pose`, `bdmm animate` and `bdmm data prepare` run the real OpenPose network on it.

The installed file has the authors' exact keys and shapes, with hand-set weights that make
the network find bright dots (tests/openpose_helpers.dot_detector_state_dict), so the videos
here (a column of white dots) yield people; random weights would find nobody.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from animate_helpers import MODEL_SIZE, random_spin, synthetic_body, tiny_generator_dir
from bdmm_cli.cli import app
from hub_server import local_hub  # noqa: F401  (fixture)
from openpose_helpers import StandInNet, dot_detector_state_dict, skeleton
from weights_helpers import write_registry

runner = CliRunner()
N = 3


def dots_frame(t: int) -> np.ndarray:
    img = np.zeros((192, 192, 3), np.uint8)
    for i in range(5):
        cv2.circle(img, (90 + 2 * t, 40 + 26 * i), 3, (255, 255, 255), -1)
    return img


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    from PIL import Image

    from bdmm_cli.video import VideoWriter

    root = tmp_path_factory.mktemp("openpose_cli")
    video = root / "dots.mp4"
    with VideoWriter(video, 10, (192, 192)) as w:
        for t in range(N):
            w.write(dots_frame(t))
    photo = root / "dots.png"
    Image.fromarray(dots_frame(0)).save(photo)
    spin = random_spin(root / "spin_ckpt.pth")  # positive camera scales: usable fits
    weights = root / "openpose_body25.pth"
    torch.save(dot_detector_state_dict(), weights)
    return {"root": root, "video": video, "photo": photo, "spin": spin, "openpose": weights}


@pytest.fixture
def registry(local_hub, media, tmp_path, monkeypatch):  # noqa: F811
    """A registry whose openpose-body25 entry downloads the file from the local server."""
    data = media["openpose"].read_bytes()
    url = local_hub.add_static("openpose_body25.pth", data)
    path = write_registry(tmp_path / "registry.toml", repo="test/bdmm", revision="main", entries={
        "openpose-body25": {"kind": "openpose_body25", "source": "url", "url": url, "filename": "openpose_body25.pth",
                            "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)},
    })
    monkeypatch.setenv("BDMM_REGISTRY", str(path))
    for var in ("HF_HUB_OFFLINE", "BDMM_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    return path


def install() -> None:
    result = runner.invoke(app, ["weights", "download", "openpose-body25"])
    assert result.exit_code == 0, result.output


@pytest.mark.skipif(importlib.util.find_spec("mediapipe") is None, reason="needs bdmm[mediapipe] (Python <= 3.12)")
def test_auto_is_mediapipe_until_openpose_is_installed(registry):
    from bdmm_cli.pose.detector import installed_openpose_weights, load_keypoint_model, resolve_keypoints

    assert installed_openpose_weights() is None
    assert resolve_keypoints("auto") == "mediapipe"
    assert load_keypoint_model("auto").kind == "mediapipe"
    install()
    assert installed_openpose_weights() is not None
    assert resolve_keypoints("auto") == "openpose"
    model = load_keypoint_model("auto")
    assert model.kind == "openpose" and "OpenPose" in model.description
    assert resolve_keypoints("mediapipe") == "mediapipe"  # still selectable


def test_pose_video_with_openpose(registry, media, tmp_path):
    install()
    out = tmp_path / "poses"
    result = runner.invoke(app, ["pose", str(media["video"]), "-o", str(out), "--spin", str(media["spin"]),
                                 "--keypoints", "openpose", "--no-cache"])
    assert result.exit_code == 0, result.output
    assert "keypoints: OpenPose BODY_25" in result.output
    jsons = sorted((out / "kptsmpls").glob("*.json"))
    assert len(jsons) == N
    kp = np.array(json.loads(jsons[0].read_text())["pose_keypoints_2d"]).reshape(25, 3)
    assert (kp[:, 2] > 0).sum() >= 3
    # auto now picks OpenPose too, and says so
    result = runner.invoke(app, ["pose", str(media["photo"]), "-o", str(tmp_path / "photo"), "--spin", str(media["spin"])])
    assert result.exit_code == 0, result.output
    assert "keypoints: OpenPose BODY_25" in result.output


def test_openpose_not_installed_is_one_clear_line(media, tmp_path):
    # the project's registry: openpose-body25 is not downloadable (published = false), nothing installed
    result = runner.invoke(app, ["pose", str(media["video"]), "-o", str(tmp_path / "o"), "--spin", str(media["spin"]),
                                 "--keypoints", "openpose"])
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: OpenPose BODY_25 weights") and "bdmm setup" in lines[0]
    result = runner.invoke(app, ["pose", str(media["video"]), "-o", str(tmp_path / "o"), "--spin", str(media["spin"]),
                                 "--keypoints", "bogus"])
    assert result.exit_code != 0 and result.output.strip().splitlines() == [
        "error: --keypoints must be one of auto, openpose, mediapipe, dwpose, not 'bogus'"]
    assert not (tmp_path / "o").exists()
    result = runner.invoke(app, ["animate", str(media["photo"]), str(media["video"]), "-o", str(tmp_path / "a.mp4"),
                                 "--keypoints", "openpos"])
    assert result.exit_code != 0 and result.output.strip().splitlines() == [
        "error: --keypoints must be one of auto, openpose, mediapipe, dwpose, got 'openpos'"]


def test_animate_with_openpose(registry, media, tmp_path):
    install()
    out = tmp_path / "out.mp4"
    result = runner.invoke(app, [
        "animate", str(media["photo"]), str(media["video"]), "-o", str(out), "--keypoints", "openpose",
        "--weights", str(tiny_generator_dir(tmp_path)), "--smpl", str(synthetic_body(tmp_path)),
        "--pose-weights", str(media["spin"]), "--model-size", str(MODEL_SIZE), "--size", str(MODEL_SIZE),
        "--device", "cpu", "--skip-missing", "--no-cache",
    ])
    assert result.exit_code == 0, result.output
    assert "keypoints: OpenPose BODY_25" in result.output
    from bdmm_cli.video import count_frames

    assert count_frames(out) == N


def test_data_prepare_with_openpose(registry, media, tmp_path):
    install()
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "dots.mp4").write_bytes(media["video"].read_bytes())
    result = runner.invoke(app, ["data", "prepare", str(videos), "-o", str(tmp_path / "data"), "--spin",
                                 str(media["spin"]), "--keypoints", "openpose"])
    assert result.exit_code == 0, result.output
    assert "keypoints: OpenPose BODY_25" in result.output
    assert len(list((tmp_path / "data").rglob("kptsmpls/*.json"))) == N


# ------------------------------------------------------------------------------------------
# the stage with OpenPose
# ------------------------------------------------------------------------------------------

def test_stage_batches_openpose_and_keys_the_cache_on_it():
    from bdmm_cli.pose import HMR, PoseConfig, PoseEstimator
    from bdmm_cli.pose.openpose import OpenPoseBody25

    hw = (240, 320)
    seq = [[skeleton(150.3 + 3 * t, 20.2, 200)] for t in range(5)]
    net = StandInNet(seq, hw)
    torch.manual_seed(0)
    hmr = HMR().eval()
    est = PoseEstimator(hmr, config=PoseConfig(batch_size=2), openpose=net)
    frames = list(est.process(iter([StandInNet.frame(t, hw) for t in range(5)]), video=True))
    assert net.calls == [2, 2, 1]  # the network ran on batches of frames
    assert [f.pose is not None for f in frames] == [True] * 5
    mediapipe = PoseEstimator(hmr, config=PoseConfig(batch_size=2))
    assert est.fingerprint() != mediapipe.fingerprint()
    a, b = OpenPoseBody25(), OpenPoseBody25()
    assert PoseEstimator(hmr, openpose=a).fingerprint() != PoseEstimator(hmr, openpose=b).fingerprint()
    assert est.keypoints_description == "OpenPose BODY_25"


def test_stage_does_not_smooth_openpose_keypoints_twice():
    """The stage with OpenPose equals a stage that only crops the video detector's output."""
    from bdmm_cli.pose import HMR, PoseConfig, PoseEstimator
    from bdmm_cli.pose.openpose import OpenPoseDetector

    class Plain:  # the same detector, hidden behind a plain callable (no smoothing flag)
        name = "plain"

        def __init__(self, det):
            self.det = det

        def __call__(self, image):
            return self.det(image)

    hw = (240, 320)
    seq = [[skeleton(150.3 + 6 * t, 20.2 + 2 * t, 200)] for t in range(5)]
    frames = [StandInNet.frame(t, hw) for t in range(5)]
    torch.manual_seed(0)
    hmr = HMR().eval()
    ours = PoseEstimator(hmr, config=PoseConfig(smooth_smpl=False), openpose=StandInNet(seq, hw))
    plain = PoseEstimator(hmr, detector=Plain(OpenPoseDetector(StandInNet(seq, hw), video=True)),
                          config=PoseConfig(smooth_keypoints=False, smooth_smpl=False))
    a = list(ours.process(iter(frames), video=True))
    b = list(plain.process(iter(frames), video=True))
    for fa, fb in zip(a, b):
        np.testing.assert_array_equal(fa.pose.keypoints, fb.pose.keypoints)
        np.testing.assert_array_equal(fa.pose.bbox_xyxy, fb.pose.bbox_xyxy)
    # and the detector's own smoothing is on: frame 2 differs from the raw single-image result
    raw = OpenPoseDetector(StandInNet(seq, hw), video=False)(frames[2])
    smoothed = OpenPoseDetector(StandInNet(seq, hw), video=True).detect_batch(frames[:3])[2]
    assert not np.allclose(raw.keypoints, smoothed.keypoints)
