"""The run's per-stage counters: :class:`AnimateStats` and :class:`StageTimer` (the stream is
cut into windows by ``window.stream``)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import torch

from bdmm_cli.timing import Timer


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


class StageTimer(Timer):
    """Adds wall time to ``stats.seconds[stage]``; synchronises CUDA so GPU work is counted."""

    def __init__(self, stats: AnimateStats, device: torch.device) -> None:
        super().__init__(stats.seconds, sync=device.type == "cuda")
        self.stats = stats


__all__ = ["AnimateStats", "STAGES", "StageTimer"]
