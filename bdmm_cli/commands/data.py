"""`bdmm data ...`: placeholder until its issue lands."""

from __future__ import annotations

import typer

from bdmm_cli.commands._common import not_available

group = typer.Typer(help="""Prepare training and evaluation data sets.\n\nExample:\n\n  bdmm data prepare videos/ -o data/mine""", no_args_is_help=True)


@group.callback(invoke_without_command=True)
def _data() -> None:
    not_available("data")


def register(app: typer.Typer) -> None:
    app.add_typer(group, name="data")
