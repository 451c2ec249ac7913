"""A rich progress bar that speaks both progress protocols our downloaders use.

`huggingface_hub.hf_hub_download(tqdm_class=RichBar)` builds it as
`RichBar(desc=..., total=..., initial=..., unit=..., unit_scale=...)` and calls `update(n)`
inside a `with` block; `pooch`'s HTTP downloader takes an instance, sets `.total`, calls
`update(chunk)`, then `reset()`, `update(total)` and `close()`. Both end up in one
`rich.progress.Progress` on stderr: shown when stderr is a terminal or `BDMM_PROGRESS=1`,
hidden with `BDMM_PROGRESS=0` or `HF_HUB_DISABLE_PROGRESS_BARS=1`.
"""

from __future__ import annotations

import os
import sys

from rich.console import Console
from rich.progress import (
    BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn,
)

from bdmm_cli.closing import Closing


def _enabled() -> bool:
    if os.environ.get("BDMM_PROGRESS") == "0":
        return False
    if os.environ.get("HF_HUB_DISABLE_PROGRESS_BARS", "").lower() in ("1", "true", "yes", "on"):
        return False
    return os.environ.get("BDMM_PROGRESS") == "1" or sys.stderr.isatty()


class RichBar(Closing):
    """One byte-count progress bar (download or hashing); a no-op when progress is disabled.

    `RichBar.labelled("name")` is a subclass whose bars show "name" whatever description the
    downloader passes (huggingface_hub passes the tail of the URL).
    """

    label: str = ""

    @classmethod
    def labelled(cls, label: str) -> type["RichBar"]:
        return type("LabelledRichBar", (cls,), {"label": label})

    def __init__(
        self,
        desc: str = "",
        total: int | None = None,
        initial: int = 0,
        unit: str = "B",
        unit_scale: bool = True,
        disable: bool | None = None,
        name: str | None = None,
    ) -> None:
        self.desc = self.label or desc
        self._total = total
        self.n = initial
        self._progress: Progress | None = None
        self._task = None
        if disable or not _enabled():
            return
        self._progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(),
            TransferSpeedColumn(), TimeRemainingColumn(),
            console=Console(stderr=True), transient=False,
        )
        self._progress.start()
        self._task = self._progress.add_task(self.desc or "download", total=total, completed=initial)

    # tqdm / pooch protocol -------------------------------------------------------------------
    @property
    def total(self) -> int | None:
        return self._total

    @total.setter
    def total(self, value: int | None) -> None:
        self._total = value or None
        if self._progress is not None:
            self._progress.update(self._task, total=self._total)

    def update(self, n: int = 1) -> None:
        self.n += n
        if self._progress is not None:
            self._progress.update(self._task, completed=self.n)

    def reset(self, total: int | None = None) -> None:
        self.n = 0
        if total is not None:
            self.total = total
        if self._progress is not None:
            self._progress.update(self._task, completed=0)

    def set_description(self, desc: str) -> None:
        self.desc = desc
        if self._progress is not None:
            self._progress.update(self._task, description=desc)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

