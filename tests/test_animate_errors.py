"""Bad input for `bdmm animate`: one-line error, exit code != 0, no output file left behind."""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from animate_helpers import animate_args, make_env, make_pose_dir
from bdmm_cli.cli import app
from media import ffmpeg_exe, make_test_video, small_tmpfs

N = 7


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return make_env(tmp_path_factory.mktemp("animate_bad"), N, 10)


def _run(env, out: Path, *extra: str, **replace):
    e = dict(env, **replace)
    return CliRunner().invoke(app, animate_args(out.parent, e, out, *extra))


def _assert_one_line_error(res, *needles: str):
    assert res.exit_code != 0, res.output
    lines = [ln for ln in res.output.strip().splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error:")]
    assert len(errors) == 1, res.output
    assert "Traceback" not in res.output
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


def _no_output(folder: Path, keep: set[str] = frozenset()):
    left = {p.name for p in folder.iterdir()} - set(keep)
    assert left == set(), left


def test_missing_and_unreadable_photo(env, tmp_path):
    out_dir = tmp_path / "o"
    out_dir.mkdir()
    res = _run(env, out_dir / "a.mp4", photo=tmp_path / "nope.jpg")
    _assert_one_line_error(res, "image not found")
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    res = _run(env, out_dir / "a.mp4", photo=bad)
    _assert_one_line_error(res, "cannot read image")
    _no_output(out_dir)


def test_not_a_video_and_corrupt_video(env, tmp_path):
    out_dir = tmp_path / "o"
    out_dir.mkdir()
    text = tmp_path / "notes.mp4"
    text.write_text("hello")
    _assert_one_line_error(_run(env, out_dir / "a.mp4", video=text), "cannot read video")
    missing = tmp_path / "missing.mp4"
    _assert_one_line_error(_run(env, out_dir / "a.mp4", video=missing), "not found")
    data = Path(env["video"]).read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])  # the moov atom (at the end) is gone
    _assert_one_line_error(_run(env, out_dir / "a.mp4", video=cut), "cut.mp4")
    _no_output(out_dir)


def test_video_without_frames(env, tmp_path):
    audio_only = tmp_path / "audio_only.mp4"
    subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-f", "lavfi", "-i", "sine=frequency=440:duration=1",
                    "-c:a", "aac", str(audio_only)], check=True)
    out_dir = tmp_path / "o"
    out_dir.mkdir()
    _assert_one_line_error(_run(env, out_dir / "a.mp4", video=audio_only), "audio_only.mp4")
    _no_output(out_dir)


def test_frame_range_past_the_end(env, tmp_path):
    _assert_one_line_error(_run(env, tmp_path / "a.mp4", "--frames", "50:60"), "frame")
    _assert_one_line_error(_run(env, tmp_path / "a.mp4", "--frames", "5:2"), "--frames")
    _no_output(tmp_path)


def test_no_person_in_some_frames_names_them(env, tmp_path):
    poses = make_pose_dir(tmp_path, N, missing=(3, 4), name="gappy")
    out_dir = tmp_path / "o"
    out_dir.mkdir()
    line = _assert_one_line_error(_run(env, out_dir / "a.mp4", poses=poses), "no person found", "frames 3-4")
    assert "--skip-missing" in line
    # a gap longer than --skip-missing's limit is refused too (a gap inside the clip: frame N-1 has a person)
    long_gap = make_pose_dir(tmp_path, N, missing=tuple(range(1, N - 1)), name="long_gap")
    _assert_one_line_error(
        _run(env, out_dir / "a.mp4", "--skip-missing", "--max-gap", "3", poses=long_gap, video=make_test_video(
            tmp_path / "long.mp4", frames=N, fps=10, size=(64, 48), audio=False)),
        "no person found", f"frames 1-{N - 2}", "--max-gap",
    )
    _no_output(out_dir)


def test_checkpoint_that_is_not_a_generator(env, tmp_path):
    import torch
    from safetensors.torch import save_file

    from bdmm_cli.model.checkpoint import save_discriminators
    from bdmm_cli.model import DiscriminatorConfig, SpatialDiscriminator, TemporalDiscriminator

    junk = tmp_path / "junk.safetensors"
    save_file({"foo.weight": torch.zeros(3, 3)}, str(junk))
    out_dir = tmp_path / "o"
    out_dir.mkdir()
    _assert_one_line_error(_run(env, out_dir / "a.mp4", weights=junk))
    d_folder = save_discriminators(SpatialDiscriminator(DiscriminatorConfig()), TemporalDiscriminator(DiscriminatorConfig()),
                                   tmp_path / "discs")
    _assert_one_line_error(_run(env, out_dir / "a.mp4", weights=d_folder / "discriminator"))
    _assert_one_line_error(_run(env, out_dir / "a.mp4", weights=tmp_path / "absent.pth"), "not found")
    _no_output(out_dir)


def test_weights_path_with_tilde_is_expanded(env, tmp_path, monkeypatch):
    """`--weights ~/G` (quoted, so the shell leaves the ~) passes the input check and loads."""
    import shutil

    monkeypatch.setenv("HOME", str(tmp_path))
    shutil.copytree(env["weights"], tmp_path / "G")
    out_dir = tmp_path / "o"
    out_dir.mkdir()
    res = _run(env, out_dir / "a.mp4", weights="~/G")
    assert res.exit_code == 0, res.output
    assert [p.name for p in out_dir.iterdir()] == ["a.mp4"]


def test_existing_output_is_not_overwritten(env, tmp_path):
    out = tmp_path / "precious.mp4"
    out.write_bytes(b"keep me")
    _assert_one_line_error(_run(env, out), "already exists", "--force")
    assert out.read_bytes() == b"keep me"
    _assert_one_line_error(_run(env, Path(env["video"])), "exists")  # the input itself, no --force
    _assert_one_line_error(_run(env, Path(env["video"]), "--force"), "driving video")
    assert Path(env["video"]).stat().st_size > 1000
    _no_output(tmp_path, keep={"precious.mp4"})


def test_output_directory_missing(env, tmp_path):
    _assert_one_line_error(_run(env, tmp_path / "no" / "such" / "dir" / "a.mp4"), "does not exist")


# -- filesystems: read-only and full ----------------------------------------------------------

def test_output_directory_not_writable(env, tmp_path):
    if os.geteuid() == 0:
        ctx = small_tmpfs(tmp_path / "ro", "1m", readonly=True)  # root ignores permission bits
    else:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        ctx = contextlib.nullcontext(ro)
    with ctx as ro:
        _assert_one_line_error(_run(env, ro / "a.mp4"), "not writable")
        assert list(ro.iterdir()) == []


def test_disk_full_before_start(env, tmp_path):
    with small_tmpfs(tmp_path / "full", "8k") as full:
        (full / "filler").write_bytes(b"x" * 4096 * 2 if False else b"")
        with contextlib.suppress(OSError):
            (full / "filler").write_bytes(b"x" * 16384)
        _assert_one_line_error(_run(env, full / "a.mp4"), "no space left")
        assert {p.name for p in full.iterdir()} <= {"filler"}


def test_disk_full_while_writing(env, tmp_path):
    """The disk fills up during encoding (real ENOSPC from ffmpeg): one line, nothing left."""
    with small_tmpfs(tmp_path / "small", "300k") as small:
        res = _run(env, small / "big.mp4", "--size", "512", "--side-by-side", "--no-cache")
        _assert_one_line_error(res, "no space left")
        assert list(small.iterdir()) == []


def test_device_and_dtype_that_are_not_there(env, tmp_path):
    import torch

    _assert_one_line_error(_run(env, tmp_path / "a.mp4", "--dtype", "fp16"), "needs a CUDA GPU")
    _assert_one_line_error(_run(env, tmp_path / "a.mp4", "--dtype", "fp8"), "--dtype")
    _assert_one_line_error(_run(env, tmp_path / "a.mp4", "--device", "tpu"), "--device")
    if not torch.cuda.is_available():
        _assert_one_line_error(_run(env, tmp_path / "a.mp4", "--device", "cuda"), "no CUDA GPU")
    _assert_one_line_error(_run(env, tmp_path / "a.mp4", "--overlap", "4"), "--overlap")
    _no_output(tmp_path)


def test_rasterizer_choice_that_is_not_there(env, tmp_path):
    from bdmm_cli.body.pytorch3d_backend import pytorch3d_available

    _assert_one_line_error(_run(env, tmp_path / "a.mp4", "--rasterizer", "opengl"), "--rasterizer")
    if not pytorch3d_available():
        _assert_one_line_error(_run(env, tmp_path / "a.mp4", "--rasterizer", "pytorch3d"), "pytorch3d", "--rasterizer torch")
    _no_output(tmp_path)


def test_missing_body_model_and_unpublished_weights_say_how_to_get_them(env, tmp_path):
    """Without --smpl and nothing installed, and with registry weights that are not on the
    Hub yet: one line each, naming the fix and `bdmm doctor`; no output file."""
    out_dir = tmp_path / "o"
    out_dir.mkdir()
    args = animate_args(out_dir, env, out_dir / "a.mp4")
    i = args.index("--smpl")
    no_smpl = args[:i] + args[i + 2 :]
    line = _assert_one_line_error(CliRunner().invoke(app, no_smpl), "bdmm body install", "bdmm doctor")
    assert "smpl.is.tue.mpg.de" in line
    i = args.index("--weights")
    registry_weights = args[: i + 1] + ["fashionvideo"] + args[i + 2 :]
    _assert_one_line_error(CliRunner().invoke(app, registry_weights), "not published", "bdmm weights import",
                           "bdmm doctor")
    _no_output(out_dir)
