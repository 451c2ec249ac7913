"""`bdmm eval`: placeholder until its issue lands."""

from __future__ import annotations

import typer

from bdmm_cli.commands._common import not_available


def eval_command() -> None:
    """Compute the paper's metrics.

    Example:

      bdmm eval --metric fvd --pred results/ --gt test_frames/
    """
    not_available("eval")


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_command)
