"""The authors' data layout and test_list.csv; `bdmm data prepare` writing it."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest

from bdmm_cli.dataset.kptsmpl import FramePose, read_kptsmpl, write_kptsmpl
from bdmm_cli.dataset.layout import (OfficialDataset, TestSequence, format_test_list, read_test_list,
                                     resolve_official_path, write_test_list)
from bdmm_cli.errors import InputError
from bdmm_cli.window import DEFAULT_WINDOW, WindowSchedule

# a row as the authors' pandas `to_csv(index=True)` writes it (paths shortened to 7 frames)
OFFICIAL_CSV = (
    ",A_paths,B_paths_clean\n"
    "0,\"{'ref': ['./dataset/UBC_fashion_smpl/test/A1.mp4/frames/frame_00000.png'], 'gen': ["
    + ", ".join(f"'./dataset/UBC_fashion_smpl/test/A1.mp4/frames/frame_{i:05d}.png'" for i in range(7))
    + "]}\",\"{'ref': ['./dataset/UBC_fashion_smpl/test/A1.mp4/kptsmpls/frame_00000.json'], 'gen': ["
    + ", ".join(f"'./dataset/UBC_fashion_smpl/test/A1.mp4/kptsmpls/frame_{i:05d}.json'" for i in range(7))
    + "]}\"\n"
)


def _pose(seed=0):
    g = np.random.default_rng(seed)
    return FramePose(keypoints=g.uniform(0, 256, (25, 3)), bbox_xyxy=np.array([1, 2, 3, 4]), cam=np.array([0.9, 0, 0.1]),
                     pose_theta=g.normal(0, 0.1, 72), shape_beta=g.normal(0, 0.1, 10))


def _video(root, split, name, stems):
    from PIL import Image

    d = root / split / name
    (d / "frames").mkdir(parents=True)
    (d / "kptsmpls").mkdir()
    for s in stems:
        Image.new("RGB", (8, 8)).save(d / "frames" / f"{s}.png")
        write_kptsmpl(d / "kptsmpls" / f"{s}.json", _pose())
    return d


def test_official_dataset_lists_videos_sorted_with_matching_frames(tmp_path):
    _video(tmp_path, "train", "b.mp4", ["frame_00003", "frame_00000", "frame_00010"])  # gaps are fine
    _video(tmp_path, "train", "a.mp4", ["frame_00000", "frame_00001"])
    (tmp_path / "train" / "notes").mkdir()  # not a video folder
    ds = OfficialDataset(tmp_path, "train")
    assert [v.name for v in ds.videos] == ["a.mp4", "b.mp4"]
    b = ds.videos[1]
    assert [p.name for p in b.frame_paths] == ["frame_00000.png", "frame_00003.png", "frame_00010.png"]
    assert [p.stem for p in b.pose_paths] == [p.stem for p in b.frame_paths] and len(b) == 3


def test_official_dataset_errors(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        OfficialDataset(tmp_path, "train")
    with pytest.raises(InputError, match="split"):
        OfficialDataset(tmp_path, "val")
    d = _video(tmp_path, "test", "v.mp4", ["frame_00000", "frame_00001"])
    (d / "kptsmpls" / "frame_00001.json").unlink()
    with pytest.raises(InputError, match="do not match"):
        OfficialDataset(tmp_path, "test")


def test_read_the_authors_test_list(tmp_path):
    (tmp_path / "test_list.csv").write_text(OFFICIAL_CSV)
    (seq,) = read_test_list(tmp_path / "test_list.csv", root=tmp_path / "data")
    assert seq.ref_frame == tmp_path / "data" / "test" / "A1.mp4" / "frames" / "frame_00000.png"
    assert seq.gen_poses[6] == tmp_path / "data" / "test" / "A1.mp4" / "kptsmpls" / "frame_00006.json"
    # the authors pad the 7 frames to 12 by repeating the last one: the schedule's last window
    (_, last) = WindowSchedule(DEFAULT_WINDOW).windows(len(seq.gen_frames))
    assert [seq.gen_frames[i] for i in last.frames] == [seq.gen_frames[-1]] * 6 and last.valid == 1


def test_test_list_round_trip_in_the_authors_format(tmp_path):
    _video(tmp_path, "test", "v.mp4", ["frame_00000", "frame_00002"])
    ds = OfficialDataset(tmp_path, "test")
    v = ds.videos[0]
    seqs = [TestSequence(v.frame_paths[0], v.pose_paths[0], v.frame_paths, v.pose_paths)]
    text = format_test_list(seqs, tmp_path)
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["", "A_paths", "B_paths_clean"] and rows[1][0] == "0"
    assert "'./dataset/UBC_fashion_smpl/test/v.mp4/frames/frame_00002.png'" in rows[1][1]
    write_test_list(tmp_path / "test_list.csv", seqs, tmp_path)
    assert read_test_list(tmp_path / "test_list.csv") == seqs
    with pytest.raises(InputError, match="already exists"):
        write_test_list(tmp_path / "test_list.csv", seqs, tmp_path)


@pytest.mark.parametrize("text, message", [
    ("x,y\n1,2\n", "lacks the columns"),
    (",A_paths,B_paths_clean\n0,not a dict,{}\n", "Python-literal"),
    (",A_paths,B_paths_clean\n0,\"{'ref': ['a'], 'gen': []}\",\"{'ref': ['a'], 'gen': []}\"\n", "expected"),
])
def test_bad_test_lists(tmp_path, text, message):
    (tmp_path / "t.csv").write_text(text)
    with pytest.raises(InputError, match=message):
        read_test_list(tmp_path / "t.csv")


def test_resolve_official_path_keeps_split_video_kind_file(tmp_path):
    assert resolve_official_path("./dataset/X/train/v.mp4/kptsmpls/f.json", tmp_path) == tmp_path / "train/v.mp4/kptsmpls/f.json"
    with pytest.raises(InputError):
        resolve_official_path("frames/f.png", tmp_path)


def test_prepare_writes_the_official_layout_and_test_list(tmp_path):
    """`prepare_dataset` with a pose front-end that yields known frames (no SPIN weights here)."""
    from bdmm_cli.dataset.prepare import plan_splits, prepare_dataset
    from bdmm_cli.pose import PosedFrame

    videos = tmp_path / "videos"
    videos.mkdir()
    for name in ("a.mp4", "b.mp4", "c.mov", "d.mp4"):
        (videos / name).write_bytes(b"video")
    (videos / "readme.txt").write_text("not a video")
    assert [(s, v.name) for s, v in plan_splits(videos, 0.25)] == [
        ("train", "a.mp4"), ("train", "b.mp4"), ("train", "c.mov"), ("test", "d.mp4")]

    def estimate(path):
        if path.name == "c.mov":
            return iter([PosedFrame(0, np.zeros((256, 256, 3), np.uint8), None)])   # nobody in it
        return iter(PosedFrame(i, np.full((256, 256, 3), i, np.uint8), None if i == 1 else _pose(i)) for i in range(4))

    out = tmp_path / "data"
    report = prepare_dataset(videos, out, estimate, test_fraction=0.25)
    assert [(v.split, v.name, v.frames, v.skipped) for v in report.videos] == [
        ("train", "a.mp4", 3, (1,)), ("train", "b.mp4", 3, (1,)), ("test", "d.mp4", 3, (1,))]
    assert report.failed and report.failed[0][0] == "c.mov"
    train = OfficialDataset(out, "train")
    assert [v.name for v in train.videos] == ["a.mp4", "b.mp4"]
    assert [p.name for p in train.videos[0].frame_paths] == ["frame_00000.png", "frame_00002.png", "frame_00003.png"]
    np.testing.assert_allclose(read_kptsmpl(train.videos[0].pose_paths[1]).pose_theta, _pose(2).pose_theta, rtol=1e-6)
    (seq,) = read_test_list(out / "test_list.csv")
    assert seq.ref_frame == out / "test" / "d.mp4" / "frames" / "frame_00000.png" and len(seq.gen_frames) == 3
    with pytest.raises(InputError, match="not empty"):
        prepare_dataset(videos, out, estimate)
    with pytest.raises(InputError, match="no videos"):
        plan_splits(tmp_path / "data" / "train")
