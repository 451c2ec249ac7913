"""The CLI shell: --help and --version, every command has help with an example, errors are one line."""

from __future__ import annotations

import subprocess
import sys

import pytest
import typer
from typer.testing import CliRunner

from bdmm_cli import __version__
from bdmm_cli.cli import COMMAND_MODULES, app
from bdmm_cli.commands._common import handle_errors
from bdmm_cli.errors import InputError

runner = CliRunner()


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"bdmm {__version__}"


def test_help_lists_every_command():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for name in COMMAND_MODULES:
        assert name in result.output


@pytest.mark.parametrize("name", COMMAND_MODULES)
def test_every_command_has_help_with_an_example(name):
    result = runner.invoke(app, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example" in result.output and f"bdmm {name}" in result.output


def test_console_script_runs():
    proc = subprocess.run([sys.executable, "-m", "bdmm_cli", "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == f"bdmm {__version__}"


def test_handle_errors_prints_one_line_and_exits_nonzero():
    demo = typer.Typer()

    @demo.command()
    @handle_errors
    def boom() -> None:
        raise InputError("image not found:\n  person.jpg")

    result = runner.invoke(demo, [])
    assert result.exit_code == 1
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert lines == ["error: image not found: person.jpg"]
