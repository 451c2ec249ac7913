"""`bdmm weights ...`: placeholder until its issue lands."""

from __future__ import annotations

import typer

from bdmm_cli.commands._common import not_available

group = typer.Typer(help="""List, download, import, verify and export model weights.\n\nExample:\n\n  bdmm weights list""", no_args_is_help=True)


@group.callback(invoke_without_command=True)
def _weights() -> None:
    not_available("weights")


def register(app: typer.Typer) -> None:
    app.add_typer(group, name="weights")
