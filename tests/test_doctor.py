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
