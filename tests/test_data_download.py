"""`bdmm data download`: the authors' preprocessed data set (a stand-in in their layout) from a
local archive and from a local HTTP server standing in for the share link, unpacked safely,
checked in full, published by name, and then trained on by name."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from typer.testing import CliRunner

import release_helpers as R
from bdmm_cli.cli import app
from bdmm_cli.dataset.download import MARKER, download_dataset
from bdmm_cli.dataset.layout import resolve_dataset
from bdmm_cli.errors import InputError
from bdmm_cli.paths import data_dir
from hub_server import local_hub, registry_with_datasets  # noqa: F401 - fixture
from train_helpers import TINY, make_body

runner = CliRunner()


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> dict[str, Path]:
    """The stand-in data set (folder and zip) and the results strips built from it."""
    root = tmp_path_factory.mktemp("release")
    body = make_body(root)
    data = R.standin_dataset(root / "src", body)
    zip_path = root / "UBC_fashion_smpl.zip"
    zip_path.write_bytes(R.zip_folder(data))
    results = R.standin_results(data, root / "res" / "eval_bdmm_dancefashion_checkpoints")
    results_zip = root / "bdmm_fashion_generated.zip"
    results_zip.write_bytes(R.zip_folder(results))
    return {"body": body, "data": data, "zip": zip_path, "results": results, "results_zip": results_zip}


def _error_line(result) -> str:
    errors = [ln for ln in result.output.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, result.output
    assert "Traceback" not in result.output
    return errors[0]


def _tree(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _datasets() -> Path:
    return data_dir() / "datasets"


def _leftovers() -> list[str]:
    root = _datasets()
    return sorted(p.name for p in root.iterdir() if not p.name.endswith(".lock")) if root.is_dir() else []


def test_local_archive_is_checked_published_and_found_by_name(release):
    res = runner.invoke(app, ["data", "download", "fashionvideo", "--from", str(release["zip"])])
    assert res.exit_code == 0, res.output
    dest = _datasets() / "fashionvideo"
    assert resolve_dataset("fashionvideo") == dest
    # every file of the archive, byte for byte, at the top of the named folder, plus the marker
    got = _tree(dest)
    assert got.pop(MARKER)
    assert got == _tree(release["data"])
    assert {"train", "test", "train_frames", "test_frames", "fid_stat.npz", "test_list.csv"} <= {p.name for p in dest.iterdir()}
    assert _leftovers() == ["fashionvideo"]  # no temporary folder left
    # idempotent: nothing unpacked or rewritten again, with or without --from
    mtimes = {p: p.stat().st_mtime_ns for p in dest.rglob("*")}
    for args in (["--from", str(release["zip"])], []):
        again = runner.invoke(app, ["data", "download", "fashionvideo", *args])
        assert again.exit_code == 0 and "already installed" in again.output, again.output
    assert {p: p.stat().st_mtime_ns for p in dest.rglob("*")} == mtimes
    # a different archive replaces it only with --force
    other = release["zip"].with_name("other.zip")
    other.write_bytes(R.zip_folder(release["data"], extra={"UBC_fashion_smpl/README.txt": b"another release"}))
    res = runner.invoke(app, ["data", "download", "fashionvideo", "--from", str(other)])
    assert res.exit_code == 1 and "--force" in _error_line(res) and not (dest / "README.txt").exists()
    res = runner.invoke(app, ["data", "download", "fashionvideo", "--from", str(other), "--force"])
    assert res.exit_code == 0, res.output
    assert (dest / "README.txt").read_bytes() == b"another release" and _leftovers() == ["fashionvideo"]


def test_unpacked_folder_and_tar_archive(release, tmp_path):
    res = download_dataset("fashionvideo", str(release["data"]))
    assert res.status == "installed" and res.counts["test_list"] == 2
    got = _tree(res.path)
    got.pop(MARKER)
    assert got == _tree(release["data"])
    assert download_dataset("fashionvideo", str(release["data"])).status == "already installed"
    tgz = tmp_path / "UBC_fashion_smpl.tar.gz"
    tgz.write_bytes(R.tar_folder(release["data"]))
    res = download_dataset("fashionvideo", str(tgz), data_root=tmp_path / "elsewhere")
    assert res.path == tmp_path / "elsewhere" / "fashionvideo" and res.status == "installed"
    assert resolve_dataset("fashionvideo", tmp_path / "elsewhere") == res.path


@pytest.mark.parametrize("member", ["../evil.png", "/abs/evil.png", "UBC_fashion_smpl/../../evil.png"])
def test_member_outside_its_folder_refuses_the_archive(release, tmp_path, member):
    bad = tmp_path / "slip.zip"
    bad.write_bytes(R.zip_folder(release["data"], extra={member: b"x"}))
    res = runner.invoke(app, ["data", "download", "fashionvideo", "--from", str(bad)])
    assert res.exit_code == 1 and "outside its folder" in _error_line(res)
    assert _leftovers() == [] and not (tmp_path.parent / "evil.png").exists()


def test_link_member_refuses_the_archive(release, tmp_path):
    bad = tmp_path / "link.tar.gz"
    bad.write_bytes(R.tar_folder(release["data"], links={"UBC_fashion_smpl/train/x": "/etc/passwd"}))
    with pytest.raises(InputError, match="link"):
        download_dataset("fashionvideo", str(bad))
    assert _leftovers() == []


@pytest.mark.parametrize("suffix", [".zip", ".tar.gz"])
def test_truncated_archive_is_refused(release, tmp_path, suffix):
    data = release["zip"].read_bytes() if suffix == ".zip" else R.tar_folder(release["data"])
    bad = tmp_path / f"cut{suffix}"
    bad.write_bytes(data[: len(data) * 2 // 3])
    res = runner.invoke(app, ["data", "download", "fashionvideo", "--from", str(bad)])
    assert res.exit_code == 1 and "truncated or corrupt" in _error_line(res)
    assert _leftovers() == []


def test_every_bad_file_is_listed_and_nothing_is_published(release, tmp_path):
    src = tmp_path / "UBC_fashion_smpl"
    import shutil

    shutil.copytree(release["data"], src)
    png = sorted((src / "test" ).rglob("*.png"))[3]
    png.write_bytes(png.read_bytes()[:200])  # a truncated frame
    (src / "fid_stat.npz").unlink()
    copy = sorted((src / "test_frames").rglob("*.png"))[0]
    copy.write_bytes(b"not a png")
    res = runner.invoke(app, ["data", "download", "fashionvideo", "--from", str(src)])
    line = _error_line(res)
    assert res.exit_code == 1 and "3 bad file(s)" in line
    for part in (png.name, "fid_stat.npz", copy.name):
        assert part in line
    assert _leftovers() == []


def _registry(tmp_path, hub, release, html: bool = False) -> Path:
    archives = {"fashionvideo": release["zip"], "fashionvideo-results": release["results_zip"]}
    return registry_with_datasets(tmp_path, hub, archives, html_for="fashionvideo" if html else "")


def test_download_needs_accept_licenses_prints_them_and_resumes(local_hub, release, tmp_path, monkeypatch):
    monkeypatch.setenv("BDMM_REGISTRY", str(_registry(tmp_path, local_hub, release)))
    res = runner.invoke(app, ["data", "download", "fashionvideo"])
    assert res.exit_code == 1 and "--accept-licenses" in _error_line(res)
    assert "license of fashionvideo" in res.output and local_hub.count() == 0
    # an interrupted earlier download resumes with a Range request
    from bdmm_cli.hub.urlfetch import _cache_folder

    url = f"{local_hub.endpoint}/files/dl/{release['zip'].name}"
    part = _cache_folder(url) / (release["zip"].name + ".part")
    part.parent.mkdir(parents=True)
    part.write_bytes(release["zip"].read_bytes()[:5000])
    res = runner.invoke(app, ["data", "download", "fashionvideo", "--accept-licenses"])
    assert res.exit_code == 0, res.output
    gets = [r for r in local_hub.requests if r.method == "GET"]
    assert len(gets) == 1 and gets[0].headers.get("range") == "bytes=5000-"
    got = _tree(_datasets() / "fashionvideo")
    got.pop(MARKER)
    assert got == _tree(release["data"])
    again = runner.invoke(app, ["data", "download", "fashionvideo", "--accept-licenses"])
    assert again.exit_code == 0 and "already installed" in again.output
    assert len([r for r in local_hub.requests if r.method == "GET"]) == 1


def test_share_link_page_prints_the_link_and_the_from_command(local_hub, release, tmp_path, monkeypatch):
    monkeypatch.setenv("BDMM_REGISTRY", str(_registry(tmp_path, local_hub, release, html=True)))
    res = runner.invoke(app, ["data", "download", "fashionvideo", "--accept-licenses"])
    line = _error_line(res)
    assert res.exit_code != 0 and "?e=share" in line
    assert "bdmm data download fashionvideo --from UBC_fashion_smpl.zip" in line
    assert _leftovers() == []
    res = runner.invoke(app, ["data", "download", "fashionvideo", "--from", str(release["zip"])])
    assert res.exit_code == 0


def test_train_finds_the_downloaded_data_set_by_name(release, tmp_path):
    res = runner.invoke(app, ["train", "--data", "fashionvideo", "--out", str(tmp_path / "run"), "--no-progress"])
    assert res.exit_code == 1 and "bdmm data download fashionvideo" in _error_line(res)
    assert download_dataset("fashionvideo", str(release["zip"])).status == "installed"
    cfg = tmp_path / "tiny.toml"
    cfg.write_text("".join(f"{k} = {str(v).lower() if isinstance(v, bool) else repr(v).replace(chr(39), chr(34))}\n"
                           for k, v in {**TINY, "iterations": 2}.items()))
    res = runner.invoke(app, ["train", "--data", "fashionvideo", "--body-model", str(release["body"]),
                              "--config", str(cfg), "--out", str(tmp_path / "run"), "--no-progress"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "run" / "checkpoints" / "latest.pt").is_file()
    assert str(_datasets() / "fashionvideo") in (tmp_path / "run" / "config.toml").read_text() or \
        'data = "fashionvideo"' in (tmp_path / "run" / "config.toml").read_text()


def test_results_archive_is_checked_as_strips(release, tmp_path):
    res = download_dataset("fashionvideo-results", str(release["results_zip"]))
    assert res.status == "installed" and res.counts["strips"] == len(list(release["results"].rglob("*.png")))
    got = _tree(res.path)
    got.pop(MARKER)
    assert got == _tree(release["results"])
    # an image that is not a 5-panel strip refuses the archive
    bad = tmp_path / "bad.zip"
    bad.write_bytes(R.zip_folder(release["results"], extra={
        "eval_bdmm_dancefashion_checkpoints/video_00.mp4/frames/frame_99999.png":
            (release["data"] / "test" / "video_00.mp4" / "frames" / "frame_00000.png").read_bytes()}))
    with pytest.raises(InputError, match="not a strip"):
        download_dataset("fashionvideo-results", str(bad), force=True)


def test_eval_checkpoint_finds_the_downloaded_data_set_by_name(release, tmp_path):
    import torch

    from bdmm_cli.model import BDMMGenerator, GeneratorConfig
    from bdmm_cli.model.checkpoint import save_generator

    torch.manual_seed(0)
    save_generator(BDMMGenerator(GeneratorConfig(ngf=8, img_f=32, style_dim=32)).eval(), tmp_path / "G")
    args = ["eval", "--checkpoint", str(tmp_path / "G"), "--data", "fashionvideo", "-m", "l1",
            "--body-model", str(release["body"]), "--keep", str(tmp_path / "keep"), "--device", "cpu"]
    res = runner.invoke(app, args)
    assert res.exit_code == 1 and "bdmm data download fashionvideo" in _error_line(res)
    download_dataset("fashionvideo", str(release["zip"]))
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    gt = sorted(p.name for p in (tmp_path / "keep" / "ground_truth").iterdir())  # one per test sequence
    assert gt == [f"{i:04d}_{p.name}" for i, p in enumerate(sorted((release["data"] / "test").iterdir()))]


def _astronaut_video(path: Path, frames: int = 4, shift: int = 3) -> bytes:
    import numpy as np
    from skimage import data

    from bdmm_cli.video import VideoWriter

    img = data.astronaut()[:256, :256]   # public domain, a waist-up person
    with VideoWriter(path, fps=10, size=(256, 256)) as w:
        for i in range(frames):
            w.write(np.ascontiguousarray(np.roll(img, i * shift, axis=1)))
    return path.read_bytes()


@pytest.mark.mediapipe  # data prepare poses the videos with MediaPipe here
def test_from_videos_downloads_in_parallel_checks_each_decodes_then_prepares(local_hub, tmp_path):
    import torch

    from bdmm_cli.dataset.layout import OfficialDataset, read_test_list
    from bdmm_cli.pose.hmr import HMR

    good = {n: _astronaut_video(tmp_path / n, shift=s) for n, s in (("a1.mp4", 3), ("b2.mp4", 2), ("c3.mp4", 4))}
    urls = {n: local_hub.add_static(f"videos/{n}", data, "video/mp4") for n, data in good.items()}
    local_hub.add_static("videos/c3.mp4", good["c3.mp4"][: len(good["c3.mp4"]) // 2], "video/mp4")  # broken upload
    (tmp_path / "train.txt").write_text(f"{urls['a1.mp4']}\n{urls['c3.mp4']}\n")
    test_list = local_hub.add_static("lists/test.txt", f"{urls['b2.mp4']}\n".encode(), "text/plain")
    torch.manual_seed(0)
    torch.save(HMR().state_dict(), tmp_path / "spin.pt")
    args = ["data", "download", "fashionvideo", "--from-videos", "--train-list", str(tmp_path / "train.txt"),
            "--test-list", test_list, "--spin", str(tmp_path / "spin.pt"), "--workers", "3", "--device", "cpu"]
    res = runner.invoke(app, args)
    assert res.exit_code == 1 and "--accept-licenses" in _error_line(res)
    res = runner.invoke(app, [*args, "--accept-licenses"])
    line = _error_line(res)
    assert res.exit_code == 1 and "1 of 3 videos failed" in line and "c3.mp4" in line and "does not decode" in line
    assert _leftovers() == []
    # the server is fixed; the run resumes: only the broken video is fetched again
    local_hub.add_static("videos/c3.mp4", good["c3.mp4"], "video/mp4")
    before = {n: local_hub.count("GET", f"videos/{n}") for n in good}
    res = runner.invoke(app, [*args, "--accept-licenses"])
    assert res.exit_code == 0, res.output
    after = {n: local_hub.count("GET", f"videos/{n}") for n in good}
    assert after == {"a1.mp4": before["a1.mp4"], "b2.mp4": before["b2.mp4"], "c3.mp4": before["c3.mp4"] + 1}
    dest = _datasets() / "fashionvideo"
    assert [v.name for v in OfficialDataset(dest, "train").videos] == ["a1.mp4", "c3.mp4"]
    assert [len(v) for v in OfficialDataset(dest, "test").videos] == [4]
    (seq,) = read_test_list(dest / "test_list.csv")
    assert seq.ref_frame == dest / "test" / "b2.mp4" / "frames" / "frame_00000.png"
    assert (dest / MARKER).is_file() and _leftovers() == ["fashionvideo"]
    again = runner.invoke(app, [*args, "--accept-licenses"])
    assert again.exit_code == 0 and "already installed" in again.output


@pytest.mark.mediapipe  # data prepare poses the videos with MediaPipe here
def test_iper_videos_are_sorted_by_the_official_split_lists_then_prepared(tmp_path):
    import torch

    from bdmm_cli.dataset.layout import OfficialDataset
    from bdmm_cli.pose.hmr import HMR

    release = tmp_path / "iPER_1024_video_release"
    release.mkdir()
    for i, name in enumerate(("001_1_1.mp4", "001_1_2.mp4", "002_1_1.mp4", "003_1_1.mp4")):
        _astronaut_video(release / name, shift=i + 1)
    (release / "train.txt").write_text("001/1/1\n002/1/1\n")
    (release / "val.txt").write_text("001/1/2\n")
    archive = tmp_path / "iPER_1024_video_release.zip"
    archive.write_bytes(R.zip_folder(release))
    torch.manual_seed(0)
    torch.save(HMR().state_dict(), tmp_path / "spin.pt")
    opts = ["--spin", str(tmp_path / "spin.pt"), "--device", "cpu"]
    res = runner.invoke(app, ["data", "download", "iper"])
    assert res.exit_code == 1 and "--from" in _error_line(res)
    # a listed video the archive lacks: every one is named, nothing is prepared
    (tmp_path / "val2.txt").write_text("001/1/2\n009/9/9\n")
    res = runner.invoke(app, ["data", "download", "iper", "--from", str(archive), "--test-list",
                              str(tmp_path / "val2.txt"), *opts])
    assert res.exit_code == 1 and "009_9_9" in _error_line(res) and _leftovers() == []
    res = runner.invoke(app, ["data", "download", "iper", "--from", str(archive), *opts])
    assert res.exit_code == 0, res.output
    dest = _datasets() / "iper"
    assert resolve_dataset("iper") == dest
    assert [v.name for v in OfficialDataset(dest, "train").videos] == ["001_1_1.mp4", "002_1_1.mp4"]
    assert [v.name for v in OfficialDataset(dest, "test").videos] == ["001_1_2.mp4"]  # 003 is in no list
    assert (dest / "test_list.csv").is_file() and (dest / MARKER).is_file()
