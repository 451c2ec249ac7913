"""`bdmm doctor`: exit code 1 with the fix commands when something the main job needs is missing,
0 once the body model and the registry's generator and SPIN weights are installed and verified."""

from __future__ import annotations

import hashlib

from typer.testing import CliRunner

from bdmm_cli.cli import app
from bdmm_cli.pipeline.requirements import can_animate, run_checks


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
    assert [c.name for c in checks if c.required and not c.ok] == ["SMPL model"]


def test_doctor_passes_when_everything_is_installed(tmp_path, monkeypatch):
    from bdmm_cli.body import install_body_model, write_synthetic_body_model

    install_body_model(write_synthetic_body_model(tmp_path / "body.npz"))
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
