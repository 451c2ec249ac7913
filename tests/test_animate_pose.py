"""The real pose path of `bdmm animate` once: MediaPipe keypoints + an HMR regressor with random
weights (loaded through `hub.load_pose_regressor`), on a real photo (scikit-image's astronaut,
public domain) and a driving video made from it. Checks the pose cache on the second run and
the "no person in the photo" error."""

from __future__ import annotations

import numpy as np
import pytest

from animate_helpers import MODEL_SIZE, random_spin, synthetic_body, tiny_generator_dir
from bdmm_cli.errors import InputError
from bdmm_cli.pipeline import AnimateConfig, AnimatePipeline
from bdmm_cli.video import VideoWriter, count_frames

skimage_data = pytest.importorskip("skimage.data")
pytest.importorskip("mediapipe")

N = 6


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    from PIL import Image

    root = tmp_path_factory.mktemp("animate_pose")
    astro = skimage_data.astronaut()
    photo = root / "astronaut.png"
    Image.fromarray(astro).save(photo)
    video = root / "drive.mp4"
    small = np.asarray(Image.fromarray(astro).resize((192, 192)))
    with VideoWriter(video, 10, (192, 192)) as w:
        for i in range(N):
            w.write(np.ascontiguousarray(np.roll(small, 2 * i, axis=1)))
    blank = root / "blank.png"
    Image.fromarray(np.full((160, 120, 3), 128, np.uint8)).save(blank)
    return {"root": root, "photo": photo, "video": video, "blank": blank,
            "weights": tiny_generator_dir(root), "smpl": synthetic_body(root), "spin": random_spin(root / "spin_ckpt.pth")}


def _config(env, **kw):
    return AnimateConfig(weights=str(env["weights"]), smpl=env["smpl"], pose_weights=str(env["spin"]),
                         model_size=MODEL_SIZE, size=MODEL_SIZE, device="cpu", skip_missing=True, **kw)


def _pipeline(env, cfg):
    """The pipeline as the CLI builds it (the regressor through hub.load_pose_regressor)."""
    return AnimatePipeline.from_config(cfg)


def test_real_pose_path_and_pose_cache(env, tmp_path):
    cfg = _config(env)
    pipe = _pipeline(env, cfg)
    first = pipe(env["photo"], env["video"], tmp_path / "a.mp4", cfg)
    assert first.num_frames == N == count_frames(tmp_path / "a.mp4")
    assert first.stats.frames_posed == N and not first.stats.pose_from_cache
    # Second run with other generator settings: the poses come from the pose cache.
    pipe2 = _pipeline(env, cfg)
    second = pipe2(env["photo"], env["video"], tmp_path / "b.mp4", _config(env, overlap=2))
    assert second.stats.pose_from_cache and second.stats.frames_posed == 0
    assert second.num_frames == N == count_frames(tmp_path / "b.mp4")


def test_no_person_in_the_photo(env, tmp_path):
    cfg = _config(env)
    pipe = _pipeline(env, cfg)
    with pytest.raises(InputError, match="no person found in the photo"):
        pipe(env["blank"], env["video"], tmp_path / "a.mp4", cfg)
    assert list(tmp_path.iterdir()) == []


def test_no_person_message_names_the_detector_and_the_other_one(env, tmp_path):
    cfg = _config(env)
    pipe = _pipeline(env, cfg)
    with pytest.raises(InputError, match="MediaPipe Pose found nobody; try --keypoints openpose"):
        pipe(env["blank"], env["video"], tmp_path / "a.mp4", cfg)


def test_summary_timings_people_and_photo_warnings(env, tmp_path):
    """The waist-up astronaut gives the "no feet" warning; the summary has every stage's
    time, the detector and the people seen; its stages add up to about the run's time."""
    from bdmm_cli.pipeline.stream import STAGES

    cfg = _config(env, cache=False)
    pipe = _pipeline(env, cfg)
    result = pipe(env["photo"], env["video"], tmp_path / "a.mp4", cfg)
    summary = result.summary()
    assert set(summary["timings"]) == set(STAGES)
    assert all(v >= 0 for v in summary["timings"].values())
    assert summary["timings"]["load"] > 0 and summary["timings"]["generate"] > 0
    assert summary["timings"]["pose"] > 0 and summary["timings"]["fit"] > 0 and summary["timings"]["decode"] > 0
    assert sum(summary["timings"].values()) <= summary["seconds"] * 1.02 + 0.05
    assert sum(summary["timings"].values()) >= 0.8 * summary["seconds"]
    assert summary["keypoints"].startswith("MediaPipe") and summary["people_seen"] == 1
    assert summary["person_followed"] == 1 and summary["frames"] == N
    assert any("shows no feet" in w for w in summary["warnings"]), summary["warnings"]
    # a second run of the same pipeline reports no load time (loaded once)
    again = pipe(env["photo"], env["video"], tmp_path / "b.mp4", cfg)
    assert again.summary()["timings"]["load"] == 0


def test_cli_json_summary(env, tmp_path):
    import json

    from typer.testing import CliRunner

    from bdmm_cli.cli import app

    out = tmp_path / "a.mp4"
    args = ["animate", str(env["photo"]), str(env["video"]), "-o", str(out), "--weights", str(env["weights"]),
            "--smpl", str(env["smpl"]), "--pose-weights", str(env["spin"]), "--model-size", "128", "--size", "128",
            "--device", "cpu", "--no-cache", "--json", "--quiet"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["output"] == str(out) and summary["frames"] == N == count_frames(out)
    assert summary["people_seen"] == 1 and "generate" in summary["timings"]
    # the preview reports the same way
    result = CliRunner().invoke(app, args[:4] + [str(tmp_path / "p.mp4")] + args[5:] + ["--preview"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["preview"] is True
