"""`bdmm train`: placeholder until its issue lands."""

from __future__ import annotations

import typer

from bdmm_cli.commands._common import not_available


def train_command() -> None:
    """Train BDMM (the paper's full loop).

    Example:

      bdmm train --data fashionvideo --out runs/fv
    """
    not_available("train")


def register(app: typer.Typer) -> None:
    app.command("train")(train_command)
