"""The real pose path of `bdmm animate` once: MediaPipe keypoints + an HMR regressor with random
weights (loaded through `hub.load_pose_regressor`), on a real photo (scikit-image's astronaut,
public domain) and a driving video made from it. Checks the pose cache on the second run and
the "no person in the photo" error."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from animate_helpers import MODEL_SIZE, random_spin, synthetic_body, tiny_generator_dir
from bdmm_cli.errors import InputError
from bdmm_cli.pipeline import AnimateConfig, AnimatePipeline
from bdmm_cli.video import VideoWriter, count_frames

skimage_data = pytest.importorskip("skimage.data")
pytest.importorskip("mediapipe")

N = 6


_random_spin = random_spin


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
            "weights": tiny_generator_dir(root), "smpl": synthetic_body(root), "spin": _random_spin(root / "spin_ckpt.pth")}


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
