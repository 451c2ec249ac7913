"""`bdmm train` and `bdmm data prepare` through the CLI: help, a short run, clear errors."""

from __future__ import annotations

from typer.testing import CliRunner

from bdmm_cli.cli import app
from train_helpers import TINY, make_body, make_dataset

runner = CliRunner()


def test_help_has_examples():
    for args in (["train", "--help"], ["data", "prepare", "--help"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0 and "Examples" in result.output


def test_train_errors_are_one_line(tmp_path):
    result = runner.invoke(app, ["train", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "run")])
    assert result.exit_code == 1 and "error:" in result.output and "does not exist" in result.output
    result = runner.invoke(app, ["train", "--data", "fashionvideo", "--data-root", str(tmp_path), "--out", str(tmp_path / "r")])
    assert result.exit_code == 1 and "data set fashionvideo not found" in result.output
    result = runner.invoke(app, ["train", "--out", str(tmp_path / "nothing"), "--resume"])
    assert result.exit_code == 1 and "nothing to resume" in result.output
    result = runner.invoke(app, ["train", "--set", "bogus=1"])
    assert result.exit_code == 1 and "unknown config key" in result.output


def test_data_prepare_errors(tmp_path):
    result = runner.invoke(app, ["data", "prepare", str(tmp_path / "none"), "-o", str(tmp_path / "out")])
    assert result.exit_code == 1 and "does not exist" in result.output
    (tmp_path / "v").mkdir()
    (tmp_path / "v" / "a.mp4").write_bytes(b"x")
    result = runner.invoke(app, ["data", "prepare", str(tmp_path / "v"), "-o", str(tmp_path / "out"),
                                 "--spin", str(tmp_path / "no_spin.pt")], env={"HF_HUB_OFFLINE": "1"})
    assert result.exit_code == 1 and "error:" in result.output


def test_train_reads_a_config_file_and_refuses_to_restart_a_run(tmp_path):
    """A TOML config reaches the loop (checked through the config it writes); training itself
    through the CLI is exercised by the resume test in test_train_loop.py."""
    body = make_body(tmp_path)
    root = make_dataset(tmp_path / "ds", body, num_videos=1, num_frames=6, test_list=False)
    cfg = tmp_path / "tiny.toml"
    cfg.write_text("".join(f"{k} = {str(v).lower() if isinstance(v, bool) else repr(v).replace(chr(39), chr(34))}\n"
                           for k, v in {**TINY, "iterations": 0}.items()))
    result = runner.invoke(app, ["train", "--data", str(root), "--body-model", str(body), "--config", str(cfg),
                                 "--out", str(tmp_path / "run"), "--no-progress", "--set", "seed=5"])
    assert result.exit_code == 0, result.output
    written = (tmp_path / "run" / "config.toml").read_text()
    assert "model_ngf = 4" in written and "seed = 5" in written and "iterations = 0" in written
    assert (tmp_path / "run" / "checkpoints" / "latest.pt").is_file()
    result = runner.invoke(app, ["train", "--data", str(root), "--body-model", str(body), "--config", str(cfg),
                                 "--out", str(tmp_path / "run"), "--no-progress"])
    assert result.exit_code == 1 and "--resume" in result.output
