"""The animate pipeline: settings, streaming, retargeting, caching and resume.

    from bdmm_cli.pipeline import AnimateConfig, animate
    animate("person.jpg", "dance.mp4", "out.mp4", AnimateConfig(weights="fashionvideo"))

    # load once (LoadSettings), run many times (RunSettings)
    pipe = AnimatePipeline.from_config(LoadSettings(weights="fashionvideo"))
    pipe("person.jpg", "dance.mp4", "out.mp4", RunSettings(retarget="shape+camera"))

Modules: ``config`` (LoadSettings, RunSettings, AnimateConfig), ``checks`` (step 1: inputs
and options), ``windows`` (frame ranges; the window schedule lives in ``bdmm_cli.window``),
``frames`` (posed-frame streams from the pose front-end or a pose folder, gap filling),
``stream`` (frames -> windows -> batches, per-stage counters), ``render`` (uint8
conversion, side-by-side, preview), ``cache`` (resumable run store), ``requirements``
(what ``bdmm doctor`` checks), ``animate`` (the pipeline). Retargeting
(:func:`retarget_poses`) and the window core are in ``bdmm_cli.window``.
"""

from bdmm_cli.pipeline.animate import (
    AnimatePipeline,
    AnimateResult,
    CheckedInputs,
    animate,
    check_run,
)
from bdmm_cli.pipeline.cache import RunStore
from bdmm_cli.pipeline.checks import check_inputs, check_load
from bdmm_cli.pipeline.config import AnimateConfig, LoadSettings, RunSettings, resolve_retarget
from bdmm_cli.pipeline.stream import AnimateStats
from bdmm_cli.pipeline.windows import parse_frame_range
from bdmm_cli.window.schedule import Window, WindowSchedule
from bdmm_cli.window import RETARGET_MODES, Retargeter, retarget_poses

__all__ = [
    "AnimateConfig",
    "AnimatePipeline",
    "AnimateResult",
    "AnimateStats",
    "CheckedInputs",
    "LoadSettings",
    "RETARGET_MODES",
    "Retargeter",
    "RunSettings",
    "RunStore",
    "Window",
    "WindowSchedule",
    "animate",
    "check_inputs",
    "check_load",
    "check_run",
    "parse_frame_range",
    "resolve_retarget",
    "retarget_poses",
]
