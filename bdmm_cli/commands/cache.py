"""`bdmm cache info` and `bdmm cache clean`: what the cache folder holds, and emptying it
(a thin layer over ``bdmm_cli.pipeline.cache``)."""

from __future__ import annotations

from typing import List, Optional

import typer

from bdmm_cli.commands._common import err_console, handle_errors

group = typer.Typer(
    help=(
        "Show and clean bdmm's cache (resume data of animate runs, poses of driving videos, "
        "real-data statistics, downloads): the folder BDMM_CACHE_DIR, default ~/.cache/bdmm. "
        "After each animate run the runs, poses and statistics are kept under BDMM_CACHE_MAX_GB "
        "(default 10), least recently used first.\n\n"
        "Examples:\n\n"
        "  bdmm cache info\n\n"
        "  bdmm cache clean --older-than 30\n\n"
        "  bdmm cache clean\n\n"
        "  bdmm cache clean --kind downloads"
    ),
    no_args_is_help=True,
)


def _size(n: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


@group.command("info")
@handle_errors
def info_command() -> None:
    """Size of the cache per kind of entry (runs, poses, metrics, weights, downloads).

    Examples:

      bdmm cache info

      BDMM_CACHE_DIR=/scratch/bdmm bdmm cache info
    """
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from bdmm_cli.pipeline.cache import CACHE_KINDS, cache_info

    info = cache_info()
    table = Table(title=f"bdmm cache: {escape(str(info.root))}")
    table.add_column("kind")
    table.add_column("entries", justify="right")
    table.add_column("size", justify="right")
    table.add_column("cleaned by default")
    table.add_column("holds", overflow="fold")
    for k in info.kinds:
        default = "yes" if k.kind in CACHE_KINDS and CACHE_KINDS[k.kind][2] else "no"
        table.add_row(k.kind, str(k.entries), _size(k.size), default, escape(k.description))
    console = Console()
    console.print(table)
    console.print(f"total {_size(info.size)}; runs, poses and metrics are capped at {_size(info.max_bytes)} "
                  "(BDMM_CACHE_MAX_GB)", highlight=False)


@group.command("clean")
@handle_errors
def clean_command(
    older_than: Optional[float] = typer.Option(
        None, "--older-than", metavar="DAYS", help="Only entries last used more than DAYS days ago (default: all)."
    ),
    kind: Optional[List[str]] = typer.Option(
        None, "--kind", metavar="KIND",
        help="Kind to clean, repeatable: runs, poses, metrics, weights, downloads "
             "(default: runs, poses and metrics, which bdmm refills by itself).",
    ),
) -> None:
    """Delete cache entries; those a running bdmm holds (a run in progress) are kept.

    Examples:

      bdmm cache clean

      bdmm cache clean --older-than 30

      bdmm cache clean --kind runs --kind poses --older-than 7
    """
    from bdmm_cli.pipeline.cache import REFILLABLE, clean_cache

    result = clean_cache(older_than, tuple(kind) if kind else REFILLABLE)
    kept = f"; kept {len(result.in_use)} in use by a running bdmm" if result.in_use else ""
    err_console.print(f"removed {len(result.removed)} cache entr{'y' if len(result.removed) == 1 else 'ies'} "
                      f"({_size(result.freed)}){kept}", markup=False)


def register(app: typer.Typer) -> None:
    app.add_typer(group, name="cache")
