"""The whole stage: photo and video (with frames without anyone), cache, pose folders, CLI.

HMR has random weights (built and saved through the real constructor and loaders); the
keypoints come from the real MediaPipe detector on real photo content.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from pose_helpers import ASTRONAUT, astronaut, make_person_video
from typer.testing import CliRunner

from bdmm_cli.cli import app
from bdmm_cli.pose import (
    HMR,
    PoseConfig,
    PoseEstimator,
    estimate_image,
    estimate_video,
    pose_cache_root,
    read_pose_dir,
    write_pose_dir,
)
from bdmm_cli.pose.detector import MediaPipePoseDetector
from bdmm_cli.errors import InputError

runner = CliRunner()


@pytest.fixture(scope="module")
def hmr() -> HMR:
    torch.manual_seed(0)
    return HMR().eval()


@pytest.fixture(scope="module")
def spin_file(hmr, tmp_path_factory):
    """BDMM's flat spin_ckpt.pth layout, random weights."""
    path = tmp_path_factory.mktemp("spin") / "spin_ckpt.pth"
    torch.save(hmr.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return make_person_video(tmp_path_factory.mktemp("video") / "walk.mp4", empty=(3, 4), frames=7)


@pytest.mark.mediapipe
def test_photo(hmr):
    frame = estimate_image(ASTRONAUT, PoseEstimator(hmr))
    assert frame.index == 0 and frame.image.shape == (256, 256, 3) and frame.pose is not None
    pose = frame.pose
    valid = pose.keypoints[:, 2] > 0
    assert valid.sum() >= 6
    assert (pose.keypoints[valid, :2] >= 0).all() and (pose.keypoints[valid, :2] < 256).all()
    x0, y0, x1, y1 = pose.bbox_xyxy  # the box is the min/max of the detected joints
    assert x0 <= pose.keypoints[valid, 0].min() + 1e-3 and pose.keypoints[valid, 0].max() <= x1 + 1e-3
    assert y0 <= pose.keypoints[valid, 1].min() + 1e-3 and pose.keypoints[valid, 1].max() <= y1 + 1e-3
    assert np.isfinite(pose.cam).all() and pose.pose_theta.shape == (72,) and pose.shape_beta.shape == (10,)
    # the keypoints were mapped into the crop correctly: detecting again on the crop finds
    # the nose and eyes (well-defined points) where the record says
    with MediaPipePoseDetector(video=False) as detector:
        again = detector(frame.image)
    for j in (0, 15, 16):
        assert np.linalg.norm(again.keypoints[j, :2] - pose.keypoints[j, :2]) < 8.0, j  # detector noise
    # the SMPL record is what HMR gives for SPIN's crop of this frame, camera converted
    from bdmm_cli.pose.spin_crop import spin_cam_to_frame, spin_crop

    crop = spin_crop(frame.image, pose.bbox_xyxy)
    with torch.no_grad():
        out = hmr(crop.image[None])
    np.testing.assert_allclose(pose.pose_theta, out.pose[0].numpy(), atol=1e-5)
    cam = spin_cam_to_frame(out.cam.double(), torch.tensor([crop.scale]), torch.tensor(crop.start_pt[None]))
    np.testing.assert_allclose(pose.cam, cam[0].numpy(), rtol=1e-5)


@pytest.mark.mediapipe
def test_photo_without_a_person(hmr):
    frame = estimate_image(np.full((120, 160, 3), 90, np.uint8), PoseEstimator(hmr))
    assert frame.pose is None and frame.image.shape == (256, 256, 3)


@pytest.mark.mediapipe
def test_video_reports_frames_without_anyone_and_caches(hmr, video, tmp_path):
    estimator = PoseEstimator(hmr, config=PoseConfig(batch_size=3))
    stream = estimate_video(video, estimator)
    frames = list(stream)
    assert [f.index for f in frames] == list(range(7))
    assert stream.missing == [3, 4] and not stream.from_cache
    assert [f.pose is None for f in frames] == [False, False, False, True, True, False, False]
    # the person slides right by 8 px a frame: the nose moves right in the crop
    # (the crop window only grows, so it moves at most as much as the person)
    noses = [f.pose.keypoints[0, 0] for f in frames if f.pose is not None]
    assert noses[-1] > noses[0]
    # a second run comes from the cache, identical
    again = estimate_video(video, estimator)
    frames2 = list(again)
    assert again.from_cache and again.missing == [3, 4]
    for a, b in zip(frames, frames2):
        assert a.index == b.index
        np.testing.assert_array_equal(a.image, b.image)
        if a.pose is not None:
            np.testing.assert_array_equal(a.pose.keypoints, b.pose.keypoints)
            np.testing.assert_array_equal(a.pose.pose_theta, b.pose.pose_theta)
    assert len(list(pose_cache_root().iterdir())) == 1
    # other settings -> another cache entry; an interrupted run leaves no entry behind
    partial = estimate_video(video, PoseEstimator(hmr, config=PoseConfig(crop_mode="smoothed")))
    next(partial)
    partial.close()
    assert len(list(pose_cache_root().iterdir())) == 1

    # the authors' folder layout, and reading it back
    out = tmp_path / "poses"
    written, missing = write_pose_dir(iter(frames), out)
    assert (written, missing) == (5, [3, 4])
    names = sorted(p.name for p in (out / "frames").iterdir())
    assert names == [f"frame_{i:05d}.png" for i in (0, 1, 2, 5, 6)]
    assert sorted(p.stem for p in (out / "kptsmpls").iterdir()) == [n[:-4] for n in names]
    back = list(read_pose_dir(out))
    assert [f.index for f in back] == [0, 1, 2, 5, 6]
    np.testing.assert_array_equal(back[-1].image, frames[-1].image)
    np.testing.assert_array_equal(back[-1].pose.cam, frames[-1].pose.cam)
    with pytest.raises(InputError, match="not empty"):
        write_pose_dir(iter(frames), out)
    (out / "frames" / "frame_00000.png").unlink()
    with pytest.raises(InputError, match="do not pair up"):
        read_pose_dir(out)


@pytest.mark.mediapipe
def test_cli_video(spin_file, video, tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(app, ["pose", str(video), "-o", str(out), "--spin", str(spin_file), "--frames", "2:7"])
    assert result.exit_code == 0, result.output
    assert "3-4" in result.output  # the frames without anyone are reported
    assert sorted(p.name for p in (out / "kptsmpls").iterdir()) == ["frame_00002.json", "frame_00005.json",
                                                                     "frame_00006.json"]
    data = json.loads((out / "kptsmpls" / "frame_00005.json").read_text())
    assert len(data["pose_keypoints_2d"]) == 25 and len(data["pose_theta"]) == 72
    result = runner.invoke(app, ["pose", str(video), "-o", str(out), "--spin", str(spin_file)])
    assert result.exit_code != 0 and "--force" in result.output


@pytest.mark.mediapipe
def test_cli_photo_without_a_person_fails_in_one_line(spin_file, tmp_path):
    from PIL import Image

    Image.fromarray(np.full((64, 64, 3), 30, np.uint8)).save(tmp_path / "empty.png")
    result = runner.invoke(app, ["pose", str(tmp_path / "empty.png"), "-o", str(tmp_path / "o"),
                                 "--spin", str(spin_file)])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [f"error: no person found in {tmp_path / 'empty.png'}"]
    assert not (tmp_path / "o").exists()


def test_cli_without_spin_weights_says_which_and_how(tmp_path):
    result = runner.invoke(app, ["pose", str(ASTRONAUT), "-o", str(tmp_path / "o")])
    assert result.exit_code != 0
    line = result.output.strip()
    assert len(line.splitlines()) == 1
    assert "SPIN weights 'spin'" in line and "bdmm weights import" in line and "model_checkpoint.pt" in line


def test_cli_rejects_bad_options(spin_file, tmp_path):
    result = runner.invoke(app, ["pose", str(ASTRONAUT), "-o", str(tmp_path / "o"), "--crop", "wobbly"])
    assert result.exit_code != 0 and "crop_mode" in result.output
    result = runner.invoke(app, ["pose", str(tmp_path / "nope.mp4"), "-o", str(tmp_path / "o")])
    assert result.exit_code != 0 and "not found" in result.output
    for frames, words in (("7:2", "is empty"), ("a:b", "whole numbers"), ("1:2:3", "A:B")):
        result = runner.invoke(app, ["pose", str(ASTRONAUT), "-o", str(tmp_path / "o"), "--frames", frames])
        assert result.exit_code != 0 and words in result.output, result.output
    result = runner.invoke(app, ["pose", str(ASTRONAUT), "-o", str(tmp_path / "o"), "--device", "tpu"])
    assert result.exit_code != 0 and "is not a device" in result.output
    assert not (tmp_path / "o").exists()


class FixedDetector:
    """A detector plugged in through the KeypointDetector interface: a fixed skeleton,
    nobody in frames whose mean brightness is below 10."""

    name = "fixed-test-detector"

    def __call__(self, image):
        from bdmm_cli.pose import Body25

        if image.mean() < 10:
            return None
        kp = np.zeros((25, 3), np.float32)
        kp[[0, 1, 2, 5, 8]] = [(50, 20, 1), (50, 40, 1), (35, 40, 1), (65, 40, 1), (50, 90, 1)]
        return Body25(kp)


def test_stage_streams_with_a_plugged_in_detector(hmr):
    consumed = []

    def frames():
        for i in range(100):
            consumed.append(i)
            yield np.full((120, 100, 3), 0 if i % 3 == 1 else 200, np.uint8)

    est = PoseEstimator(hmr, detector=FixedDetector(), config=PoseConfig(batch_size=2))
    stream = est.process(frames())
    first = [next(stream) for _ in range(3)]
    assert len(consumed) <= 4  # frames are pulled batch by batch, not all at once
    assert [f.index for f in first] == [0, 1, 2] and first[1].pose is None
    # frame -> crop mapping of the fixed skeleton: box height 70 -> window 91 px -> scale 256/91
    kp = first[0].pose.keypoints
    assert kp[1, 1] - kp[0, 1] == pytest.approx(20 * 256 / 91, rel=1e-4)
    assert "fixed-test-detector" in est.detector_name()
