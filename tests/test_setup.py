"""`bdmm setup`: the authors' release (rebuilt small, in their layout) installed in one command,
from local archives and from a local HTTP server standing in for the download sites."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import setup_helpers as H
from bdmm_cli.cli import app
from bdmm_cli.hub.installed import installed_path, installed_root, read_manifest
from bdmm_cli.paths import data_dir
from hub_server import local_hub  # noqa: F401 - fixture
from weights_helpers import same_state

runner = CliRunner()
ALL = ["smpl", "spin", "generator-fashionvideo", "discriminator-fashionvideo", "temporal-discriminator-fashionvideo",
       "smpl-mean-params", "smplify-gmm", "openpose-body25"]


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> dict[str, Path]:
    """The four downloads as files: the authors' two zips, SPIN's checkpoint and data archive."""
    root = tmp_path_factory.mktemp("release")
    files = {"smpldataset": root / "SMPLDataset-checkpoints.zip", "fashion": root / "bdmm_dancefashion_checkpoints.zip",
             "spin_model": root / "model_checkpoint.pt", "spin_data": root / "spin-data.tar.gz"}
    files["smpldataset"].write_bytes(H.smpldataset_zip())
    files["fashion"].write_bytes(H.fashionvideo_zip())
    files["spin_model"].write_bytes(H._save({"model": H.spin_state_dict(), "epoch": 3}))
    files["spin_data"].write_bytes(H.spin_data_tar())
    return files


def _invoke(*args: str):
    return runner.invoke(app, ["setup", *args])


def _installed_files() -> dict[str, int]:
    root = data_dir()
    return {str(p): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()} if root.exists() else {}


def _error_line(result) -> str:
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error:")]
    assert len(errors) == 1, result.output
    return errors[0]


def test_local_archives_install_everything_once(release, tmp_path):
    res = _invoke("--from", str(release["smpldataset"]), "--from", str(release["fashion"]),
                  "--from", str(release["spin_data"]))
    assert res.exit_code == 0, res.output
    manifest = read_manifest()
    assert sorted(manifest) == sorted(ALL)
    # sha256 of every source recorded (the member bytes, as the archive holds them)
    with zipfile.ZipFile(release["smpldataset"]) as zf:
        want = hashlib.sha256(zf.read("checkpoints/spin_ckpt.pth")).hexdigest()
    assert manifest["spin"].source_sha256 == want and "spin_ckpt.pth" in manifest["spin"].source
    assert manifest["generator-fashionvideo"].sha256 == hashlib.sha256(
        (installed_path("generator-fashionvideo") / "model.safetensors").read_bytes()).hexdigest()
    for name in ALL:
        assert name in res.output

    # the installed files are what the defaults resolve to, with the source's exact tensors
    from bdmm_cli.model import load_discriminators, load_generator
    from bdmm_cli.pose.gmm import read_gmm_file
    from bdmm_cli.pose.hmr import load_pose_regressor, read_smpl_mean_params
    from bdmm_cli.state_dict import read_checkpoint_file

    g, d, d_v = H.networks(0)
    assert same_state(load_generator("fashionvideo").state_dict(), g.state_dict())
    d2, dv2 = load_discriminators("fashionvideo")
    assert same_state(d2.state_dict(), d.state_dict()) and same_state(dv2.state_dict(), d_v.state_dict())
    spin = {k: v.contiguous() for k, v in H.spin_state_dict().items()}
    assert same_state(load_pose_regressor().state_dict(), spin)
    prior = read_gmm_file(installed_path("smplify-gmm"))
    for k, v in H.gmm_arrays().items():
        np.testing.assert_array_equal(prior[k], v)
    pose, shape, cam = read_smpl_mean_params(installed_path("smpl-mean-params"))
    np.testing.assert_allclose(pose[0], np.linspace(0, 1, 144), rtol=1e-6)
    openpose = read_checkpoint_file(installed_path("openpose-body25"))
    assert openpose.kind == "openpose_body25" and same_state(
        openpose.state_dict, {k: v.contiguous() for k, v in H.openpose_state_dict().items()})
    # --keypoints auto now picks the installed OpenPose; mediapipe can still be chosen
    from bdmm_cli.pose.detector import load_keypoint_model, resolve_keypoints

    assert resolve_keypoints("auto") == "openpose" and resolve_keypoints("mediapipe") == "mediapipe"
    kp = load_keypoint_model("auto")
    assert kp.kind == "openpose" and same_state(kp.net.state_dict(), openpose.state_dict)
    if importlib.util.find_spec("mediapipe") is not None:  # the optional extra (Python <= 3.12)
        assert load_keypoint_model("mediapipe").net is None
    from bdmm_cli.body import load_body_model

    assert load_body_model(None).kind == "synthetic"

    # a second run installs nothing and rewrites nothing
    before = _installed_files()
    again = _invoke("--from", str(release["smpldataset"]), "--from", str(release["fashion"]),
                    "--from", str(release["spin_data"]))
    assert again.exit_code == 0, again.output
    assert "already installed" in again.output and "[green]installed" not in again.output
    assert _installed_files() == before


def test_installed_files_follow_the_umask(release):
    old = os.umask(0o022)
    try:
        assert _invoke("--from", str(release["fashion"])).exit_code == 0
    finally:
        os.umask(old)
    folder = installed_path("generator-fashionvideo")
    assert stat.S_IMODE(folder.stat().st_mode) == 0o755
    assert stat.S_IMODE((folder / "model.safetensors").stat().st_mode) == 0o644
    assert stat.S_IMODE((installed_root() / "installed.json").stat().st_mode) == 0o644


def test_unpacked_folder_and_single_file(release, tmp_path):
    with zipfile.ZipFile(release["fashion"]) as zf:
        zf.extractall(tmp_path / "BDMM" / "checkpoints")
    res = _invoke("--from", str(tmp_path / "BDMM"), "--from", str(release["spin_model"]))
    assert res.exit_code == 0, res.output
    assert sorted(read_manifest()) == ["discriminator-fashionvideo", "generator-fashionvideo", "spin",
                                       "temporal-discriminator-fashionvideo"]
    assert "still missing: smpl" in res.output


def test_doctor_ready_and_animate_needs_no_weight_options(release, tmp_path, tmp_path_factory):
    from animate_helpers import MODEL_SIZE, make_env

    env = make_env(tmp_path_factory.mktemp("env"), 7, 12.5)
    before = runner.invoke(app, ["doctor"])
    assert before.exit_code == 1 and "bdmm setup" in before.output
    res = _invoke("--from", str(release["smpldataset"]), "--from", str(release["fashion"]))
    assert res.exit_code == 0, res.output
    doctor = runner.invoke(app, ["doctor"], env={"COLUMNS": "250"})
    assert doctor.exit_code == 0, doctor.output
    out = tmp_path / "out.mp4"
    anim = runner.invoke(app, ["animate", str(env["photo"]), str(env["video"]), "-o", str(out),
                               "--poses", str(env["poses"]), "--source-pose", str(env["source_pose"]),
                               "--model-size", str(MODEL_SIZE), "--size", str(MODEL_SIZE), "--device", "cpu",
                               "--quiet"])
    assert anim.exit_code == 0, anim.output
    assert out.stat().st_size > 0


@pytest.mark.parametrize("member", ["../escape.pth", "/abs/escape.pth", "ok/../../escape.pth"])
def test_path_traversal_archive_refuses_the_whole_command(release, tmp_path, member):
    evil = tmp_path / "evil.zip"
    evil.write_bytes(H.zip_bytes({"checkpoints/gmm_08.pkl": b"x", member: b"payload"}))
    res = _invoke("--from", str(release["fashion"]), "--from", str(evil))
    assert res.exit_code == 1
    line = _error_line(res)
    assert "evil.zip" in line and "outside" in line
    assert read_manifest() == {} and _installed_files() == {}
    assert not (tmp_path / "escape.pth").exists() and not (tmp_path.parent / "escape.pth").exists()


def test_truncated_or_corrupt_archive_refuses_the_whole_command(release, tmp_path):
    data = release["smpldataset"].read_bytes()
    cut = tmp_path / "cut.zip"
    cut.write_bytes(data[: len(data) // 2])
    res = _invoke("--from", str(release["fashion"]), "--from", str(cut))
    assert res.exit_code == 1 and "cut.zip" in _error_line(res) and "truncated or corrupt" in res.output
    assert _installed_files() == {}
    # a flipped byte inside a member: its CRC fails while it is read
    raw = bytearray(H.zip_bytes({"checkpoints/spin_ckpt.pth": bytes(range(256)) * 64}))
    raw[200] ^= 0xFF
    bad = tmp_path / "crc.zip"
    bad.write_bytes(bytes(raw))
    res = _invoke("--from", str(release["fashion"]), "--from", str(bad))
    assert res.exit_code == 1 and "crc.zip" in _error_line(res)
    assert _installed_files() == {}
    tgz = tmp_path / "cut.tar.gz"
    tgz.write_bytes(H.spin_data_tar()[:-40])
    res = _invoke("--from", str(tgz))
    assert res.exit_code == 1 and "cut.tar.gz" in _error_line(res)


def test_member_over_the_size_cap_and_wrong_network(release, tmp_path, monkeypatch):
    monkeypatch.setenv("BDMM_SETUP_MAX_MEMBER_BYTES", "1000")
    res = _invoke("--from", str(release["fashion"]))
    assert res.exit_code == 1 and "cap" in _error_line(res)
    monkeypatch.delenv("BDMM_SETUP_MAX_MEMBER_BYTES")
    # a file named latest_net_G.pth that holds a discriminator fails its strict loader: nothing installed
    files = H.fashionvideo_files()
    files["latest_net_G.pth"] = files["latest_net_D.pth"]
    wrong = tmp_path / "wrong.zip"
    wrong.write_bytes(H.zip_bytes({f"x/{k}": v for k, v in files.items()}))
    res = _invoke("--from", str(release["smpldataset"]), "--from", str(wrong))
    assert res.exit_code == 1 and "holds a BDMM spatial discriminator" in _error_line(res)
    assert _installed_files() == {}


def test_a_different_file_is_replaced_only_with_force(release, tmp_path):
    assert _invoke("--from", str(release["fashion"])).exit_code == 0
    other = tmp_path / "other.zip"
    other.write_bytes(H.fashionvideo_zip(seed=1))
    res = _invoke("--from", str(other))
    assert res.exit_code == 1 and "--force" in _error_line(res)
    res = _invoke("--from", str(other), "--force")
    assert res.exit_code == 0, res.output
    from bdmm_cli.model import load_generator

    assert same_state(load_generator("fashionvideo").state_dict(), H.networks(1)[0].state_dict())


def _registry_with_sources(tmp_path, hub, release, html_for: str = "") -> Path:
    """The project's registry with its [sources.*] pointing at the local server."""
    from bdmm_cli.hub.registry import DEFAULT_REGISTRY

    text = DEFAULT_REGISTRY.read_text()
    text = text[: text.index("\n[sources.bdmm-smpldataset]")]
    names = {"bdmm-smpldataset": ("smpldataset", '["smpl", "spin", "smplify-gmm", "openpose-body25"]'),
             "bdmm-fashionvideo": ("fashion", '["generator-fashionvideo", "discriminator-fashionvideo", '
                                             '"temporal-discriminator-fashionvideo"]'),
             "spin-model": ("spin_model", '["spin"]'), "spin-data": ("spin_data", '["smpl-mean-params"]')}
    for name, (key, provides) in names.items():
        path = release[key]
        if name == html_for:
            url = hub.add_static(f"share/{name}", b"<html><body>Sign in to OneDrive</body></html>", "text/html")
        else:
            url = hub.add_static(f"dl/{path.name}", path.read_bytes())
        text += (f'\n[sources.{name}]\nurl = "{url}?e=share"\ndownload_url = "{url}"\nfilename = "{path.name}"\n'
                 f'provides = {provides}\nlicense = "license of {name}"\nprovenance = "test"\n')
    reg = tmp_path / "registry.toml"
    reg.write_text(text)
    return reg


def test_downloads_need_accept_licenses_and_print_them_first(local_hub, release, tmp_path, monkeypatch):
    monkeypatch.setenv("BDMM_REGISTRY", str(_registry_with_sources(tmp_path, local_hub, release)))
    res = _invoke()
    assert res.exit_code == 1 and "--accept-licenses" in _error_line(res)
    assert "license of bdmm-smpldataset" in res.output and "license of bdmm-fashionvideo" in res.output
    assert local_hub.count() == 0 and _installed_files() == {}
    url = local_hub.add_static("dl/model_checkpoint.pt", release["spin_model"].read_bytes())
    res = _invoke("--from", url)
    assert res.exit_code == 1 and "--accept-licenses" in _error_line(res) and local_hub.count() == 0

    res = _invoke("--accept-licenses")
    assert res.exit_code == 0, res.output
    out = res.output
    assert out.index("license of bdmm-smpldataset") < out.index("bdmm setup")  # licenses before the summary
    assert sorted(read_manifest()) == sorted(ALL)
    # the authors' archive already carries SPIN: SPIN's own checkpoint (a fallback) is not downloaded
    assert local_hub.count(contains="model_checkpoint.pt") == 0 and "spin_ckpt.pth" in read_manifest()["spin"].source
    # a second run downloads nothing and installs nothing
    n = local_hub.count()
    before = _installed_files()
    again = _invoke("--accept-licenses")
    assert again.exit_code == 0, again.output
    assert local_hub.count() == n and _installed_files() == before


def test_share_link_page_prints_the_link_and_the_from_command(local_hub, release, tmp_path, monkeypatch):
    monkeypatch.setenv("BDMM_REGISTRY", str(_registry_with_sources(tmp_path, local_hub, release,
                                                                   html_for="bdmm-fashionvideo")))
    res = _invoke("--accept-licenses")
    assert res.exit_code == 1, res.output
    assert "?e=share" in res.output and "bdmm setup --from bdmm_dancefashion_checkpoints.zip" in res.output
    assert "generator-fashionvideo" in res.output and "still missing" in res.output
    assert "spin" in read_manifest() and "generator-fashionvideo" not in read_manifest()
    assert local_hub.count(contains="model_checkpoint.pt") == 0
    # the user downloads it by hand and finishes with --from
    res = _invoke("--from", str(release["fashion"]))
    assert res.exit_code == 0 and "generator-fashionvideo" in read_manifest()


def test_url_download_resumes_with_a_range_request(local_hub, release):
    from bdmm_cli.hub.urlfetch import _cache_folder, download_url

    data = release["spin_data"].read_bytes() * 50
    url = local_hub.add_static("dl/big.bin", data)
    part = _cache_folder(url) / "big.bin.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(data[:1000])  # an interrupted earlier download
    path = download_url(url)
    assert path.read_bytes() == data and not part.exists()
    gets = [r for r in local_hub.requests if r.method == "GET"]
    assert len(gets) == 1 and gets[0].headers.get("range") == "bytes=1000-"
    assert download_url(url) == path and len([r for r in local_hub.requests if r.method == "GET"]) == 1  # cached
    # the announced size is checked
    from bdmm_cli.errors import MissingResourceError

    url2 = local_hub.add_static("dl/short.bin", b"12345")
    with pytest.raises(MissingResourceError, match="expected 99"):
        download_url(url2, expected_size=99)


def test_url_from_is_downloaded_then_treated_as_a_path(local_hub, release):
    url = local_hub.add_static("dl/model_checkpoint.pt", release["spin_model"].read_bytes())
    res = _invoke("--from", url, "--accept-licenses")
    assert res.exit_code == 0, res.output
    assert sorted(read_manifest()) == ["spin"]
    assert json.loads((installed_path("spin") / "config.json").read_text())["kind"] == "spin"
    assert torch.equal(torch.load(release["spin_model"], weights_only=True)["model"]["fc1.weight"],
                       __import__("bdmm_cli.pose.hmr", fromlist=["x"]).load_pose_regressor().fc1.weight)


def test_spin_falls_back_to_spins_own_checkpoint(local_hub, release, tmp_path, monkeypatch):
    monkeypatch.setenv("BDMM_REGISTRY", str(_registry_with_sources(tmp_path, local_hub, release,
                                                                   html_for="bdmm-smpldataset")))
    res = _invoke("--accept-licenses")
    assert res.exit_code == 1, res.output  # the SMPLDataset archive still needs the user
    assert "bdmm setup --from SMPLDataset-checkpoints.zip" in res.output
    manifest = read_manifest()
    assert "model_checkpoint.pt" in manifest["spin"].source and "smpl-mean-params" in manifest
    assert "smpl" not in manifest and "still missing: smpl" in res.output
    # the user fetches the archive by hand: the authors' spin_ckpt.pth replaces SPIN's own checkpoint
    res = _invoke("--from", str(release["smpldataset"]))
    assert res.exit_code == 0, res.output
    manifest = read_manifest()
    assert "spin_ckpt.pth" in manifest["spin"].source and "smpl" in manifest
    # and SPIN's checkpoint offered again later does not displace it
    res = _invoke("--from", str(release["spin_model"]))
    assert res.exit_code == 0 and "spin_ckpt.pth" in read_manifest()["spin"].source


@pytest.mark.slow
@pytest.mark.mediapipe
def test_fresh_machine_flow_on_the_sample_assets(release, tmp_path):
    """The issue's acceptance flow: setup from the archives, doctor exits 0, then the README's
    animate command runs the whole pose front-end (MediaPipe + the installed SPIN) on
    assets/ with no weight options."""
    repo = Path(__file__).resolve().parents[1]
    assert _invoke("--from", str(release["smpldataset"]), "--from", str(release["fashion"])).exit_code == 0
    assert runner.invoke(app, ["doctor"]).exit_code == 0
    out = tmp_path / "out.mp4"
    res = runner.invoke(app, ["animate", str(repo / "assets" / "person.jpg"), str(repo / "assets" / "walk.mp4"),
                              "-o", str(out), "--frames", "0:8", "--skip-missing", "--device", "cpu", "--quiet",
                              # the archive's OpenPose weights are constant stand-ins that find nobody;
                              # --keypoints auto would pick them (tested in test_local_archives_...)
                              "--keypoints", "mediapipe"])
    assert res.exit_code == 0, res.output
    from bdmm_cli.video.read import iter_frames

    assert len(list(iter_frames(out))) == 8


def test_unreachable_download_is_one_plain_line():
    """A refused connection is said in words, without the HTTP library's internals."""
    import socket

    from bdmm_cli.errors import MissingResourceError
    from bdmm_cli.hub.urlfetch import download_url

    with socket.socket() as s:  # a port on this machine that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(MissingResourceError) as info:
        download_url(f"http://127.0.0.1:{port}/SMPLDataset.zip")
    msg = str(info.value)
    assert "cannot connect to 127.0.0.1" in msg and "HTTPConnectionPool" not in msg and "\n" not in msg
