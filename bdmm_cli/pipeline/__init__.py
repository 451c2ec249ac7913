"""The animate pipeline: windows, streaming, caching and resume.

    from bdmm_cli.pipeline import AnimateConfig, animate
    animate("person.jpg", "dance.mp4", "out.mp4", AnimateConfig(weights="fashionvideo"))

Modules: ``config`` (AnimateConfig), ``checks`` (step 1: inputs and options), ``windows``
(window schedule, overlap blending, frame ranges), ``frames`` (posed-frame streams from the
pose front-end or a pose folder, gap filling), ``stream`` (frames -> windows -> batches,
per-stage counters), ``render`` (uint8 conversion, side-by-side, preview overlay),
``cache`` (resumable run store), ``requirements`` (what ``bdmm doctor`` checks),
``animate`` (the pipeline).
"""

from bdmm_cli.pipeline.animate import (
    AnimatePipeline,
    AnimateResult,
    animate,
)
from bdmm_cli.pipeline.cache import RunStore
from bdmm_cli.pipeline.checks import check_inputs
from bdmm_cli.pipeline.config import AnimateConfig
from bdmm_cli.pipeline.stream import AnimateStats
from bdmm_cli.pipeline.windows import Window, WindowSchedule, parse_frame_range

__all__ = [
    "AnimateConfig",
    "AnimatePipeline",
    "AnimateResult",
    "AnimateStats",
    "RunStore",
    "Window",
    "WindowSchedule",
    "animate",
    "check_inputs",
    "parse_frame_range",
]
