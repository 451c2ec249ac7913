"""The per-frame record (kptsmpls/*.json): the authors' format, round trip, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bdmm_cli.dataset.kptsmpl import FramePose, dumps_kptsmpl, read_kptsmpl, write_kptsmpl
from bdmm_cli.errors import InputError


def _pose(seed: int = 0) -> FramePose:
    rng = np.random.default_rng(seed)
    kp = np.concatenate([rng.uniform(0, 256, (25, 2)), rng.uniform(0, 1, (25, 1))], axis=1)
    return FramePose(
        keypoints=kp,
        bbox_xyxy=np.array([10.5, 20.25, 200.0, 240.0]),
        cam=np.array([0.9, 0.01, 0.2]),
        pose_theta=rng.normal(0, 0.3, 72),
        shape_beta=rng.normal(0, 1, 10),
    )


def test_round_trip_is_exact_in_float32(tmp_path):
    pose = _pose()
    path = write_kptsmpl(tmp_path / "frame_00000.json", pose)
    back = read_kptsmpl(path)
    for name in ("keypoints", "bbox_xyxy", "cam", "pose_theta", "shape_beta"):
        np.testing.assert_array_equal(getattr(back, name), getattr(pose, name))
        assert getattr(back, name).dtype == np.float32
    np.testing.assert_array_equal(back.smpl, np.concatenate([pose.cam, pose.pose_theta, pose.shape_beta]))


def test_file_has_the_authors_layout(tmp_path):
    """Keys and nesting as SMPLDataset/preprocess.py + jsonify write them, and as
    util/openpose_utils.obtain_2d_coords_smpl / DanceDataset.load_kpt_smpl read them."""
    pose = _pose(1)
    path = write_kptsmpl(tmp_path / "f.json", pose)
    data = json.loads(path.read_text())
    assert sorted(data) == ["bbox_xyxy", "cam", "pose_keypoints_2d", "pose_theta", "shape_beta"]
    assert len(data["pose_keypoints_2d"]) == 25 and all(len(row) == 3 for row in data["pose_keypoints_2d"])
    # the authors' reader: x, y, conf per row; smpl = [*cam, *pose_theta, *shape_beta]
    xs = [kpt[0] for kpt in data["pose_keypoints_2d"]]
    np.testing.assert_allclose(xs, pose.keypoints[:, 0], rtol=0, atol=0)
    smpl = [*data["cam"], *data["pose_theta"], *data["shape_beta"]]
    assert len(smpl) == 85
    # jsonify's formatting: sorted keys, indent 4, no space after ':'
    assert path.read_text() == json.dumps(data, sort_keys=True, indent=4, separators=(",", ":"))


def test_flat_openpose_keypoints_are_accepted(tmp_path):
    pose = _pose(2)
    data = pose.to_json_dict()
    data["pose_keypoints_2d"] = [v for row in data["pose_keypoints_2d"] for v in row]
    (tmp_path / "flat.json").write_text(json.dumps(data))
    np.testing.assert_array_equal(read_kptsmpl(tmp_path / "flat.json").keypoints, pose.keypoints)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d.pop("cam"), "missing field"),
        (lambda d: d.__setitem__("pose_theta", [0.0] * 71), "pose_theta"),
        (lambda d: d.__setitem__("pose_keypoints_2d", [[0, 0]] * 25), "keypoints"),
        (lambda d: d.__setitem__("shape_beta", "abc"), "shape_beta"),
    ],
)
def test_bad_records_raise_input_error(tmp_path, mutate, message):
    data = _pose().to_json_dict()
    mutate(data)
    (tmp_path / "bad.json").write_text(json.dumps(data))
    with pytest.raises(InputError, match=message):
        read_kptsmpl(tmp_path / "bad.json")


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(InputError, match="not found"):
        read_kptsmpl(tmp_path / "nope.json")
    (tmp_path / "c.json").write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        read_kptsmpl(tmp_path / "c.json")


def test_non_finite_values_are_refused(tmp_path):
    pose = _pose()
    bad = FramePose(pose.keypoints, pose.bbox_xyxy, np.array([np.nan, 0, 0]), pose.pose_theta, pose.shape_beta)
    with pytest.raises(ValueError, match="cam"):
        dumps_kptsmpl(bad)
    assert not list(tmp_path.iterdir())


def test_refuses_to_overwrite_without_force(tmp_path):
    path = write_kptsmpl(tmp_path / "f.json", _pose(0))
    with pytest.raises(InputError, match="already exists"):
        write_kptsmpl(path, _pose(1), force=False)
    np.testing.assert_array_equal(read_kptsmpl(path).keypoints, _pose(0).keypoints)
