"""CLI conventions (issue 22 point 5): every boolean flag is --flag/--no-flag and shows no
value in --help; usage errors are one `error:` line on stderr with click's exit code 2, like
every other bdmm error (no Rich box, no usage block)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main
from typer.testing import CliRunner

from bdmm_cli.cli import app

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()
#: Eager actions, not settings: they have no "off" form.
_ACTIONS = {"help", "version"}


def _commands():
    """(path, click command) of the root, every group and every command."""
    root = typer.main.get_command(app)
    out, todo = [], [((), root)]
    while todo:
        path, cmd = todo.pop()
        out.append((path, cmd))
        for name, sub in getattr(cmd, "commands", {}).items():
            todo.append(((*path, name), sub))
    return out


ALL = _commands()


def test_the_walk_sees_every_command():
    names = {" ".join(p) for p, _ in ALL}
    assert {"", "animate", "pose", "doctor", "body install", "weights download", "data prepare"} <= names


@pytest.mark.parametrize("path,cmd", ALL, ids=[" ".join(p) or "bdmm" for p, _ in ALL])
def test_every_boolean_flag_has_an_off_form_and_no_metavar(path, cmd, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    flags = [p for p in cmd.params if getattr(p, "is_bool_flag", False) and p.name not in _ACTIONS]
    for flag in flags:
        assert flag.secondary_opts, f"bdmm {' '.join(path)}: {flag.opts} has no --no- form"
        long_on = [o for o in flag.opts if o.startswith("--")]
        assert long_on and all(o.startswith("--") for o in flag.secondary_opts), (flag.opts, flag.secondary_opts)
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.output and "BOOLEAN" not in result.output, result.output
    for flag in flags:
        assert flag.secondary_opts[0] in result.output


def test_flag_and_its_off_form_parse_and_reach_the_command(tmp_path):
    """The off form is accepted (the command runs and fails on its real input, exit 1, not 2)."""
    for args in (["body", "install", str(tmp_path / "missing.pkl"), "--no-force"],
                 ["body", "install", str(tmp_path / "missing.pkl"), "--force", "--no-force"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 1 and result.stderr.startswith("error: SMPL model file"), result.output


def _one_error_line(result) -> str:
    assert result.exit_code == 2, result.output
    assert result.stdout == "", result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and "╭" not in lines[0] and "Usage:" not in lines[0]
    return lines[0]


ANIMATE = ["animate", "a.jpg", "b.mp4", "-o", "out.mp4"]


@pytest.mark.parametrize("args,expected", [
    ([*ANIMATE, "--side-by-side", "true"],
     "error: --side-by-side takes no value (got 'true'): write --side-by-side to turn it on, --no-side-by-side to "
     "turn it off (see `bdmm animate --help`)"),
    ([*ANIMATE, "-f", "no"], "error: -f takes no value (got 'no'): write --force to turn it on, --no-force to turn it off"),
    ([*ANIMATE, "--bogus"], "error: no such option: --bogus (see `bdmm animate --help`)"),
    ([*ANIMATE, "--overwrite"], "error: no such option: --overwrite; did you mean --force? (see `bdmm animate --help`)"),
    (["animate", "a.jpg"], "error: missing argument 'video' (see `bdmm animate --help`)"),
    (["animate", "a.jpg", "b.mp4"], "error: missing option '--output'"),
    ([*ANIMATE, "--size", "big"], "error: invalid value for '--size'"),
    ([*ANIMATE, "--frames"], "error: option '--frames' requires an argument"),
    (["bogus-command"], "error: no such command 'bogus-command' (see `bdmm --help`)"),
    (["body", "install", "a.pkl", "extra"], "error: got unexpected extra argument(s) (extra) (see `bdmm body install --help`)"),
])
def test_usage_errors_are_one_error_line_with_exit_code_2(args, expected):
    line = _one_error_line(runner.invoke(app, args))
    assert line.startswith(expected), line


def test_usage_error_in_a_real_process():
    """The console entry point (not only the test runner): plain stderr, exit code 2."""
    proc = subprocess.run([sys.executable, "-m", "bdmm_cli", "animate", "a.jpg", "b.mp4", "-o", "o.mp4",
                           "--side-by-side", "true"], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=str(REPO), COLUMNS="80"))
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.splitlines() == [
        "error: --side-by-side takes no value (got 'true'): write --side-by-side to turn it on, --no-side-by-side "
        "to turn it off (see `bdmm animate --help`)"], proc.stderr


def test_help_and_no_args_still_show_help():
    for args in ([], ["body"], ["--help"], ["animate", "--help"]):
        result = runner.invoke(app, args)
        assert "Usage: bdmm" in result.output and "error:" not in result.output, (args, result.output)
        assert result.exit_code == (0 if "--help" in args else 2), (args, result.exit_code)
