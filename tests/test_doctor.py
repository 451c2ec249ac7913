"""`bdmm doctor`: exit code 1 with the fix commands when something the main job needs is missing,
0 once the body model and the registry's generator and SPIN weights are installed and verified."""

from __future__ import annotations

import hashlib

from typer.testing import CliRunner

from bdmm_cli.cli import app
from bdmm_cli.pipeline.requirements import can_animate, run_checks
from bdmm_cli.pose.detector import mediapipe_available


def _registry(tmp_path, files: dict[str, bytes]) -> str:
    """A registry of url entries whose files are already in the download cache."""
    from bdmm_cli.paths import cache_dir

    lines = ['schema = 1', '[hub]', 'repo = "test/bdmm"', 'revision = "v1"']
    kinds = {"generator-fashionvideo": "generator", "spin": "spin"}
    for name, data in files.items():
        folder = cache_dir() / "weights" / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "model.bin").write_bytes(data)
        lines += [f"[models.{name}]", f'kind = "{kinds[name]}"', 'source = "url"', 'filename = "model.bin"',
                  f'url = "http://127.0.0.1:9/{name}"', f'sha256 = "{hashlib.sha256(data).hexdigest()}"']
    path = tmp_path / "registry.toml"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_doctor_reports_missing_items_with_fixes(tmp_path, monkeypatch):
    monkeypatch.setenv("BDMM_REGISTRY", _registry(tmp_path, {}))
    monkeypatch.setenv("COLUMNS", "250")
    res = CliRunner().invoke(app, ["doctor"])
    assert res.exit_code == 1, res.output
    assert "SMPL model" in res.output and "bdmm body install" in res.output
    assert "ffmpeg" in res.output and "torch" in res.output and "pytorch3d" in res.output
    checks = run_checks()
    assert not can_animate(checks)
    # no OpenPose or DWPose installed: a keypoint detector is there only where MediaPipe is (Python <= 3.12)
    no_detector = [] if mediapipe_available() else ["keypoint detector"]
    assert sorted(c.name for c in checks if c.required and not c.ok) == sorted(["SMPL model"] + no_detector)
    assert {"keypoints: openpose", "keypoints: dwpose", "keypoints: mediapipe"} <= {c.name for c in checks}
    if no_detector:
        assert "bdmm setup" in res.output


def test_doctor_passes_when_everything_is_installed(tmp_path, monkeypatch):
    from bdmm_cli.body import install_body_model, write_synthetic_body_model

    install_body_model(write_synthetic_body_model(tmp_path / "body.npz"))
    if not mediapipe_available():  # Python 3.13+: the keypoint detector is DWPose (stand-in files)
        import pytest

        pytest.importorskip("onnx")
        from dwpose_helpers import write_standins

        from bdmm_cli.setup import run_setup

        run_setup([str(p) for p in write_standins(tmp_path / "dwpose")])
    reg = _registry(tmp_path, {"generator-fashionvideo": b"generator bytes", "spin": b"spin bytes"})
    monkeypatch.setenv("BDMM_REGISTRY", reg)
    monkeypatch.setenv("COLUMNS", "250")
    res = CliRunner().invoke(app, ["doctor"])
    assert res.exit_code == 0, res.output
    assert "verified" in res.output and "synthetic" in res.output
    # a corrupted cached weight file is reported (and the check fails)
    from bdmm_cli.paths import cache_dir

    (cache_dir() / "weights" / "spin" / "model.bin").write_bytes(b"tampered")
    res = CliRunner().invoke(app, ["doctor"])
    assert res.exit_code == 1 and "NOT verified" in res.output


def test_doctor_fix_for_unpublished_weights_is_import(tmp_path, monkeypatch):
    """A registry entry that is not on the Hub yet: the fix is to import the authors' file,
    not a download that cannot work; a published one keeps the download command."""
    reg = tmp_path / "registry.toml"
    reg.write_text("\n".join([
        "schema = 1", "[hub]", 'repo = "test/bdmm"', 'revision = "v1"',
        "[models.generator-fashionvideo]", 'kind = "generator"', 'source = "project"',
        'filename = "fashionvideo/generator/model.safetensors"', "published = false",
        "[models.spin]", 'kind = "spin"', 'source = "url"', 'filename = "spin.pt"',
        'url = "http://127.0.0.1:9/spin.pt"', f'sha256 = "{"0" * 64}"',
    ]) + "\n")
    monkeypatch.setenv("BDMM_REGISTRY", str(reg))
    checks = {c.name: c for c in run_checks()}
    gen = checks["weights: generator-fashionvideo"]
    assert gen.required and not gen.ok and "not published" in gen.detail
    assert gen.fix.startswith("`bdmm weights import FILE -o DIR`") and "download" not in gen.fix
    assert checks["weights: spin"].fix.startswith("bdmm weights download spin")


# --- issue 22 point 6: sections, full paths, GPU advice, body model size ----------------------

import pickle  # noqa: E402
import re  # noqa: E402

import pytest  # noqa: E402

from bdmm_cli.pipeline.requirements import (  # noqa: E402
    ANIMATE,
    CPU_WHEEL_INDEX,
    SMPL_VERTICES,
    TRAINING,
    gpu_check,
    nvidia_gpus,
)


def _training_registry(tmp_path) -> str:
    """generator + spin cached (animate can run), vgg19 and i3d (training / evaluation) not."""
    path = _registry(tmp_path, {"generator-fashionvideo": b"generator bytes", "spin": b"spin bytes"})
    text = open(path).read()
    for name, kind in (("vgg19", "vgg19"), ("i3d", "i3d")):
        text += (f'[models.{name}]\nkind = "{kind}"\nsource = "url"\nfilename = "{name}.pth"\n'
                 f'url = "http://127.0.0.1:9/{name}"\nsha256 = "{"0" * 64}"\n')
    open(path, "w").write(text)
    return path


def _install_body(tmp_path, arrays) -> None:
    from bdmm_cli.body import install_body_model

    src = tmp_path / "SMPL_NEUTRAL.pkl"
    src.write_bytes(pickle.dumps({k: v for k, v in arrays.items() if k != "kind"}, protocol=2))
    install_body_model(src, force=True)


@pytest.mark.mediapipe  # animate is ready only with a keypoint detector: MediaPipe here
def test_doctor_shows_animate_first_then_training_under_a_heading(tmp_path, monkeypatch):
    from bdmm_cli.body.synthetic import smpl_layout_body_arrays

    _install_body(tmp_path, smpl_layout_body_arrays(0))  # SMPL-sized: no warning
    monkeypatch.setenv("BDMM_REGISTRY", _training_registry(tmp_path))
    monkeypatch.setenv("COLUMNS", "250")
    checks = {c.name: c for c in run_checks()}
    assert {n for n, c in checks.items() if c.section == TRAINING} == {"weights: vgg19", "weights: i3d"}
    assert all(checks[n].section == ANIMATE for n in ("torch", "GPU (CUDA)", "ffmpeg", "SMPL model",
                                                     "weights: generator-fashionvideo", "weights: spin"))
    res = CliRunner().invoke(app, ["doctor"])
    assert res.exit_code == 0, res.output  # what only training needs does not stop animate
    out = res.output
    heading = out.index("Training and evaluation")
    for name in ("torch", "SMPL model", "weights: generator-fashionvideo", "bdmm animate can run"):
        assert out.index(name) < heading, name
    vgg = next(ln for ln in out.splitlines() if "weights: vgg19" in ln)
    assert out.index("weights: vgg19") > heading and "missing" in vgg and "bdmm weights download vgg19" in vgg
    smpl = next(ln for ln in out.splitlines() if "SMPL model" in ln)
    assert "│ ok" in smpl and "warning" not in smpl and f"{SMPL_VERTICES} vertices" in smpl


def _column_text(output: str, row_name: str, column: int) -> str:
    """The text of one table cell over all the lines rich folded it onto (spaces dropped)."""
    cells, inside = [], False
    for line in output.splitlines():
        parts = line.split("│")
        if len(parts) < 5:  # borders and titles
            continue
        name = parts[1].strip()
        if name:  # a row starts here
            if inside:
                break
            inside = name.startswith(row_name)
        if inside:
            cells.append(parts[column])
    return "".join(cells).replace(" ", "")


def test_doctor_wraps_long_paths_instead_of_cutting_them(tmp_path, monkeypatch):
    home = tmp_path / ("a-long-folder-name-" * 4) / "bdmm-data-directory-with-a-long-name"
    monkeypatch.setenv("BDMM_HOME", str(home))
    monkeypatch.setenv("BDMM_REGISTRY", _registry(tmp_path, {}))
    monkeypatch.setenv("COLUMNS", "90")
    res = CliRunner().invoke(app, ["doctor"])
    assert res.exit_code == 1
    assert "…" not in res.output
    from bdmm_cli.body import installed_model_path

    found = _column_text(res.output, "SMPL model", 3)
    assert str(installed_model_path()).replace(" ", "") in found, found
    ffmpeg = _column_text(res.output, "ffmpeg", 3)
    import imageio_ffmpeg

    assert imageio_ffmpeg.get_ffmpeg_exe() in ffmpeg


@pytest.mark.mediapipe  # animate is ready only with a keypoint detector: MediaPipe here
def test_body_model_that_is_not_smpl_sized_is_a_warning(tmp_path, monkeypatch):
    from bdmm_cli.body.synthetic import synthetic_body_arrays

    arrays = synthetic_body_arrays(0)
    nv = len(arrays["v_template"])
    assert nv != SMPL_VERTICES
    _install_body(tmp_path, arrays)  # an "SMPL" file (no synthetic marker) of the wrong size
    monkeypatch.setenv("BDMM_REGISTRY", _registry(tmp_path, {"generator-fashionvideo": b"g", "spin": b"s"}))
    monkeypatch.setenv("COLUMNS", "250")
    smpl = next(c for c in run_checks() if c.name == "SMPL model")
    assert smpl.ok and smpl.warning and f"{nv} vertices" in smpl.detail and "6890" in smpl.detail
    assert "bdmm body install" in smpl.fix
    res = CliRunner().invoke(app, ["doctor"])
    assert res.exit_code == 0, res.output  # animate runs; the row says why results will be wrong
    row = next(ln for ln in res.output.splitlines() if "SMPL model" in ln)
    assert "warning" in row and f"{nv} vertices" in row and "not SMPL's 6890" in row


PINS = "torch==2.14.1 torchvision==0.29.1"


@pytest.mark.parametrize("cuda,available,gpus,ok,detail,fix", [
    ("13.0", True, 1, True, "CUDA 13.0: NVIDIA H100", ""),
    (None, False, 0, False, "no GPU on this machine; torch is the CPU-only build, the right one here", ""),
    (None, False, 2, False, "torch is the CPU-only build, but this machine has 2 NVIDIA GPU(s)",
     f"install the CUDA build (PyPI's default): pip install --force-reinstall {PINS}"),
    ("13.0", False, 0, False, "torch is a CUDA 13.0 build but this machine has no NVIDIA GPU",
     f"pip install --force-reinstall {PINS} --index-url {CPU_WHEEL_INDEX}"),
    ("13.0", False, 1, False, "this machine has 1 NVIDIA GPU(s) but torch cannot use them (no usable NVIDIA driver",
     "check `nvidia-smi`"),
])
def test_gpu_advice_matches_the_machine(cuda, available, gpus, ok, detail, fix, monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    check = gpu_check(cuda, available, ["NVIDIA H100"] if available else [], gpus, PINS)
    assert check.ok == ok and not check.required and check.section == ANIMATE
    assert detail in check.detail, check.detail
    assert (fix in check.fix) if fix else check.fix == "", check.fix
    assert ("install a CUDA build" not in check.fix) or cuda is None  # the old advice, wrong for a CUDA build
    if cuda is not None and not available and gpus:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
        assert "CUDA_VISIBLE_DEVICES hides it" in gpu_check(cuda, False, [], gpus, PINS).detail


def test_nvidia_gpus_reads_the_pci_bus(tmp_path):
    """A sysfs tree with an NVIDIA GPU, an NVIDIA audio function, an Intel GPU and a broken entry."""
    devices = tmp_path / "bus" / "pci" / "devices"
    for name, vendor, klass in [("0000:01:00.0", "0x10de", "0x030000"), ("0000:01:00.1", "0x10de", "0x040300"),
                                ("0000:00:02.0", "0x8086", "0x030000"), ("0000:02:00.0", "0x10de", "0x030200")]:
        (devices / name).mkdir(parents=True)
        (devices / name / "vendor").write_text(vendor + "\n")
        (devices / name / "class").write_text(klass + "\n")
    (devices / "0000:03:00.0").mkdir()  # unreadable: skipped
    assert nvidia_gpus(tmp_path) == 2
    assert nvidia_gpus(tmp_path / "missing") == 0


def test_the_real_gpu_row_follows_the_installed_torch():
    import torch

    row = next(c for c in run_checks() if c.name == "GPU (CUDA)")
    if torch.cuda.is_available():
        assert row.ok
    elif torch.version.cuda is None:
        assert "CPU-only build" in row.detail
    else:
        assert f"CUDA {torch.version.cuda} build" in row.detail or "cannot use" in row.detail
        assert "install a CUDA build" not in row.fix
    assert re.search(r"torch==\d", row.fix) or row.fix == "" or "nvidia-smi" in row.fix
