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


def test_nobody_in_the_first_frames(env, tmp_path):
    poses = make_pose_dir(tmp_path, N, missing=(0, 1, 2), name="late_entry")
    out = tmp_path / "o.mp4"
    args = animate_args(tmp_path, dict(env, poses=poses), out, "--preview", "--no-cache")
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: no person found in frames 0-2")
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
