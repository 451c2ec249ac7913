"""`bdmm batch` job lists: every row checked before anything runs, every problem listed with
its line number, exit 2, and nothing a job list says writes outside OUT_DIR."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bdmm_cli.batch import JobListError, read_jobs
from bdmm_cli.cli import app
from bdmm_cli.pipeline import RunSettings


@pytest.fixture
def files(tmp_path):
    lists = tmp_path / "lists"
    (lists / "people").mkdir(parents=True)
    (lists / "dances").mkdir()
    for name in ("people/ann.jpg", "people/bob.png", "dances/salsa.mp4", "dances/tango.mov"):
        (lists / name).write_bytes(b"x")  # only existence is checked up front
    return lists


def _csv(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_every_problem_is_listed_with_its_line(files, tmp_path):
    (tmp_path / "elsewhere").mkdir()
    out = tmp_path / "out"
    out.mkdir()
    os.symlink(tmp_path / "elsewhere", out / "link")
    jobs = _csv(files / "jobs.csv", "\n".join([
        "photo,video,output,frames,retarget,side_by_side,overlap,window",
        "people/ann.jpg,dances/salsa.mp4,,,,,,",            # 2: fine
        "people/nobody.jpg,dances/salsa.mp4,,,,,,",         # 3: missing photo
        "people/bob.png,dances/salsa.mp4,,5:2,,,,",         # 4: empty frame range
        f"people/bob.png,dances/tango.mov,{tmp_path}/x.mp4,,,,,",  # 5: absolute output
        "people/ann.jpg,dances/tango.mov,../x.mp4,,,,,",    # 6: leaves OUT_DIR
        "people/bob.png,dances/tango.mov,b.mp4,,,maybe,,",  # 7: not a boolean
        "people/bob.png,dances/tango.mov,c.mp4,,,,6,6",     # 8: overlap >= window
        "people/bob.png,dances/tango.mov,ann__salsa.mp4,,,,,",  # 9: line 2's output
        "people/bob.png,dances/tango.mov,d.mp4,,sideways,,,",  # 10: unknown retarget mode
        "people/bob.png,dances/tango.mov,link/e.mp4,,,,,",  # 11: out through a symlink
        "people/bob.png,dances/missing.mp4,f.txt,,,,two,",  # 12: three problems in one row
    ]) + "\n")
    with pytest.raises(JobListError) as info:
        read_jobs(jobs, out)
    err = info.value
    assert err.exit_code == 2
    by_line = {int(d.split(":")[0].split()[1]): d for d in err.details}
    assert sorted(by_line) == list(range(3, 13))
    assert "nobody.jpg not found" in by_line[3]
    assert "is empty" in by_line[4]
    assert "absolute" in by_line[5]
    assert "leaves OUT_DIR" in by_line[6]
    assert "side_by_side must be true or false" in by_line[7]
    assert "overlap" in by_line[8]
    assert "also the output of line 2" in by_line[9]
    assert "retarget" in by_line[10]
    assert "symbolic link" in by_line[11]
    assert "missing.mp4 not found" in by_line[12] and "overlap must be a whole number" in by_line[12]
    assert ".mp4" in by_line[12]


def test_cli_exits_2_and_writes_nothing(files, tmp_path):
    jobs = _csv(files / "jobs.csv", "photo,video,colour\npeople/ann.jpg,dances/salsa.mp4,red\n")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["batch", str(jobs), "-o", str(out), "--device", "cpu"])
    assert result.exit_code == 2, result.output
    assert "error:" in result.output and "line 1: unknown column(s) 'colour'" in result.output
    assert "Traceback" not in result.output
    assert not out.exists()
    both = CliRunner().invoke(app, ["batch", str(jobs), "--photos", str(files / "people"), "--videos",
                                    str(files / "dances"), "-o", str(out)])
    assert both.exit_code == 2 and "not both" in both.output


def test_relative_paths_defaults_and_row_values(files, tmp_path, monkeypatch):
    jobs = _csv(files / "jobs.csv", "photo,video,output,frames,side_by_side,overlap,retarget\n"
                                    "people/ann.jpg,dances/salsa.mp4,,10:40,yes,2,camera\n"
                                    "people/bob.png,dances/salsa.mp4,sub/bob.mp4,,,,\n")
    monkeypatch.chdir(tmp_path)  # paths resolve against the job list's folder, not the working directory
    defaults = RunSettings(size=128, overlap=1, retarget="none")
    a, b = read_jobs(jobs, "out", defaults)
    assert a.photo == files / "people" / "ann.jpg" and a.video == files / "dances" / "salsa.mp4"
    assert a.output == tmp_path / "out" / "ann__salsa.mp4"
    assert (a.run.start, a.run.stop, a.run.side_by_side, a.run.overlap, a.run.retarget) == (10, 40, True, 2, "camera")
    assert a.run.size == 128 and a.line == 2
    assert b.output == tmp_path / "out" / "sub" / "bob.mp4"
    assert (b.run.start, b.run.stop, b.run.side_by_side, b.run.overlap, b.run.retarget) == (0, None, False, 1, "none")


def test_jsonl(files, tmp_path):
    lines = [
        json.dumps({"photo": "people/ann.jpg", "video": "dances/salsa.mp4", "side_by_side": True, "window": 8}),
        "",
        "{not json",
        json.dumps({"photo": "people/bob.png", "video": "dances/salsa.mp4", "colour": "red"}),
        json.dumps({"video": "dances/salsa.mp4"}),
    ]
    (files / "jobs.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(JobListError) as info:
        read_jobs(files / "jobs.jsonl", tmp_path / "out")
    assert [d.split(":")[0] for d in info.value.details] == ["line 3", "line 4", "line 5"]
    (files / "ok.jsonl").write_text(lines[0] + "\n")
    (job,) = read_jobs(files / "ok.jsonl", tmp_path / "out")
    assert job.run.side_by_side is True and job.run.window == 8


def test_photos_times_videos(files, tmp_path):
    jobs = read_jobs(None, tmp_path / "out", photos=str(files / "people"), videos=str(files / "dances" / "*.mp*"))
    assert [(j.photo.name, j.video.name, j.output.name) for j in jobs] == [
        ("ann.jpg", "salsa.mp4", "ann__salsa.mp4"), ("bob.png", "salsa.mp4", "bob__salsa.mp4")]
    (files / "people" / "ann.png").write_bytes(b"x")  # two photos with the same stem: the same output
    with pytest.raises(JobListError) as info:
        read_jobs(None, tmp_path / "out", photos=str(files / "people"), videos=str(files / "dances"))
    assert any("also the output of" in d for d in info.value.details)
    with pytest.raises(JobListError, match="problem"):
        read_jobs(None, tmp_path / "out", photos=str(tmp_path / "none*.jpg"), videos=str(files / "dances"))


def test_stored_poses_round_trip_exactly():
    import numpy as np

    from animate_helpers import crop_image, frame_pose
    from bdmm_cli.batch.poses import pack_frames, unpack_frames
    from bdmm_cli.dataset.pose_dir import PosedFrame

    frames = [PosedFrame(7, crop_image(0.3), frame_pose(0.3)), PosedFrame(8, crop_image(0.7), None),
              PosedFrame(9, crop_image(0.9), None, dropped="head too small")]
    back = unpack_frames(pack_frames(frames))
    assert [(f.index, f.dropped, f.pose is None) for f in back] == [(7, None, False), (8, None, True),
                                                                     (9, "head too small", True)]
    for a, b in zip(frames, back):
        assert np.array_equal(a.image, b.image) and a.image.dtype == b.image.dtype
    for name in ("keypoints", "bbox_xyxy", "cam", "pose_theta", "shape_beta"):
        x, y = getattr(frames[0].pose, name), getattr(back[0].pose, name)
        assert x.dtype == y.dtype and x.tobytes() == y.tobytes()
