"""Mode (b): `--checkpoint C --data D` generates the test split (authors' test mode) and scores it.

Everything is tiny and built through the real constructors: a small generator saved in our
folder format, the synthetic body model, a two-video data set in the authors' layout with
its test_list.csv.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio

from tests.metrics_helpers import read_frames, write_frames

S = 128


def _dataset(root, rng):
    from bdmm_cli.dataset.kptsmpl import FramePose, write_kptsmpl
    from bdmm_cli.dataset.layout import TestSequence, write_test_list

    sequences = []
    for v, n in (("a.mp4", 8), ("b.mp4", 6)):
        frames_dir = root / "test" / v / "frames"
        poses_dir = root / "test" / v / "kptsmpls"
        poses_dir.mkdir(parents=True)
        write_frames(frames_dir, [rng.integers(0, 256, (S, S, 3), dtype=np.uint8) for _ in range(n)])
        for i in range(n):
            kp = np.concatenate([rng.uniform(60, 200, (25, 2)), np.ones((25, 1))], 1)
            theta = np.zeros(72)
            theta[0] = np.pi
            theta[3:] = rng.normal(0, 0.1, 69)
            write_kptsmpl(poses_dir / f"frame_{i:05d}.json", FramePose(
                keypoints=kp, bbox_xyxy=np.array([40, 20, 220, 250]), cam=np.array([0.9, 0.0, 0.1]),
                pose_theta=theta, shape_beta=np.zeros(10)))
        frames = sorted(frames_dir.glob("*.png"))
        poses = sorted(poses_dir.glob("*.json"))
        sequences.append(TestSequence(frames[0], poses[0], tuple(frames), tuple(poses)))
    write_test_list(root / "test_list.csv", sequences, root)
    return sequences


def test_checkpoint_mode_generates_and_scores(tmp_path):
    pytest.importorskip("bdmm_cli.model")
    from bdmm_cli.body import write_synthetic_body_model
    from bdmm_cli.model.checkpoint import save_generator
    from bdmm_cli.metrics.evaluate import EvalConfig
    from bdmm_cli.metrics.testsplit import evaluate_checkpoint
    from bdmm_cli.model import BDMMGenerator, GeneratorConfig

    torch.manual_seed(0)
    save_generator(BDMMGenerator(GeneratorConfig(ngf=8, img_f=32, style_dim=32)).eval(), tmp_path / "G")
    body = write_synthetic_body_model(tmp_path / "body.npz")
    _dataset(tmp_path / "data", np.random.default_rng(0))

    result = evaluate_checkpoint(tmp_path / "G", tmp_path / "data", EvalConfig(metrics="ssim,psnr,l1"),
                                 body_model=body, keep=tmp_path / "keep")
    meta = result["meta"]
    assert list(result) == ["ssim", "psnr", "l1", "meta"]
    assert meta["test_sequences"] == 2 and meta["generated_frames"] == 14
    gen_a = read_frames(tmp_path / "keep" / "generated" / "0000_a.mp4")
    assert len(gen_a) == 8  # 8 frames padded to 12 for the windows; duplicates overwrite
    gen = gen_a + read_frames(tmp_path / "keep" / "generated" / "0001_b.mp4")
    gt = read_frames(tmp_path / "data" / "test" / "a.mp4" / "frames") + read_frames(tmp_path / "data" / "test" / "b.mp4" / "frames")
    expected = np.mean([peak_signal_noise_ratio(g, p, data_range=255) for p, g in zip(gen, gt)])
    assert result["psnr"] == pytest.approx(expected)
    assert len({p.tobytes() for p in gen}) > 1  # the generator really ran per frame


def test_checkpoint_mode_errors(tmp_path):
    from bdmm_cli.errors import InputError
    from bdmm_cli.metrics.evaluate import EvalConfig
    from bdmm_cli.metrics.testsplit import evaluate_checkpoint

    with pytest.raises(InputError, match="does not exist"):
        evaluate_checkpoint("G", tmp_path / "missing", EvalConfig(metrics="ssim"))
    (tmp_path / "data").mkdir()
    with pytest.raises(InputError, match="test_list.csv"):
        evaluate_checkpoint("G", tmp_path / "data", EvalConfig(metrics="ssim"))
    with pytest.raises(InputError, match="not found"):
        evaluate_checkpoint("G", "fashionvideo", EvalConfig(metrics="ssim"))
