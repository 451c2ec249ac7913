"""Wall time per stage: one small timer for the pose front-end and the animate run.

    timer = Timer(seconds)                     # seconds: dict stage -> float, added to
    with timer("fit"): ...                     # the block's time
    for item in timer.iterate("decode", it):   # the time spent waiting for each item
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterable, Iterator, MutableMapping


class Timer:
    """Adds wall time to ``seconds[stage]``; with ``sync`` it first waits for CUDA, so GPU
    work started in the block is counted in it."""

    def __init__(self, seconds: MutableMapping[str, float], sync: bool = False) -> None:
        self.seconds = seconds
        self.sync = sync

    def _add(self, stage: str, t0: float) -> None:
        if self.sync:
            import torch

            torch.cuda.synchronize()
        self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - t0

    @contextmanager
    def __call__(self, stage: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self._add(stage, t0)

    def iterate(self, stage: str, items: Iterable) -> Iterator:
        """Yield from ``items``, counting the time spent waiting for each item."""
        it = iter(items)
        while True:
            t0 = time.perf_counter()
            try:
                item = next(it)
            except StopIteration:
                self._add(stage, t0)
                return
            self._add(stage, t0)
            yield item


__all__ = ["Timer"]
