"""`--keypoints dwpose` end to end: the two ONNX files (stand-ins exported with torch.onnx, same
signatures as the published ones) installed by `bdmm setup` from local files and from a local
HTTP server standing in for the Hub (sha256 checked), listed by `bdmm doctor`, then `bdmm pose`,
`bdmm animate` and `bdmm data prepare` run on them; `auto` picks OpenPose, then DWPose, then
MediaPipe, else says `bdmm setup`."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

import dwpose_helpers as H  # noqa: E402
from animate_helpers import MODEL_SIZE, synthetic_body, tiny_generator_dir  # noqa: E402
from bdmm_cli.cli import app  # noqa: E402
from hub_server import local_hub  # noqa: E402,F401  (fixture)

runner = CliRunner()
N = 3
HW = (240, 320)


def frame(t: int) -> np.ndarray:
    return np.full((*HW, 3), 60 + 25 * t, np.uint8)


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    from PIL import Image

    from bdmm_cli.pose import HMR
    from bdmm_cli.video import VideoWriter

    root = tmp_path_factory.mktemp("dwpose_cli")
    video = root / "walk.mp4"
    with VideoWriter(video, 10, (HW[1], HW[0])) as w:
        for t in range(N):
            w.write(frame(t))
    photo = root / "person.png"
    Image.fromarray(frame(0)).save(photo)
    torch.manual_seed(0)
    spin = root / "spin_ckpt.pth"
    torch.save(HMR().state_dict(), spin)
    det, pose = H.write_standins(root / "onnx", gain=40.0)
    return {"root": root, "video": video, "photo": photo, "spin": spin, "det": det, "pose": pose}


def _setup(*files: Path):
    res = runner.invoke(app, ["setup", *[a for f in files for a in ("--from", str(f))]])
    assert res.exit_code == 0, res.output
    return res


def _one_error_line(result) -> str:
    lines = [ln for ln in result.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


def test_setup_from_local_files_doctor_and_auto(media, monkeypatch):
    from bdmm_cli.hub.installed import read_manifest
    from bdmm_cli.pose.detector import load_keypoint_model, resolve_keypoints

    monkeypatch.setenv("COLUMNS", "250")
    res = _setup(media["det"], media["pose"])
    manifest = read_manifest()
    assert manifest["dwpose-det"].source_sha256 == hashlib.sha256(media["det"].read_bytes()).hexdigest()
    assert Path(manifest["dwpose-pose"].path).read_bytes() == media["pose"].read_bytes()
    assert "dwpose available" in res.output
    assert resolve_keypoints("auto") == "dwpose"  # no OpenPose installed
    model = load_keypoint_model("auto")
    assert model.kind == "dwpose" and "DWPose" in model.description
    doctor = runner.invoke(app, ["doctor"])
    assert "weights: dwpose-det" in doctor.output and "weights: dwpose-pose" in doctor.output
    from bdmm_cli.pipeline.requirements import run_checks

    rows = {c.name: c for c in run_checks()}
    assert rows["weights: dwpose-det"].ok and "not the published file" in rows["weights: dwpose-det"].detail  # stand-ins
    assert "keypoints: dwpose" in doctor.output and "--keypoints auto uses dwpose" in doctor.output
    # a second run installs nothing
    again = _setup(media["det"], media["pose"])
    assert "already installed" in again.output
    # OpenPose, once installed, comes first
    import setup_helpers as S

    op = media["root"] / "op" / "openpose_body25.pth"
    op.parent.mkdir(exist_ok=True)
    op.write_bytes(S._save(S.openpose_state_dict()))
    _setup(op)
    assert resolve_keypoints("auto") == "openpose" and resolve_keypoints("dwpose") == "dwpose"


def test_setup_refuses_a_file_that_is_not_dwpose(media, tmp_path):
    from bdmm_cli.hub.installed import read_manifest

    wrong = tmp_path / "yolox_l.onnx"
    wrong.write_bytes(media["pose"].read_bytes())  # the pose model under the detector's name
    res = runner.invoke(app, ["setup", "--from", str(wrong), "--from", str(media["pose"])])
    assert res.exit_code != 0
    assert "is not a YOLOX detector" in _one_error_line(res)
    assert read_manifest() == {}  # nothing installed, not even the good file


def _registry_with_dwpose_sources(tmp_path, hub, det: bytes, pose: bytes, sha_det: str | None = None) -> Path:
    """The project's registry, its [sources.*] replaced by the two DWPose downloads on the local server."""
    from bdmm_cli.hub.registry import DEFAULT_REGISTRY

    text = DEFAULT_REGISTRY.read_text()
    body, _, dwpose = text.partition("\n[sources.bdmm-smpldataset]")
    models = dwpose[dwpose.index("\n[models.dwpose-det]"):dwpose.index("\n[sources.dwpose-det]")]
    text = body + models
    for name, fname, data, sha in (("dwpose-det", "yolox_l.onnx", det, sha_det or hashlib.sha256(det).hexdigest()),
                                   ("dwpose-pose", "dw-ll_ucoco_384.onnx", pose, hashlib.sha256(pose).hexdigest())):
        url = hub.add_static(f"yzd-v/DWPose/resolve/main/{fname}", data)
        text += (f'\n[sources.{name}]\nurl = "{url}"\nfilename = "{fname}"\nprovides = ["{name}"]\nsize = {len(data)}\n'
                 f'sha256 = "{sha}"\nlicense = "Apache-2.0 (test {name})"\nprovenance = "test"\n')
    reg = tmp_path / "registry.toml"
    reg.write_text(text)
    return reg


def test_setup_downloads_them_checks_sha256_and_shows_the_license(local_hub, media, tmp_path, monkeypatch):
    from bdmm_cli.hub.installed import read_manifest

    det, pose = media["det"].read_bytes(), media["pose"].read_bytes()
    monkeypatch.setenv("BDMM_REGISTRY", str(_registry_with_dwpose_sources(tmp_path, local_hub, det, pose, sha_det="0" * 64)))
    res = runner.invoke(app, ["setup", "--accept-licenses"])
    assert res.exit_code != 0 and "not the published" in res.output and "0" * 64 in res.output
    assert "dwpose-det" not in read_manifest() and "dwpose-pose" not in read_manifest()

    monkeypatch.setenv("BDMM_REGISTRY", str(_registry_with_dwpose_sources(tmp_path, local_hub, det, pose)))
    res = runner.invoke(app, ["setup"])  # downloads need --accept-licenses; the licenses are printed first
    assert res.exit_code != 0 and "Apache-2.0 (test dwpose-det)" in res.output
    res = runner.invoke(app, ["setup", "--accept-licenses"])
    assert res.exit_code == 0, res.output
    manifest = read_manifest()
    assert manifest["dwpose-det"].source_sha256 == hashlib.sha256(det).hexdigest()
    assert manifest["dwpose-pose"].source.endswith("dw-ll_ucoco_384.onnx")
    assert local_hub.count(contains="yolox_l.onnx") >= 1


def test_pose_animate_and_data_prepare_with_dwpose(media, tmp_path):
    _setup(media["det"], media["pose"])
    out = tmp_path / "poses"
    res = runner.invoke(app, ["pose", str(media["video"]), "-o", str(out), "--spin", str(media["spin"]),
                              "--keypoints", "dwpose", "--no-cache"])
    assert res.exit_code == 0, res.output
    assert "keypoints: DWPose" in res.output
    jsons = sorted((out / "kptsmpls").glob("*.json"))
    assert len(jsons) == N
    kp = np.array(json.loads(jsons[0].read_text())["pose_keypoints_2d"]).reshape(25, 3)
    assert (kp[:, 2] > 0).sum() == 25  # the stand-in's skeleton has every BODY_25 joint, feet included
    # auto picks DWPose (no OpenPose installed) and says so
    res = runner.invoke(app, ["pose", str(media["photo"]), "-o", str(tmp_path / "photo"), "--spin", str(media["spin"])])
    assert res.exit_code == 0 and "keypoints: DWPose" in res.output, res.output

    anim = tmp_path / "out.mp4"
    res = runner.invoke(app, [
        "animate", str(media["photo"]), str(media["video"]), "-o", str(anim), "--keypoints", "dwpose",
        "--weights", str(tiny_generator_dir(tmp_path)), "--smpl", str(synthetic_body(tmp_path)),
        "--pose-weights", str(media["spin"]), "--model-size", str(MODEL_SIZE), "--size", str(MODEL_SIZE),
        "--device", "cpu", "--skip-missing", "--no-cache", "--retarget", "none",
    ])
    assert res.exit_code == 0, res.output
    assert "keypoints: DWPose" in res.output
    from bdmm_cli.video import count_frames

    assert count_frames(anim) == N

    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "walk.mp4").write_bytes(media["video"].read_bytes())
    res = runner.invoke(app, ["data", "prepare", str(videos), "-o", str(tmp_path / "data"), "--spin", str(media["spin"]),
                              "--keypoints", "dwpose"])
    assert res.exit_code == 0, res.output
    assert "keypoints: DWPose" in res.output
    assert len(list((tmp_path / "data").rglob("kptsmpls/*.json"))) == N


def test_missing_detectors_are_one_line_naming_bdmm_setup(media, tmp_path, monkeypatch):
    import bdmm_cli.pose.detector as detector

    res = runner.invoke(app, ["pose", str(media["video"]), "-o", str(tmp_path / "o"), "--spin", str(media["spin"]),
                              "--keypoints", "dwpose"])
    line = _one_error_line(res)
    assert "DWPose" in line and "bdmm setup" in line and not (tmp_path / "o").exists()
    # nothing at all (MediaPipe absent, as on Python 3.13+): auto says bdmm setup
    monkeypatch.setattr(detector, "mediapipe_available", lambda: False)
    res = runner.invoke(app, ["pose", str(media["video"]), "-o", str(tmp_path / "o"), "--spin", str(media["spin"])])
    line = _one_error_line(res)
    assert line.startswith("error: no keypoint detector is installed") and "bdmm setup" in line
    res = runner.invoke(app, ["pose", str(media["video"]), "-o", str(tmp_path / "o"), "--spin", str(media["spin"]),
                              "--keypoints", "mediapipe"])
    assert "pip install mediapipe==0.10.14" in _one_error_line(res)
    assert not (tmp_path / "o").exists()


def test_an_installed_file_that_changed_is_refused_in_one_line(media, tmp_path):
    from bdmm_cli.hub.installed import read_manifest
    from bdmm_cli.pose.detector import resolve_keypoints

    _setup(media["det"], media["pose"])
    installed = Path(read_manifest()["dwpose-pose"].file)
    installed.write_bytes(media["det"].read_bytes())  # replaced behind bdmm's back
    res = runner.invoke(app, ["pose", str(media["video"]), "-o", str(tmp_path / "o"), "--spin", str(media["spin"]),
                              "--keypoints", "dwpose"])
    line = _one_error_line(res)
    assert "dwpose-pose" in line and "changed since" in line and "bdmm setup" in line
    assert resolve_keypoints("auto") != "dwpose"  # auto does not pick a file it cannot trust


@pytest.mark.slow
def test_fresh_machine_flow_with_dwpose_on_the_sample_assets(media, tmp_path):
    """The acceptance flow on any Python (3.13+ included, where MediaPipe is not installed):
    `bdmm setup --from` the authors' archives (rebuilt small) and DWPose's two files, `bdmm doctor`
    passes, then the README's animate command runs the whole pose front-end with
    `--keypoints dwpose` and no weight options."""
    import setup_helpers as S

    repo = Path(__file__).resolve().parents[1]
    (tmp_path / "SMPLDataset-checkpoints.zip").write_bytes(S.smpldataset_zip())
    (tmp_path / "bdmm_dancefashion_checkpoints.zip").write_bytes(S.fashionvideo_zip())
    _setup(tmp_path / "SMPLDataset-checkpoints.zip", tmp_path / "bdmm_dancefashion_checkpoints.zip",
           media["det"], media["pose"])
    assert runner.invoke(app, ["doctor"]).exit_code == 0
    out = tmp_path / "out.mp4"
    res = runner.invoke(app, ["animate", str(repo / "assets" / "person.jpg"), str(repo / "assets" / "walk.mp4"),
                              "-o", str(out), "--frames", "0:8", "--skip-missing", "--device", "cpu",
                              # the archive's OpenPose weights are constant stand-ins that find nobody;
                              # auto would pick them, so DWPose is named
                              "--keypoints", "dwpose"])
    assert res.exit_code == 0, res.output
    assert "keypoints: DWPose" in res.output
    from bdmm_cli.video import count_frames

    assert count_frames(out) == 8
