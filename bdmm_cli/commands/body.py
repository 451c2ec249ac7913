"""`bdmm body ...`: placeholder until its issue lands."""

from __future__ import annotations

import typer

from bdmm_cli.commands._common import not_available

group = typer.Typer(help="""Manage the SMPL body model.\n\nExample:\n\n  bdmm body install SMPL_NEUTRAL.pkl""", no_args_is_help=True)


@group.callback(invoke_without_command=True)
def _body() -> None:
    not_available("body")


def register(app: typer.Typer) -> None:
    app.add_typer(group, name="body")
