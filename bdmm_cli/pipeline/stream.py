"""The driving stream cut into windows and batches, and the run's per-stage counters.

- :func:`windowed`: posed frames -> ``WindowFrames`` (window, its T frames, frame before, frame after),
  holding at most T + 2 frames.
- :func:`batched`: group any stream into lists of ``size``.
- :class:`AnimateStats` and :class:`StageTimer`: counters and wall time per stage.
"""

from __future__ import annotations

import time
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterable, Iterator

import torch

from bdmm_cli.window import WindowFrames, WindowSchedule

#: the stages a run's wall time is split into (``AnimateStats.seconds``).
STAGES = ("load", "decode", "pose", "fit", "flows", "generate", "encode")


@dataclass
class AnimateStats:
    """Counters and per-stage wall time of one run (observable by tests and benchmarks).

    Attributes:
        frames: output frames written.
        windows: windows of the run.
        windows_generated: windows computed in this run (flows + generator).
        windows_cached: windows reloaded from the run store (a resumed or repeated run).
        windows_total: windows of the run when known in advance (the resume message), else 0.
        frames_posed: frames that went through the pose network in this run (0 when the
            poses came from a pose folder or the pose cache).
        pose_from_cache: the driving video's poses were replayed from the pose cache.
        keypoints: the keypoint model the pose front-end ran ("" when it did not run).
        follow: who was followed in the driving video (``pose.follow.FollowReport``; None
            when unknown, e.g. poses from a folder).
        gaps: what was done with frames without a person (``pipeline.frames.GapReport``).
        warnings: the warning lines the run gave (also shown as warnings).
        seconds: wall time per stage (``STAGES``): ``load`` the models (the pipeline's
            construction and the pose front-end's first use), ``decode`` the driving video,
            ``pose`` keypoints (or reading poses from a folder or the cache), ``fit`` the SMPL
            fit (SPIN, SMPLify, smoothing), ``flows`` retargeting + mesh flows + heatmaps,
            ``generate`` the generator (or the preview drawing), ``encode`` composing and
            writing the MP4.
    """

    frames: int = 0
    windows: int = 0
    windows_generated: int = 0
    windows_cached: int = 0
    windows_total: int = 0
    frames_posed: int = 0
    pose_from_cache: bool = False
    keypoints: str = ""
    follow: object | None = None
    gaps: object | None = None
    warnings: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    def timings(self) -> dict[str, float]:
        """Seconds per stage, every stage of ``STAGES`` present, rounded to milliseconds."""
        return {k: round(float(self.seconds.get(k, 0.0)), 3) for k in STAGES}


class StageTimer:
    """Adds wall time to ``stats.seconds[stage]``; synchronises CUDA so GPU work is counted."""

    def __init__(self, stats: AnimateStats, device: torch.device) -> None:
        self.stats = stats
        self.sync = device.type == "cuda"

    @contextmanager
    def __call__(self, stage: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            if self.sync:
                torch.cuda.synchronize()
            self.stats.seconds[stage] += time.perf_counter() - t0

    def iterate(self, stage: str, items: Iterable) -> Iterator:
        """Yield from ``items``, counting the time spent waiting for each item."""
        it = iter(items)
        while True:
            t0 = time.perf_counter()
            try:
                item = next(it)
            except StopIteration:
                self.stats.seconds[stage] += time.perf_counter() - t0
                return
            self.stats.seconds[stage] += time.perf_counter() - t0
            yield item


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


__all__ = ["AnimateStats", "STAGES", "StageTimer", "batched", "windowed"]
