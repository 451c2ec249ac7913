"""One look for every long step: a rich progress bar on stderr with rate and ETA.

    with progress_bar(unit="frames") as bar:
        task = bar.add_task("animate", total=n)
        bar.advance(task)

Columns: description, bar, done/total, rate in `unit`/s (when a unit is given), elapsed,
ETA, and optionally a free-text column fed from `task.fields[field]`.
"""

from __future__ import annotations

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)
from rich.text import Text


class RateColumn(ProgressColumn):
    """Items per second, e.g. `3.2 frames/s` (`--` until there is a rate)."""

    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:.2f} {self.unit}/s" if speed else f"-- {self.unit}/s", style="progress.data.speed")


def progress_bar(unit: str | None = None, enabled: bool = True, transient: bool = False,
                 field: str | None = None) -> Progress:
    """A `rich.progress.Progress` on stderr (disabled, and silent, when `enabled` is False).

    Args:
        unit: what is counted ("frames", "it", "videos"); adds a rate column.
        enabled: False for `--quiet` and for tests.
        transient: remove the bar when done.
        field: name of a task field shown as text after the counts (e.g. live loss values).
    """
    columns: list[ProgressColumn] = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn()]
    if unit:
        columns.append(RateColumn(unit))
    if field:
        columns.append(TextColumn(f"{{task.fields[{field}]}}"))
    columns += [TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn()]
    return Progress(*columns, console=Console(stderr=True), disable=not enabled, transient=transient)
