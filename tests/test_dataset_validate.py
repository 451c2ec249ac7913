"""`bdmm train` and `bdmm data prepare` check the whole data set first (issue 16 point 4)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from bdmm_cli.cli import app
from bdmm_cli.dataset.validate import validate_dataset
from media import make_test_video
from train_helpers import make_body, make_dataset

runner = CliRunner()


def _damaged(tmp_path):
    body = make_body(tmp_path)
    data = make_dataset(tmp_path / "data", body, num_videos=3, num_frames=8)
    videos = sorted((data / "train").iterdir())
    png = videos[0] / "frames" / "frame_00003.png"
    png.write_bytes(png.read_bytes()[:200])  # truncated image
    bad_json = videos[1] / "kptsmpls" / "frame_00005.json"
    bad_json.write_text(json.dumps({"pose_keypoints_2d": [1, 2]}))  # well-formed JSON, not a record
    broken_json = videos[2] / "kptsmpls" / "frame_00001.json"
    broken_json.write_text('{"cam": [0.9, ')  # not JSON at all
    orphan = videos[2] / "kptsmpls" / "frame_00007.json"
    orphan.unlink()  # counts no longer match
    return body, data, [png, bad_json, broken_json, videos[2] / "frames" / "frame_00007.png"]


def test_validate_lists_every_bad_file(tmp_path):
    _, data, bad = _damaged(tmp_path)
    seen = []
    check = validate_dataset(data, "train", on_progress=lambda done, total: seen.append((done, total)))
    assert sorted(str(b.path) for b in check.bad) == sorted(str(p) for p in bad)
    reasons = {b.path.name: b.reason for b in check.bad}
    assert reasons["frame_00003.png"] == "damaged or truncated image"
    assert "not valid JSON" in reasons["frame_00001.json"]
    assert "frame_00005.json" in reasons and "has no kptsmpls/frame_00007.json" == reasons["frame_00007.png"]
    assert seen[-1] == (check.files, check.files) and check.files == 3 * 8 * 2 - 1


def test_clean_data_set_passes(tmp_path):
    data = make_dataset(tmp_path / "data", make_body(tmp_path), num_videos=2, num_frames=8)
    check = validate_dataset(data, "train")
    assert check.ok and check.videos == 2 and check.files == 32


def test_train_refuses_before_the_first_iteration_naming_every_bad_file(tmp_path):
    body, data, bad = _damaged(tmp_path)
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", "--data", str(data), "--out", str(run), "--body-model", str(body),
                                 "--set", "vgg_weights=random", "--iterations", "1", "--no-progress"])
    assert result.exit_code == 1
    assert result.output.startswith("error: data set") and "4 bad file(s)" in result.output
    for p in bad:
        assert str(p) in result.output
    assert "Traceback" not in result.output
    assert not (run / "checkpoints").exists()


def test_data_prepare_lists_every_unreadable_video_before_loading_weights(tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    make_test_video(videos / "good.mp4", frames=5)
    (videos / "junk.mp4").write_bytes(b"not a video at all" * 50)
    full = make_test_video(tmp_path / "full.mp4", frames=30)
    (videos / "cut.mov").write_bytes(full.read_bytes()[:400])  # no index: an interrupted copy
    result = runner.invoke(app, ["data", "prepare", str(videos), "-o", str(tmp_path / "out"),
                                 "--spin", str(tmp_path / "no_such_spin.pt")])
    assert result.exit_code == 1
    assert "2 bad file(s) of 3" in result.output
    assert "junk.mp4" in result.output and "cut.mov" in result.output and "good.mp4" not in result.output
    assert "spin" not in result.output.lower()  # the videos were checked before the weights were loaded
    assert not (tmp_path / "out").exists()
