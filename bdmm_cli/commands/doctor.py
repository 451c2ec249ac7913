"""`bdmm doctor`: can the main job run here? One table, one fix per problem."""

from __future__ import annotations

import typer

from bdmm_cli.commands._common import handle_errors


@handle_errors
def doctor_command() -> None:
    """Check the installation: first what `bdmm animate` needs (torch, GPU, ffmpeg, the SMPL
    model, the generator and pose weights), then what training and evaluation need.

    Prints one row per item with what was found and the command that fixes what is
    missing. Exit code 0 when `bdmm animate` can run with its defaults, 1 otherwise (what
    only training or evaluation need does not count).

    Examples:

      bdmm doctor

      BDMM_HOME=/data/bdmm bdmm doctor
    """
    from rich.console import Console
    from rich.markup import escape

    from bdmm_cli.pipeline.requirements import ANIMATE, TRAINING, can_animate, run_checks

    checks = run_checks()
    console = Console(soft_wrap=False)
    console.print(_table("bdmm doctor: what `bdmm animate` needs", [c for c in checks if c.section == ANIMATE]))
    if can_animate(checks):
        console.print("[green]bdmm animate can run.[/]")
    else:
        missing = ", ".join(c.name for c in checks if c.required and not c.ok)
        console.print(f"[bold red]bdmm animate cannot run yet[/]: missing {escape(missing)}")
    console.print()
    console.print("[bold]Training and evaluation[/] (bdmm train, bdmm data prepare, bdmm pose --refine, bdmm eval) "
                  "also need:")
    console.print(_table(None, [c for c in checks if c.section == TRAINING]))
    if not can_animate(checks):
        raise typer.Exit(1)


def _table(title, checks):
    """One doctor table: every column wraps (full paths and commands are folded, never cut)."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=title, show_lines=False)
    for name in ("check", "status", "found", "fix"):
        table.add_column(name, overflow="fold")
    for c in checks:
        table.add_row(escape(c.name), _status(c), escape(c.detail), escape(c.fix))
    return table


def _status(c) -> str:
    from bdmm_cli.pipeline.requirements import TRAINING

    if c.ok:
        return "[yellow]warning[/]" if c.warning else "[green]ok[/]"
    if c.section == TRAINING:
        return "[yellow]missing[/]"  # does not stop `bdmm animate`
    return "[bold red]MISSING[/]" if c.required else "[yellow]optional[/]"


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor_command)
