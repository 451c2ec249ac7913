"""The `bdmm` command line: one Typer app composed of one module per command.

Every command module in :mod:`bdmm_cli.commands` exposes ``register(app)``, which adds
its command (or command group) to the app. The commands are thin layers over the
Python API of the subpackages; tests drive them with ``typer.testing.CliRunner``.
"""

from __future__ import annotations

import importlib
from typing import Optional

import click
import typer
from typer.core import TyperGroup

try:  # typer >= 0.20 vendors its own click
    from typer._click.exceptions import NoSuchOption as _TyperNoSuchOption
except ImportError:  # pragma: no cover - older typer uses click itself
    _TyperNoSuchOption = click.NoSuchOption

from bdmm_cli import __version__

COMMAND_MODULES = ("setup", "animate", "pose", "body", "weights", "train", "data", "eval", "doctor", "batch")

#: Names people try for "overwrite the output"; bdmm's option is --force.
OVERWRITE_WORDS = ("--overwrite", "--override", "--replace", "--clobber", "--yes", "-y", "--overwrite-output")


class BdmmGroup(TyperGroup):
    """The root group: an unknown option that means "overwrite" suggests --force (click's
    own guess for --overwrite is --overlap)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (click.NoSuchOption, _TyperNoSuchOption) as exc:
            command = exc.ctx.command if exc.ctx is not None else None
            has_force = command is not None and any("--force" in getattr(p, "opts", ()) for p in command.params)
            if exc.option_name in OVERWRITE_WORDS and has_force:
                exc.possibilities = ["--force"]
            raise


app = typer.Typer(
    cls=BdmmGroup,
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
    verbose: bool = typer.Option(
        False, "--verbose", help="Also show library warnings and native log lines (MediaPipe, ffmpeg)."
    ),
) -> None:
    """Animate a photo of a person with the motion of a driving video."""
    from bdmm_cli.noise import set_verbose

    set_verbose(verbose)


for _name in COMMAND_MODULES:
    importlib.import_module(f"bdmm_cli.commands.{_name}").register(app)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
