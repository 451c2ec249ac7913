"""A frame stream cut into windows, and windows into batches.

- :func:`windowed`: posed frames -> ``WindowFrames`` (window, its T frames, frame before,
  frame after), holding at most T + 2 frames.
- :func:`batched`: group any stream into lists of ``size``.
"""

from __future__ import annotations

from typing import Iterable, Iterator

from bdmm_cli.window.inputs import WindowFrames
from bdmm_cli.window.schedule import WindowSchedule


def windowed(frames: Iterable, schedule: WindowSchedule) -> Iterator[WindowFrames]:
    """Group a frame stream into windows (``WindowFrames``: window, its T frames, pre, post).

    Holds the frames from the current window's ``pre`` to its ``post`` (T + 2 at most).
    """
    buffer: dict[int, object] = {}
    nxt = 0
    count = 0
    for rel, frame in enumerate(frames):
        buffer[rel] = frame
        count = rel + 1
        while True:
            w = schedule.window_at(nxt, None)
            if w.post > rel:
                break
            yield WindowFrames(w, tuple(buffer[i] for i in w.frames), buffer[w.pre], buffer[w.post])
            nxt += 1
            keep_from = max(schedule.window_at(nxt, None).pre, 0)
            for key in [k for k in buffer if k < keep_from]:
                del buffer[key]
    if count == 0:
        return
    for i in range(nxt, schedule.num_windows(count)):
        w = schedule.window_at(i, count)
        yield WindowFrames(w, tuple(buffer[j] for j in w.frames), buffer[w.pre], buffer[w.post])


def batched(items: Iterable, size: int) -> Iterator[list]:
    """Lists of ``size`` consecutive items (the last one shorter)."""
    batch: list = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


__all__ = ["batched", "windowed"]
