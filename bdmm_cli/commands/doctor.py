"""`bdmm doctor`: can the main job run here? One table, one fix per problem."""

from __future__ import annotations

import typer

from bdmm_cli.commands._common import handle_errors


@handle_errors
def doctor_command() -> None:
    """Check the installation: torch, GPU, ffmpeg, pytorch3d, SMPL model, weights.

    Prints one row per item with what was found and the command that fixes what is
    missing. Exit code 0 when `bdmm animate` can run with its defaults, 1 otherwise.

    Examples:

      bdmm doctor

      BDMM_HOME=/data/bdmm bdmm doctor
    """
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from bdmm_cli.pipeline.requirements import can_animate, run_checks

    checks = run_checks()
    table = Table(title="bdmm doctor", show_lines=False)
    table.add_column("check")
    table.add_column("status")
    table.add_column("found")
    table.add_column("fix")
    for c in checks:
        if c.ok:
            status = "[green]ok[/]"
        elif c.required:
            status = "[bold red]MISSING[/]"
        else:
            status = "[yellow]optional[/]"
        table.add_row(escape(c.name), status, escape(c.detail), escape(c.fix))
    console = Console(soft_wrap=False)
    console.print(table)
    if can_animate(checks):
        console.print("[green]bdmm animate can run.[/]")
        return
    missing = ", ".join(c.name for c in checks if c.required and not c.ok)
    console.print(f"[bold red]bdmm animate cannot run yet[/]: missing {escape(missing)}")
    raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor_command)
