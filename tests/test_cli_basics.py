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


def _readme_blocks(lang: str) -> list[str]:
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    parts = text.split("```")
    return [parts[i][len(lang):] for i in range(1, len(parts), 2) if parts[i].startswith(lang + "\n")]


def test_readme_python_imports_exist():
    """Every `from X import A, B` of README.md's Python examples names something real."""
    import importlib
    import re

    lines = [ln for block in _readme_blocks("python") for ln in block.splitlines()]
    imports = [re.match(r"from (\S+) import (.+)", ln) for ln in lines]
    imports = [m for m in imports if m]
    assert imports
    for m in imports:
        module = importlib.import_module(m.group(1))
        for name in m.group(2).split(","):
            assert hasattr(module, name.strip()), f"README: {m.group(1)} has no {name.strip()}"


def test_readme_commands_name_real_options():
    """The bdmm commands README.md shows parse (their --help works and names each option)."""
    import shlex
    from pathlib import Path

    lines = [ln for block in _readme_blocks("bash") + _readme_blocks("") for ln in block.splitlines()]
    calls = []
    for ln in lines:
        for part in ln.split("&&"):
            part = part.split("#")[0].strip()
            if part.startswith("bdmm "):
                calls.append(shlex.split(part)[1:])
    assert any(c[0] == "animate" for c in calls)
    root = Path(__file__).resolve().parents[1]
    for path in (w for argv in calls for w in argv if w.startswith("assets/")):
        assert (root / path).is_file(), f"README names {path}, which is not in the repository"
    for argv in calls:
        words = [w for w in argv if not w.startswith("-")]
        sub = [words[0]] + ([words[1]] if words[0] in ("body", "weights", "data", "cache") else [])
        result = runner.invoke(app, [*sub, "--help"])
        assert result.exit_code == 0, (argv, result.output)
        for opt in (w.split("=")[0] for w in argv if w.startswith("--")):
            assert opt in result.output, f"README: `bdmm {' '.join(argv)}`: {opt} is not an option of {sub}"
