"""The sample media in assets/ do what the README's main command needs: one person in full
view in every frame of walk.mp4, a full-body person.jpg, and the waist-up astronaut.jpg
that the photo checks warn about (real MediaPipe detector; random SPIN weights)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bdmm_cli.pose.follow import PersonFollower

ASSETS = Path(__file__).resolve().parents[1] / "assets"
pytest.importorskip("mediapipe")


def test_walk_clip_has_one_person_in_every_frame():
    from bdmm_cli.pose.largest import LargestPersonDetector
    from bdmm_cli.video import iter_frames, probe_video

    follower = PersonFollower()
    with LargestPersonDetector(video=True, follower=follower) as det:
        bodies = [det(frame) for frame in iter_frames(ASSETS / "walk.mp4")]
    assert len(bodies) == probe_video(ASSETS / "walk.mp4").num_frames == 30
    assert all(b is not None for b in bodies)
    assert all((b.keypoints[[0, 11, 14], 2] > 0).all() for b in bodies)  # nose and both ankles: full view
    assert follower.report.people_seen == 1 and follower.report.lost_frames == 0


@pytest.fixture(scope="module")
def estimator(tmp_path_factory):
    from animate_helpers import random_spin

    from bdmm_cli.pose import PoseEstimator
    from bdmm_cli.pose.hmr import load_pose_regressor

    spin = random_spin(tmp_path_factory.mktemp("spin") / "spin_ckpt.pth")
    return PoseEstimator(load_pose_regressor(str(spin)))


def test_person_photo_passes_the_photo_checks(estimator):
    from bdmm_cli.pipeline.animate import photo_warnings
    from bdmm_cli.pose import estimate_image

    posed = estimate_image(ASSETS / "person.jpg", estimator)
    assert posed.pose is not None
    assert photo_warnings(posed, estimator.people_in_last_image()) == []


def test_astronaut_photo_is_waist_up(estimator):
    from bdmm_cli.pipeline.animate import photo_warnings
    from bdmm_cli.pose import estimate_image

    posed = estimate_image(ASSETS / "astronaut.jpg", estimator)
    warnings = photo_warnings(posed, estimator.people_in_last_image())
    assert len(warnings) == 1 and "no feet" in warnings[0]


def test_small_person_and_several_people_warn(estimator):
    """The rule on the person photo's own pose: its box in photo pixels (source_box) is what
    the size check reads; an 80 px tall box warns, and so do two people."""
    import dataclasses

    import numpy as np

    from bdmm_cli.pipeline.animate import MIN_PERSON_PX, photo_warnings
    from bdmm_cli.pose import estimate_image

    posed = estimate_image(ASSETS / "person.jpg", estimator)
    assert posed.source_box[3] - posed.source_box[1] > MIN_PERSON_PX  # 256 px photo, person ~200 px
    small = dataclasses.replace(posed, source_box=np.array([10.0, 10.0, 40.0, 90.0]))
    warnings = photo_warnings(small, 1)
    assert len(warnings) == 1 and "only 80 px tall" in warnings[0]
    warnings = photo_warnings(posed, 2)
    assert len(warnings) == 1 and "2 people" in warnings[0]


def test_readme_main_command_on_the_sample_assets(tmp_path, estimator):
    """The README's main command on assets/ (stand-ins for the downloaded files: tiny generator,
    synthetic SMPL-format body, random SPIN weights; MediaPipe keypoints): exits 0 and writes
    every frame side by side, with no warning about missing people."""
    import json

    from typer.testing import CliRunner

    from animate_helpers import MODEL_SIZE, random_spin, synthetic_body, tiny_generator_dir
    from bdmm_cli.cli import app
    from bdmm_cli.video import count_frames

    out = tmp_path / "walk_animated.mp4"
    result = CliRunner().invoke(app, [
        "animate", str(ASSETS / "person.jpg"), str(ASSETS / "walk.mp4"), "-o", str(out), "--side-by-side",
        "--weights", str(tiny_generator_dir(tmp_path)), "--smpl", str(synthetic_body(tmp_path)),
        "--pose-weights", str(random_spin(tmp_path / "spin.pth")), "--model-size", str(MODEL_SIZE),
        "--device", "cpu", "--no-cache", "--quiet", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["frames"] == 30 == count_frames(out) and summary["size"] == [512, 256]
    assert summary["people_seen"] == 1 and summary["trimmed"] == {"start": None, "end": None}
    assert summary["warnings"] == []
