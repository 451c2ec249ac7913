"""The `bdmm` command line: one Typer app composed of one module per command.

Every command module in :mod:`bdmm_cli.commands` exposes ``register(app)``, which adds
its command (or command group) to the app. The commands are thin layers over the
Python API of the subpackages; tests drive them with ``typer.testing.CliRunner``.
"""

from __future__ import annotations

import importlib
from typing import Optional

import typer

from bdmm_cli import __version__

COMMAND_MODULES = ("setup", "animate", "pose", "body", "weights", "train", "data", "eval", "doctor")

app = typer.Typer(
    name="bdmm",
    help=(
        "Animate a photo of a person with the motion of a driving video (BDMM, ICCV 2023).\n\n"
        "Examples:\n\n"
        "  bdmm setup --accept-licenses\n\n"
        "  bdmm animate person.jpg dance.mp4 -o out.mp4\n\n"
        "  bdmm train --data fashionvideo\n\n"
        "  bdmm eval --metric fvd --pred results/ --gt test_frames/"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"bdmm {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Optional[bool] = typer.Option(
        None, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Animate a photo of a person with the motion of a driving video."""


for _name in COMMAND_MODULES:
    importlib.import_module(f"bdmm_cli.commands.{_name}").register(app)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
