"""The Gradio page of ``bdmm ui``: widgets mapped onto ``bdmm_cli.ui.handlers``.

    demo = build_page(server)          # a gr.Blocks; the handlers do the work
    launch(demo, server, host="127.0.0.1", port=7860)

Events: ``preview`` and ``animate`` (also the API names, for ``gradio_client``) run one at a
time through one queue (``concurrency_id="device"``, so a waiting user sees their place);
``cancel`` runs at once, outside the queue; the page's ``unload`` (tab closed or reloaded)
ends the session, which removes its folder. A :class:`~bdmm_cli.errors.BdmmError` becomes
its one line in the page (``gr.Error``), anything else one line too, with the traceback in
the server's log only.
"""

from __future__ import annotations

import logging

import gradio as gr

from bdmm_cli.errors import BdmmError
from bdmm_cli.pipeline.config import RETARGET_CHOICES
from bdmm_cli.ui.handlers import Cancelled, PageOptions, Progress, UIServer, cancel, run_animate, run_preview

log = logging.getLogger("bdmm.ui")

TITLE = "bdmm: animate a photo with the motion of a video"
INTRO = (
    "Drop a full-body **photo** and a **driving video** with one person. **Preview** checks the alignment in "
    "seconds (left: the dancer's fitted body; right: that motion on your photo's body); **Animate** writes the MP4."
)


def error_line(exc: BaseException, server: UIServer | None = None, uploads=()) -> str:
    """The one line the page shows for ``exc`` (what the CLI prints after ``error:``), the
    uploads named by their file names and no path inside the server's folder."""
    from pathlib import Path

    from bdmm_cli.commands._common import error_message

    line = error_message(exc) or f"internal error ({type(exc).__name__}); the server's log has the details"
    for path in uploads:
        if path:
            line = line.replace(str(path), Path(str(path)).name)
    if server is not None:
        line = line.replace(f"{server.root}/", "")
    return line


def _options(retarget, frames, max_seconds, side_by_side, window, overlap, dtype, skip_missing) -> PageOptions:
    return PageOptions(retarget=retarget or "auto", frames=frames or "", max_seconds=max_seconds or None,
                       side_by_side=bool(side_by_side), window=int(window or 0), overlap=int(overlap or 0),
                       dtype=dtype or None, skip_missing=bool(skip_missing))


def _video_path(video):
    """gr.Video's value: a path (the page) or a {"video": path} dict (some API clients)."""
    if isinstance(video, dict):
        video = video.get("video") or video.get("path")
        if isinstance(video, dict):
            video = video.get("path")
    return video


def _handler(server: UIServer, action):
    def handler(photo, video, retarget="auto", frames="", max_seconds=None, side_by_side=False, window=6,
                overlap=0, dtype=None, skip_missing=False, request: gr.Request = None, progress=gr.Progress()):
        session = server.session(getattr(request, "session_hash", None) or "api")

        def report(p: Progress) -> None:
            progress((p.done, p.total), desc=p.line, unit="frames")

        try:
            options = _options(retarget, frames, max_seconds, side_by_side, window, overlap, dtype, skip_missing)
            outcome = action(server, session, photo, _video_path(video), options, report)
        except Cancelled as exc:
            raise gr.Error(str(exc), title="cancelled", duration=None, print_exception=False) from None
        except Exception as exc:  # noqa: BLE001 - every failure is one line in the page
            if not isinstance(exc, (BdmmError, OSError)):
                log.exception("%s failed", action.__name__)
            line = error_line(exc, server, (photo, _video_path(video)))
            log.warning("%s (session %s): error: %s", handler.__name__, session.id, line)
            raise gr.Error(f"error: {line}", title="error", duration=None, print_exception=False) from None
        return str(outcome.video), outcome.summary

    handler.__name__ = action.__name__.replace("run_", "")
    return handler


def build_page(server: UIServer) -> gr.Blocks:
    """The page: inputs, Preview / Animate / Cancel, the preview and result players, the summary."""
    with gr.Blocks(title="bdmm", delete_cache=(1800, 3 * 3600), analytics_enabled=False) as demo:
        gr.Markdown(f"# {TITLE}\n{INTRO}")
        with gr.Row():
            photo = gr.Image(label="Photo", sources=["upload", "webcam"], type="filepath", elem_id="photo", height=320)
            video = gr.Video(label="Driving video", sources=["upload"], elem_id="video", height=320)
        with gr.Row():
            retarget = gr.Radio(list(RETARGET_CHOICES), value="auto", label="Retarget",
                                info="auto = shape+camera: the motion on your photo's body and framing")
            frames = gr.Textbox("", label="Frame range A:B", placeholder="all (e.g. 0:150)", elem_id="frames")
            limit = server.settings.max_seconds
            max_seconds = gr.Number(label="Max seconds (0 = all)", value=0, minimum=0, elem_id="max-seconds",
                                    info=f"use the first N s of the range (this server: at most {limit:g} s)"
                                    if limit else "use the first N s of the range")
            side_by_side = gr.Checkbox(label="Side by side (driving crop | result)", value=False)
        with gr.Accordion("Advanced", open=False):
            with gr.Row():
                window = gr.Number(label="Window (frames)", value=6, precision=0, minimum=1)
                overlap = gr.Number(label="Overlap (frames, 0 = the authors' test mode)", value=0, precision=0,
                                    minimum=0)
                dtype = gr.Dropdown(server.dtypes, value=server.settings.load.dtype, label="dtype")
                skip_missing = gr.Checkbox(label="Interpolate short gaps without a person", value=False)
        with gr.Row():
            preview_btn = gr.Button("Preview", elem_id="preview-button")
            animate_btn = gr.Button("Animate", variant="primary", elem_id="animate-button")
            cancel_btn = gr.Button("Cancel", variant="stop", elem_id="cancel-button")
        status = gr.Markdown("", elem_id="status")
        with gr.Row():
            preview_out = gr.Video(label="Preview", interactive=False, elem_id="preview-video", height=320)
            result_out = gr.Video(label="Result", interactive=False, elem_id="result-video", height=320)

        inputs = [photo, video, retarget, frames, max_seconds, side_by_side, window, overlap, dtype, skip_missing]
        queued = dict(concurrency_limit=1, concurrency_id="device")
        preview_event = preview_btn.click(_handler(server, run_preview), inputs, [preview_out, status],
                                          api_name="preview", show_progress_on=[preview_out], **queued)
        animate_event = animate_btn.click(_handler(server, run_animate), inputs, [result_out, status],
                                          api_name="animate", show_progress_on=[result_out], **queued)

        def _cancel(request: gr.Request):
            return cancel(server.session(request.session_hash or "api"))

        cancel_btn.click(_cancel, None, [status], cancels=[preview_event, animate_event], queue=False,
                         api_name=False)

        def _track(path, request: gr.Request):
            server.track_upload(request.session_hash or "api", path)

        for upload in (photo, video):
            upload.change(_track, [upload], None, queue=False, api_name=False, show_progress="hidden")

        def _end(request: gr.Request):
            server.end_session(request.session_hash or "api")

        demo.unload(_end)
    return demo


def launch(demo: gr.Blocks, server: UIServer, host: str, port: int, share: bool = False,
           auth: tuple[str, str] | None = None, max_upload_mb: int = 500, max_queue: int = 32) -> None:
    """Serve ``demo`` until Ctrl-C or SIGTERM (the queue holds at most ``max_queue`` waiting
    runs); prints ``bdmm ui: serving on URL`` once the page answers."""
    from bdmm_cli.commands._common import err_console

    demo.queue(max_size=max_queue, default_concurrency_limit=1)
    demo.launch(server_name=host, server_port=port, share=share, auth=auth, max_file_size=f"{max_upload_mb}mb",
                allowed_paths=[str(server.root)], show_error=False, inbrowser=False, ssr_mode=False,
                quiet=True, prevent_thread_lock=True)
    public = f", public link {demo.share_url}" if demo.share_url else ""
    err_console.print(f"bdmm ui: serving on {demo.local_url}{public} (device {server.pipeline.device}; "
                      "Ctrl-C stops)", markup=False)
    demo.block_thread()


__all__ = ["INTRO", "TITLE", "build_page", "error_line", "launch"]
