"""Pairing --pred with --gt: the three layouts, and clear errors when they do not pair up."""

from __future__ import annotations

import imageio_ffmpeg
import numpy as np
import pytest

from bdmm_cli.errors import InputError
from bdmm_cli.metrics.evaluate import EvalConfig, evaluate, parse_metrics
from bdmm_cli.metrics.inputs import load_videos, pair_inputs
from tests.metrics_helpers import write_frames


def _frames(n, h=16, w=16, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(n)]


def _write_mp4(path, frames, fps=10):
    h, w = frames[0].shape[:2]
    writer = imageio_ffmpeg.write_frames(str(path), (w, h), fps=fps, codec="libx264",
                                         output_params=["-crf", "0"], macro_block_size=1)
    writer.send(None)
    for f in frames:
        writer.send(np.ascontiguousarray(f))
    writer.close()
    return path


def test_frames_folders_pair_by_name(tmp_path):
    write_frames(tmp_path / "p", _frames(3))
    write_frames(tmp_path / "g", _frames(3, seed=1))
    paired = pair_inputs(tmp_path / "p", tmp_path / "g")
    assert paired.layout == "frames" and paired.num_frames == 3
    assert len(list(paired.frame_pairs())) == 3


def test_different_counts(tmp_path):
    write_frames(tmp_path / "p", _frames(3))
    write_frames(tmp_path / "g", _frames(2))
    with pytest.raises(InputError, match="3 frames and --gt 2"):
        pair_inputs(tmp_path / "p", tmp_path / "g")


def test_different_names(tmp_path):
    write_frames(tmp_path / "p", _frames(2), names=["a.png", "b.png"])
    write_frames(tmp_path / "g", _frames(2), names=["a.png", "c.png"])
    with pytest.raises(InputError, match="only in --pred: b; only in --gt: c"):
        pair_inputs(tmp_path / "p", tmp_path / "g")


def test_different_sizes(tmp_path):
    write_frames(tmp_path / "p", _frames(2, 16, 16))
    write_frames(tmp_path / "g", _frames(2, 16, 20))
    with pytest.raises(InputError, match="frame size differs"):
        pair_inputs(tmp_path / "p", tmp_path / "g")


def test_size_change_inside_a_folder_is_caught_while_reading(tmp_path):
    write_frames(tmp_path / "p", _frames(1, 16, 16) + _frames(1, 20, 20))
    write_frames(tmp_path / "g", _frames(1, 16, 16) + _frames(1, 16, 16))
    with pytest.raises(InputError, match="frame size"):
        evaluate(tmp_path / "p", tmp_path / "g", EvalConfig(metrics="psnr"))


def test_video_folders_pair_by_name(tmp_path):
    for side in ("p", "g"):
        write_frames(tmp_path / side / "clipA", _frames(2))
        write_frames(tmp_path / side / "clipB", _frames(3))
    paired = pair_inputs(tmp_path / "p", tmp_path / "g")
    assert paired.layout == "videos"
    assert [v.name for v in paired.pred] == ["clipA", "clipB"] and paired.num_frames == 5
    write_frames(tmp_path / "g" / "clipC", _frames(1))
    with pytest.raises(InputError, match="2 videos and --gt 3.*only in --gt: clipC"):
        pair_inputs(tmp_path / "p", tmp_path / "g")
    # FID / FVD only: two sets, no pairing (e.g. generated videos vs train_frames/)
    sets = pair_inputs(tmp_path / "p", tmp_path / "g", paired_frames=False)
    assert len(sets.pred) == 2 and len(sets.gt) == 3


def test_video_files(tmp_path):
    frames = _frames(5, 16, 16)
    _write_mp4(tmp_path / "pred.mp4", frames)
    _write_mp4(tmp_path / "gt.mp4", frames)
    _write_mp4(tmp_path / "short.mp4", frames[:4])
    paired = pair_inputs(tmp_path / "pred.mp4", tmp_path / "gt.mp4")
    assert paired.layout == "video" and paired.num_frames == 5
    assert list(paired.pred[0].frames([1, 3]))[1].shape == (16, 16, 3)
    with pytest.raises(InputError, match="5 frames and --gt 4"):
        pair_inputs(tmp_path / "pred.mp4", tmp_path / "short.mp4")
    # only FID/FVD: frame counts need not match
    assert pair_inputs(tmp_path / "pred.mp4", tmp_path / "short.mp4", paired_frames=False).layout == "video"
    # same decoded frames on both sides: L1 is exactly 0
    assert evaluate(tmp_path / "pred.mp4", tmp_path / "gt.mp4", EvalConfig(metrics="l1"))["l1"] == 0.0


def test_layout_errors(tmp_path):
    write_frames(tmp_path / "frames", _frames(2))
    write_frames(tmp_path / "videos" / "v", _frames(2))
    with pytest.raises(InputError, match="folder of frames but --gt is a folder of videos"):
        pair_inputs(tmp_path / "frames", tmp_path / "videos")
    with pytest.raises(InputError, match="does not exist"):
        load_videos(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no frames"):
        load_videos(tmp_path / "empty")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(InputError, match="not a video file"):
        load_videos(tmp_path / "notes.txt")
    write_frames(tmp_path / "mixed", _frames(1))
    write_frames(tmp_path / "mixed" / "sub", _frames(1))
    with pytest.raises(InputError, match="mixes"):
        load_videos(tmp_path / "mixed")
    (tmp_path / "corrupt").mkdir()
    (tmp_path / "corrupt" / "frame_00000.png").write_bytes(b"not a png")
    with pytest.raises(InputError, match="cannot read image"):
        load_videos(tmp_path / "corrupt")
    (tmp_path / "bad.mp4").write_bytes(b"\x00" * 100)
    with pytest.raises(InputError, match="cannot read video"):
        load_videos(tmp_path / "bad.mp4")


def test_metric_names():
    assert parse_metrics("all") == ("ssim", "psnr", "l1", "lpips", "fid", "fvd")
    assert parse_metrics("FVD, ssim") == ("ssim", "fvd")
    with pytest.raises(InputError, match="unknown metric 'ms-ssim'"):
        parse_metrics("ssim,ms-ssim")
    with pytest.raises(InputError, match="unknown protocol"):
        evaluate(".", ".", EvalConfig(metrics="ssim", protocol="tf"))
