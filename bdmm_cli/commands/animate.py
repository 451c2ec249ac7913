"""`bdmm animate`: placeholder until its issue lands."""

from __future__ import annotations

import typer

from bdmm_cli.commands._common import not_available


def animate_command() -> None:
    """Animate a person photo with the motion of a driving video.

    Example:

      bdmm animate person.jpg dance.mp4 -o out.mp4
    """
    not_available("animate")


def register(app: typer.Typer) -> None:
    app.command("animate")(animate_command)
