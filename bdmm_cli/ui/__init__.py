"""`bdmm ui`: the main job in a local web page (Gradio, the optional ``ui`` extra).

``handlers`` holds what the page's buttons do, as plain functions over
:class:`bdmm_cli.pipeline.AnimatePipeline` (no Gradio needed, tested directly); ``page``
builds the Gradio page over them and serves it (imports gradio).
"""

from bdmm_cli.ui.handlers import (
    Cancelled,
    PageOptions,
    Progress,
    RunOutcome,
    ServeSettings,
    Session,
    UIServer,
    cancel,
    check_serving,
    run_animate,
    run_preview,
)

__all__ = ["Cancelled", "PageOptions", "Progress", "RunOutcome", "ServeSettings", "Session", "UIServer", "cancel",
           "check_serving", "run_animate", "run_preview"]
