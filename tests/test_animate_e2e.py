"""`bdmm animate` end to end on CPU with the stand-ins (tiny generator, synthetic body, pose folders).

Independent expectations: the driving video's own frame count / fps / audio (ffmpeg), the
window schedule of the authors' test list, the cross-fade formula applied to the raw
window outputs kept in the run store, and an uninterrupted run for the resumed one.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from typer.testing import CliRunner

from animate_helpers import MODEL_SIZE, animate_args, make_env, make_pose_dir
from bdmm_cli.cli import app
from bdmm_cli.errors import BdmmWarning
from bdmm_cli.pipeline import AnimateConfig, AnimatePipeline, RunStore, WindowSchedule, animate
from bdmm_cli.window.schedule import blend_overlap
from bdmm_cli.video import count_frames, iter_frames, probe_video
from media import make_test_video

N = 13
FPS = 12.5


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return make_env(tmp_path_factory.mktemp("animate_env"), N, FPS)


@pytest.fixture(scope="module")
def pipe(env):
    cfg = _config(env)
    return AnimatePipeline.from_config(cfg)


def _config(env, **kw) -> AnimateConfig:
    base = dict(weights=str(env["weights"]), smpl=env["smpl"], poses=env["poses"], source_pose=env["source_pose"],
                model_size=MODEL_SIZE, size=MODEL_SIZE, device="cpu")
    base.update(kw)
    return AnimateConfig(**base)


def _decode(path):
    return np.stack(list(iter_frames(path))).astype(np.float32)


def test_cli_window_mode_keeps_count_fps_audio_and_drops_padding(env, tmp_path):
    out = tmp_path / "out.mp4"
    res = CliRunner().invoke(app, animate_args(tmp_path, env, out))
    assert res.exit_code == 0, res.output
    src = probe_video(env["video"])
    info = probe_video(out)
    assert count_frames(out) == count_frames(env["video"]) == N  # 13 frames with T=6: 3 windows, 5 padded dropped
    assert info.fps == src.fps == FPS
    assert info.has_audio and info.codec == "h264"
    assert (info.width, info.height) == (MODEL_SIZE, MODEL_SIZE)
    # The encoded frames are the generator's window outputs (kept in the run store) in order.
    store = _only_store()
    raw = np.concatenate([store.load_frames(i) for i in range(store.windows_done())])
    assert store.windows_done() == 3 and raw.shape[0] == N
    decoded = _decode(out)
    assert np.abs(decoded - raw.astype(np.float32)).mean() < 6.0  # H.264 error only
    assert raw.std() > 5  # the generator made pictures, not a constant


def _only_store():
    from bdmm_cli.paths import cache_dir

    runs = [p for p in (cache_dir() / "runs").iterdir() if p.is_dir()]
    assert len(runs) == 1
    import json

    doc = json.loads((runs[0] / "manifest.json").read_text())["key_doc"]
    store = RunStore(doc)
    assert store.dir == runs[0]
    return store


def test_overlap_mode_blends_raw_window_outputs(env, pipe, tmp_path):
    cfg = _config(env, overlap=2, batch=2)
    out = tmp_path / "overlap.mp4"
    result = pipe(env["photo"], env["video"], out, cfg)
    sched = WindowSchedule(6, 2)
    assert result.num_frames == N == count_frames(out)
    assert result.stats.windows == sched.num_windows(N) == 3
    store = RunStore(pipe._key_doc(env["photo"], env["video"], cfg))
    raw = [store.load_frames(i) for i in range(3)]
    # expected stream: w0[0:4], blend(w0[4:6], w1[0:2]), w1[2:4], blend(w1[4:6], w2[0:2]), w2[2:valid]
    w = sched.windows(N)
    expected = [raw[0][: 6 - 2]]
    for k in (1, 2):
        expected.append(blend_overlap(raw[k - 1][6 - 2 : 6], raw[k][:2]))
        expected.append(raw[k][2 : w[k].valid - w[k].hold])
    expected = np.concatenate(expected).astype(np.float32)
    assert expected.shape[0] == N
    decoded = _decode(out)
    assert np.abs(decoded - expected).mean() < 6.0
    # overlap windows are fresh: window 1 differs from test mode's carried-state window 1
    test_out = tmp_path / "test_mode.mp4"
    pipe(env["photo"], env["video"], test_out, _config(env))
    assert np.abs(_decode(test_out)[6:10] - decoded[6:10]).mean() > 1.0


def test_interrupted_run_resumes_and_equals_uninterrupted(env, pipe, tmp_path):
    cfg = _config(env)
    out = tmp_path / "resumed.mp4"

    class Stop(Exception):
        pass

    def stop_after_window_1(w):
        if w.index == 1:
            raise Stop

    with pytest.raises(Stop):
        pipe(env["photo"], env["video"], out, cfg, on_window=stop_after_window_1)
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no partial output
    store = RunStore(pipe._key_doc(env["photo"], env["video"], cfg))
    assert store.windows_done() == 2

    with pytest.warns(BdmmWarning, match=r"^resuming from window 3 of 3: the first 2 window\(s\)") as said:
        resumed = pipe(env["photo"], env["video"], out, cfg)
    assert len([w for w in said if "resuming" in str(w.message)]) == 1
    assert resumed.stats.windows_cached == 2 and resumed.stats.windows_generated == 1

    fresh = pipe(env["photo"], env["video"], tmp_path / "fresh.mp4", _config(env, cache=False))
    assert fresh.stats.windows_generated == 3 and fresh.stats.windows_cached == 0
    np.testing.assert_array_equal(_decode(out), _decode(tmp_path / "fresh.mp4"))

    # A third run with the same settings (another output size) is a full cache hit.
    with warnings.catch_warnings(record=True) as said:  # a finished run is reused, not resumed
        warnings.simplefilter("always")
        again = pipe(env["photo"], env["video"], tmp_path / "again.mp4", _config(env, size=64))
    assert not [w for w in said if "resuming" in str(w.message)]
    assert again.stats.windows_generated == 0 and again.stats.windows_cached == 3
    assert probe_video(tmp_path / "again.mp4").width == 64 and count_frames(tmp_path / "again.mp4") == N


def test_side_by_side_size_and_frame_range(env, pipe, tmp_path):
    out = tmp_path / "sbs.mp4"
    result = pipe(env["photo"], env["video"], out, _config(env, side_by_side=True, size=96, start=2, stop=9))
    info = probe_video(out)
    assert (info.width, info.height) == (192, 96) and info.has_audio
    assert result.num_frames == 7 == count_frames(out)
    # left half = the driving crops of frames 2..8 (pose folder PNGs), resized
    from PIL import Image

    first = np.asarray(Image.open(env["poses"] / "frames" / "frame_00002.png").resize((96, 96), Image.BILINEAR))
    left = _decode(out)[0, :, :96]
    assert np.abs(left - first.astype(np.float32)).mean() < 8.0


def test_preview_shows_mesh_overlay_and_warped_source(env, tmp_path):
    out = tmp_path / "preview.mp4"
    cfg = _config(env, preview=True, size=MODEL_SIZE, weights="this-is-not-loaded")
    result = animate(env["photo"], env["video"], out, cfg)
    info = probe_video(out)
    assert (info.width, info.height) == (2 * MODEL_SIZE, MODEL_SIZE) and result.num_frames == N
    frames = _decode(out)
    left, right = frames[:, :, :MODEL_SIZE], frames[:, :, MODEL_SIZE:]
    green = (left[..., 1] - np.maximum(left[..., 0], left[..., 2])) > 60
    assert green.mean() > 0.01  # the mesh outline/tint is drawn
    body = right.std(axis=-1) + np.abs(right - 128).mean(axis=-1) > 20
    assert 0.02 < body.mean() < 0.9  # the warped source covers the body, grey elsewhere


def test_skip_missing_interpolates_gaps(env, tmp_path):
    poses = make_pose_dir(tmp_path, N, missing=(4, 5), name="gappy")
    cfg = _config(env, poses=poses, skip_missing=True, cache=False, preview=True)  # preview: no generator needed
    result = animate(env["photo"], env["video"], tmp_path / "o.mp4", cfg)
    assert result.num_frames == N == count_frames(tmp_path / "o.mp4")


def test_interpolated_pose_is_between_neighbours():
    from animate_helpers import frame_pose
    from bdmm_cli.pipeline.frames import interpolate_pose

    a, b = frame_pose(0.0), frame_pose(1.2)
    mid = interpolate_pose(a, b, 0.5)
    np.testing.assert_allclose(mid.cam, (a.cam + b.cam) / 2, rtol=1e-6)
    np.testing.assert_allclose(mid.keypoints[:, :2], (a.keypoints[:, :2] + b.keypoints[:, :2]) / 2, rtol=1e-5)
    # geodesic: the rotation angle of a joint that turns about one axis is halfway
    j = 16 * 3 + 2
    assert mid.pose_theta[j] == pytest.approx((a.pose_theta[j] + b.pose_theta[j]) / 2, abs=1e-5)
    from scipy.spatial.transform import Rotation

    start = Rotation.from_rotvec(interpolate_pose(a, b, 0.0).pose_theta.reshape(24, 3)).as_matrix()
    np.testing.assert_allclose(start, Rotation.from_rotvec(a.pose_theta.reshape(24, 3)).as_matrix(), atol=1e-5)


def test_test_mode_runs_the_authors_chunks_with_carried_state(env, pipe, tmp_path):
    """The streamed run equals a direct loop over the authors' test chunks (padded list,
    previous = start-1 or 0, future = start+6 or the last frame) that feeds each window the
    state the previous one returned."""
    import torch

    from bdmm_cli.model import WindowInputs
    from bdmm_cli.pipeline.animate import Source
    from bdmm_cli.video.image import to_tensor, to_uint8
    from bdmm_cli.dataset.pose_dir import read_pose_dir
    from bdmm_cli.window import WindowFrames
    from test_animate_windows import _official_test_chunks

    cfg = _config(env, retarget="none")  # the authors' test mode: driving poses as they are
    result = pipe(env["photo"], env["video"], tmp_path / "o.mp4", cfg)
    store = RunStore(pipe._key_doc(env["photo"], env["video"], cfg))
    frames = {f.index: f for f in read_pose_dir(env["poses"])}
    src = pipe.source_pose(env["photo"], cfg)
    src_t = to_tensor(src.image, MODEL_SIZE)
    state = None
    for k, (chunk, pre, post) in enumerate(_official_test_chunks(N)):
        item = WindowFrames(None, tuple(frames[i] for i in chunk), frames[pre], frames[post])
        inputs, _ = pipe.window_inputs(Source(src.image, src.pose), src_t, [item])
        with torch.inference_mode():
            out = pipe.generator(WindowInputs(src_t, inputs.heatmaps, inputs.flows, inputs.flow_pre, inputs.flow_post),
                                 state)
        state = out.state
        expected = to_uint8(out.frames[0])
        got = store.load_frames(k)
        np.testing.assert_array_equal(got, expected[: got.shape[0]])
    assert result.stats.windows == 3


@pytest.mark.slow  # two CLI processes; the in-process interruption test above is the fast version
def test_ctrl_c_in_a_real_process_then_resume(env, tmp_path):
    import json
    import os
    import signal
    import subprocess
    import sys
    import time

    poses = make_pose_dir(tmp_path, 30, name="p30")
    video = make_test_video(tmp_path / "d30.mp4", frames=30, fps=20, size=(64, 48), audio=True)
    out = tmp_path / "o" / "ki.mp4"
    out.parent.mkdir()
    args = animate_args(tmp_path, dict(env, poses=poses, video=video), out)
    cmd = [sys.executable, "-m", "bdmm_cli", *args]
    cache = tmp_path / "cache"
    environ = dict(os.environ, BDMM_CACHE_DIR=str(cache), OMP_NUM_THREADS="1")
    proc = subprocess.Popen(cmd, env=environ, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:  # wait until a window is stored
        manifests = list(cache.glob("runs/*/manifest.json"))
        if manifests and json.loads(manifests[0].read_text())["windows_done"] >= 1:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    err = proc.communicate(timeout=120)[1]
    assert proc.returncode == 130 and "interrupted" in err
    assert list(out.parent.iterdir()) == []
    done = json.loads(next(cache.glob("runs/*/manifest.json")).read_text())["windows_done"]
    assert done >= 1
    again = subprocess.run(cmd, env=environ, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert f"{done} window(s) reused" in again.stderr
    assert f"warning: resuming from window {done + 1} of 5" in again.stderr  # 30 frames, windows of 6
    assert count_frames(out) == 30
