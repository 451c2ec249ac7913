"""`bdmm doctor`: placeholder until its issue lands."""

from __future__ import annotations

import typer

from bdmm_cli.commands._common import not_available


def doctor_command() -> None:
    """Check the installation: torch, GPU, ffmpeg, SMPL model, weights.

    Example:

      bdmm doctor
    """
    not_available("doctor")


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor_command)
