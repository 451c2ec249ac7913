"""`bdmm animate` with real-world trouble: nobody in the first frames, the user's umask,
truncated driving videos (issue 16 rows 2 and 6, point 2)."""

from __future__ import annotations

import os
import stat

import pytest
from typer.testing import CliRunner

from animate_helpers import animate_args, make_env, make_pose_dir
from bdmm_cli.cli import app
from bdmm_cli.video import count_frames
from media import make_media

N = 13
runner = CliRunner()


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return make_env(tmp_path_factory.mktemp("animate_robust"), N, 12.5)


def _lines(result) -> list[str]:
    return [ln for ln in result.output.splitlines() if ln.strip()]


def test_nobody_in_the_first_frames_is_trimmed_with_one_warning(env, tmp_path):
    poses = make_pose_dir(tmp_path, N, missing=(0, 1, 2), name="late_entry")
    out = tmp_path / "o.mp4"
    args = animate_args(tmp_path, dict(env, poses=poses), out, "--preview", "--no-cache")
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    warn = [ln for ln in _lines(result) if ln.startswith("warning:")]
    assert len(warn) == 1 and "no person in frames 0-2" in warn[0], result.output
    assert "starts at frame 3" in warn[0] and "3 frames (0.24 s) shorter" in warn[0]  # 3 / 12.5 fps
    assert count_frames(out) == N - 3
    result = runner.invoke(app, args + ["--ends", "hold", "--force"])
    assert result.exit_code == 0, result.output
    assert not [ln for ln in _lines(result) if ln.startswith("warning:")]
    assert count_frames(out) == N


def test_nobody_in_the_last_frames_is_trimmed(env, tmp_path):
    poses = make_pose_dir(tmp_path, N, missing=(N - 2, N - 1), name="early_exit")
    out = tmp_path / "o.mp4"
    result = runner.invoke(app, animate_args(tmp_path, dict(env, poses=poses), out, "--preview", "--no-cache"))
    assert result.exit_code == 0, result.output
    warn = [ln for ln in _lines(result) if ln.startswith("warning:")]
    assert len(warn) == 1 and f"no person in frames {N - 2}-{N - 1}" in warn[0] and f"ends at frame {N - 3}" in warn[0]
    assert count_frames(out) == N - 2


def test_a_gap_inside_the_clip_still_needs_skip_missing(env, tmp_path):
    poses = make_pose_dir(tmp_path, N, missing=(5, 6), name="gap")
    out = tmp_path / "o.mp4"
    args = animate_args(tmp_path, dict(env, poses=poses), out, "--preview", "--no-cache")
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    lines = _lines(result)
    assert len(lines) == 1 and lines[0].startswith("error: no person found in frames 5-6")
    assert "--skip-missing" in lines[0] and not out.exists()
    result = runner.invoke(app, args + ["--skip-missing"])
    assert result.exit_code == 0, result.output
    assert count_frames(out) == N


def test_output_gets_the_umask_mode_also_with_force(env, tmp_path):
    out = tmp_path / "o.mp4"
    old = os.umask(0o027)
    try:
        args = animate_args(tmp_path, env, out, "--preview", "--no-cache")
        assert runner.invoke(app, args).exit_code == 0
        assert stat.S_IMODE(out.stat().st_mode) == 0o640
        os.umask(0o022)
        out.chmod(0o644)
        assert runner.invoke(app, args + ["--force"]).exit_code == 0
        assert stat.S_IMODE(out.stat().st_mode) == 0o644  # was 0600 after --force
    finally:
        os.umask(old)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_truncated_driving_video(env, tmp_path):
    full = make_media(tmp_path / "full.mp4", "testsrc=size=128x96:rate=12.5",
                      ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", "2", "-movflags", "+faststart"], frames=40)
    cut = tmp_path / "cut.mp4"
    data = full.read_bytes()
    cut.write_bytes(data[: len(data) * 2 // 3])
    from bdmm_cli.video import iter_frames

    decoded = sum(1 for _ in iter_frames(cut, allow_truncated=True))
    assert 0 < decoded < 40
    out = tmp_path / "o.mp4"
    poses = make_pose_dir(tmp_path, decoded, name="p_cut")
    args = animate_args(tmp_path, dict(env, poses=poses, video=cut), out, "--preview", "--no-cache")
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output
    assert f"decoded {decoded} of the 40 frames" in result.output and "--allow-truncated" in result.output
    assert not out.exists()
    result = runner.invoke(app, args + ["--allow-truncated"])
    assert result.exit_code == 0, result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert lines[0] == f"warning: {cut} is truncated: decoded {decoded} of the 40 frames its header announces; using those {decoded} frames"
    assert count_frames(out) == decoded


@pytest.mark.slow  # the generator runs: ~40 s on 2 loaded cores
def test_full_cache_disk_is_skipped_with_one_warning(env, tmp_path, monkeypatch):
    from media import small_tmpfs

    with small_tmpfs(tmp_path / "cache", "32k") as disk:
        monkeypatch.setenv("BDMM_CACHE_DIR", str(disk))
        out = tmp_path / "o.mp4"
        result = runner.invoke(app, animate_args(tmp_path, env, out))
        assert result.exit_code == 0, result.output
        warnings = [ln for ln in result.output.splitlines() if ln.startswith("warning:")]
        assert len(warnings) == 1 and "resume data cannot be written" in warnings[0]
        assert "No space left on device" in warnings[0] and "--no-cache" in warnings[0]
        assert count_frames(out) == N


def _negative_scale(path):
    """Rewrite a kptsmpls JSON with a failed fit's camera (scale -2.06, as SPIN can give)."""
    import dataclasses

    import numpy as np

    from bdmm_cli.dataset.kptsmpl import read_kptsmpl, write_kptsmpl

    pose = read_kptsmpl(path)
    write_kptsmpl(path, dataclasses.replace(pose, cam=np.array([-2.06, *pose.cam[1:]], np.float32)))


def test_a_failed_fit_of_a_driving_frame_is_a_gap_named_by_its_frame(env, tmp_path):
    poses = make_pose_dir(tmp_path, N, name="bad_fit")
    _negative_scale(poses / "kptsmpls" / "frame_00005.json")
    out = tmp_path / "o.mp4"
    args = animate_args(tmp_path, dict(env, poses=poses), out, "--preview", "--no-cache")
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    lines = _lines(result)
    assert len(lines) == 1 and "no usable pose in frame 5" in lines[0] and "camera scale -2.06" in lines[0], lines
    assert "--skip-missing" in lines[0] and not out.exists()
    result = runner.invoke(app, args + ["--skip-missing"])
    assert result.exit_code == 0, result.output
    assert count_frames(out) == N
    # at the start of the clip it is trimmed like a frame without anyone
    poses = make_pose_dir(tmp_path, N, name="bad_first")
    _negative_scale(poses / "kptsmpls" / "frame_00000.json")
    result = runner.invoke(app, animate_args(tmp_path, dict(env, poses=poses), out, "--preview", "--no-cache", "--force"))
    assert result.exit_code == 0 and "no person in frame 0" in result.output
    assert count_frames(out) == N - 1


def test_a_failed_fit_of_the_photo_names_it_and_suggests_retarget_none(env, tmp_path):
    import shutil

    source = tmp_path / "src.json"
    shutil.copy(env["source_pose"], source)
    _negative_scale(source)
    out = tmp_path / "o.mp4"
    args = animate_args(tmp_path, dict(env, source_pose=source), out, "--preview", "--no-cache", "--retarget", "camera")
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    lines = _lines(result)
    assert len(lines) == 1 and f"the body fit of the photo {env['photo']} failed" in lines[0]
    assert "--retarget none" in lines[0] and not out.exists()
    result = runner.invoke(app, args[:-2] + ["--retarget", "none"])
    assert result.exit_code == 0, result.output


def test_photo_and_video_in_the_wrong_order(env, tmp_path):
    out = tmp_path / "o.mp4"
    args = animate_args(tmp_path, env, out, "--preview")
    args[1], args[2] = args[2], args[1]
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    lines = _lines(result)
    assert len(lines) == 1 and "give the photo first, then the driving video" in lines[0], lines
    assert not out.exists()


def test_preview_bar_says_previewing(env, tmp_path):
    """The progress bar's label (rich renders it on stderr; the test reads the task list)."""
    from bdmm_cli.pipeline import AnimatePipeline, RunSettings
    from bdmm_cli.pipeline.config import LoadSettings

    seen = []
    import bdmm_cli.progress as progress

    real = progress.progress_bar

    def spy(*a, **k):
        bar = real(*a, **k)
        seen.append(bar)
        return bar

    progress.progress_bar = spy
    try:
        pipe = AnimatePipeline.from_config(LoadSettings(weights=str(env["weights"]), smpl=env["smpl"], device="cpu"),
                                           with_generator=False)
        pipe(env["photo"], env["video"], tmp_path / "p.mp4",
             RunSettings(poses=env["poses"], source_pose=env["source_pose"], preview=True, model_size=128, size=128,
                         cache=False))
    finally:
        progress.progress_bar = real
    assert [t.description for t in seen[0].tasks] == ["previewing"]
