"""The pose cache on hostile disks (issue 16 rows 5, 7 and 8).

HMR has random weights through the real constructor; the keypoints come from a detector
plugged in through the KeypointDetector interface (MediaPipe is not needed for the cache).
"""

from __future__ import annotations

import os
import subprocess
import warnings

import numpy as np
import pytest
import torch

from bdmm_cli.errors import BdmmWarning
from bdmm_cli.pose import HMR, Body25, PoseConfig, PoseEstimator, estimate_video, pose_cache_root
from media import make_test_video, small_tmpfs


class FixedDetector:
    name = "fixed-test-detector"

    def __call__(self, image):
        kp = np.zeros((25, 3), np.float32)
        kp[[0, 1, 2, 5, 8]] = [(60, 20, 1), (60, 40, 1), (45, 40, 1), (75, 40, 1), (60, 100, 1)]
        return Body25(kp)


@pytest.fixture(scope="module")
def estimator():
    torch.manual_seed(0)
    return PoseEstimator(HMR().eval(), detector=FixedDetector(), config=PoseConfig(batch_size=8))


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return make_test_video(tmp_path_factory.mktemp("v") / "v.mp4", frames=4, size=(128, 128), audio=False)


@pytest.fixture(scope="module")
def reference(video, estimator):
    return list(estimate_video(video, estimator, use_cache=False))


def _run(video, estimator):
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        stream = estimate_video(video, estimator)
        frames = list(stream)
    notes = [str(w.message) for w in seen if issubclass(w.category, BdmmWarning)]
    return frames, stream.from_cache, notes


def _same(a, b):
    assert [f.index for f in a] == [f.index for f in b]
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.image, y.image)
        np.testing.assert_array_equal(x.pose.pose_theta, y.pose.pose_theta)


def test_damaged_cache_frame_is_discarded_and_recomputed(video, estimator, reference):
    first, cached, notes = _run(video, estimator)
    _same(reference, first)
    assert not cached and notes == []
    (entry,) = [p for p in pose_cache_root().iterdir() if not p.name.startswith(".")]
    png = entry / "frames" / "frame_00002.png"
    data = png.read_bytes()
    png.write_bytes(data[: len(data) // 2])  # a disk error, a killed copy
    again, cached, notes = _run(video, estimator)
    _same(first, again)
    assert cached and len(notes) == 1 and "damaged (frame 2)" in notes[0] and "computed again" in notes[0]
    third, cached, notes = _run(video, estimator)  # the entry was rebuilt
    _same(first, third)
    assert cached and notes == []


def test_damaged_cache_json_is_recomputed(video, estimator, reference):
    first, _, _ = _run(video, estimator)
    (entry,) = [p for p in pose_cache_root().iterdir() if not p.name.startswith(".")]
    (entry / "kptsmpls" / "frame_00000.json").write_text("{not json")
    again, cached, notes = _run(video, estimator)
    _same(first, again)
    assert len(notes) == 1 and "damaged (frame 0)" in notes[0]


@pytest.mark.parametrize("kind", ["full", "read-only"])
def test_unwritable_cache_is_skipped_with_one_warning(tmp_path, monkeypatch, video, estimator, reference, kind):
    with small_tmpfs(tmp_path / "cache", "24k") as disk:
        if kind == "read-only":
            subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        monkeypatch.setenv("BDMM_CACHE_DIR", str(disk / "bdmm"))
        if kind == "full":
            (disk / "bdmm" / "pose").mkdir(parents=True)
        frames, cached, notes = _run(video, estimator)
        _same(reference, frames)
        assert not cached and len(notes) == 1, notes
        reason = "No space left on device" if kind == "full" else "Read-only file system"
        assert reason in notes[0] and "--no-cache" in notes[0]
        if kind == "full":
            assert os.listdir(disk / "bdmm" / "pose") == []  # the partial entry is gone


def test_killed_runs_partial_entry_is_swept(video, estimator):
    import signal
    import sys
    import textwrap
    from pathlib import Path

    script = textwrap.dedent("""
        import sys, torch
        sys.path[:0] = [sys.argv[2], sys.argv[2] + "/tests"]
        from test_pose_cache_robust import FixedDetector
        from bdmm_cli.pose import HMR, PoseConfig, PoseEstimator, estimate_video
        torch.manual_seed(0)
        est = PoseEstimator(HMR().eval(), detector=FixedDetector(), config=PoseConfig(batch_size=8))
        stream = estimate_video(sys.argv[1], est)
        next(stream)
        print("started", flush=True)
        import time; time.sleep(600)
    """)
    repo = str(Path(__file__).resolve().parents[1])
    proc = subprocess.Popen([sys.executable, "-c", script, str(video), repo], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": repo})
    assert proc.stdout.readline().strip() == "started"
    assert len([p for p in pose_cache_root().iterdir() if ".part" in p.name]) == 1
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    frames, _, _ = _run(video, estimator)
    names = [p.name for p in pose_cache_root().iterdir()]
    assert len(names) == 1 and not names[0].startswith(".")  # the complete entry only
