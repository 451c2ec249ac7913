"""`bdmm ui`: the main job in a local web page (a thin layer over bdmm_cli.ui)."""

from __future__ import annotations

import ipaddress
import os
import signal
from pathlib import Path
from typing import Optional

import typer

from bdmm_cli.commands._common import (
    KEYPOINTS_OPTION, MODEL_SIZE_OPTION, POSE_WEIGHTS_OPTION, RASTERIZER_OPTION, SMPL_OPTION, WEIGHTS_OPTION,
    err_console, handle_errors, warn,
)

INSTALL_HINT = 'pip install "bdmm[ui]"'


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _parse_auth(auth: str | None) -> tuple[str, str] | None:
    from bdmm_cli.errors import InputError

    if auth is None:
        return None
    user, sep, password = auth.partition(":")
    if not sep or not user or not password:
        raise InputError(f"--auth must be USER:PASS, got {auth!r}")
    return user, password


def _check_port(host: str, port: int) -> None:
    import socket

    from bdmm_cli.errors import InputError

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise InputError(f"--host {host}: {exc.strerror}") from None
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise InputError(f"cannot listen on {host}:{port} ({exc.strerror}): choose another --port or --host") from None


def _stop(signum, frame):
    raise KeyboardInterrupt


@handle_errors
def ui_command(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (other than 127.0.0.1: see --auth)."),
    port: int = typer.Option(7860, "--port", help="Port to listen on."),
    share: bool = typer.Option(False, "--share/--no-share", help="Also publish a temporary public link (Gradio's share service)."),
    auth: Optional[str] = typer.Option(None, "--auth", help="USER:PASS the page asks for."),
    weights: str = WEIGHTS_OPTION,
    smpl: Optional[Path] = SMPL_OPTION,
    pose_weights: Optional[str] = POSE_WEIGHTS_OPTION,
    keypoints: str = KEYPOINTS_OPTION,
    rasterizer: str = RASTERIZER_OPTION,
    device: str = typer.Option("auto", "--device", help="auto (CUDA when available), cpu, cuda or cuda:N."),
    dtype: str = typer.Option("fp32", "--dtype", help="Default dtype of the generator: fp32, or fp16 / bf16 on a GPU."),
    size: int = typer.Option(256, "--size", help="Side of the output frames in pixels."),
    model_size: int = MODEL_SIZE_OPTION,
    max_seconds: float = typer.Option(60.0, "--max-seconds", help="Longest part of a driving video one run may use, in seconds (0: no limit)."),
    max_upload_mb: int = typer.Option(500, "--max-upload-mb", help="Largest upload in MB."),
) -> None:
    """Serve the main job as a web page: photo + driving video -> MP4, with a preview, progress, cancel and a download link.

    The models are loaded once and shared; runs go one at a time (waiting users see their place in the queue); uploads and results live in a temporary folder per browser session, removed when the session ends. The page's two actions are also an API (`gradio_client`, api_name "/preview" and "/animate"). Listens on 127.0.0.1 unless --host says otherwise. Needs the ui extra: pip install "bdmm\\[ui]".

    Examples:

      bdmm ui

      bdmm ui --port 8080 --device cuda --dtype fp16

      bdmm ui --host 0.0.0.0 --auth alice:secret --max-seconds 30

      bdmm ui --weights latest_net_G.pth --pose-weights spin_ckpt.pth --keypoints mediapipe
    """
    from bdmm_cli.errors import InputError, MissingResourceError
    from bdmm_cli.pipeline import LoadSettings, RunSettings

    credentials = _parse_auth(auth)
    if not 1 <= port <= 65535:
        raise InputError(f"--port must be 1-65535, got {port}")
    if max_seconds < 0 or max_upload_mb < 1:
        raise InputError("--max-seconds must be >= 0 and --max-upload-mb >= 1")
    RunSettings(size=size, model_size=model_size).validate_run()
    _check_port(host, port)  # before the models load
    load = LoadSettings(weights=weights, smpl=smpl, pose_weights=pose_weights, keypoints=keypoints,
                        device=device, dtype=dtype, rasterizer=rasterizer)
    if not _is_loopback(host):
        warn(f"listening on {host}: anyone who can reach this machine on port {port} can use the page"
             + ("" if credentials else " (add --auth USER:PASS)"))
    if share:
        warn("--share publishes the page on a public link" + ("" if credentials else " (add --auth USER:PASS)"))

    import shutil
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="bdmm-ui-"))
    # Gradio's uploads go into the server's folder too (set before gradio is imported: it reads
    # it then), and the session folders inside it are served from where they are.
    saved = {k: os.environ.get(k) for k in ("GRADIO_TEMP_DIR", "GRADIO_ANALYTICS_ENABLED")}
    os.environ["GRADIO_TEMP_DIR"] = str(root)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    try:
        import gradio  # noqa: F401
    except ImportError as exc:
        shutil.rmtree(root, ignore_errors=True)
        _restore(saved)
        raise MissingResourceError(f"the web page needs gradio, which is not installed ({exc.name}): {INSTALL_HINT}") from None
    from bdmm_cli.ui.handlers import ServeSettings, UIServer

    server = None
    previous = signal.signal(signal.SIGTERM, _stop)  # `kill` stops the page like Ctrl-C, folders removed
    try:
        err_console.print("loading the models ...")
        server = UIServer.load(ServeSettings(load=load, size=size, model_size=model_size, max_seconds=max_seconds),
                               root=root)
        from bdmm_cli.ui.page import build_page, launch

        demo = build_page(server)
        launch(demo, server, host=host, port=port, share=share, auth=credentials, max_upload_mb=max_upload_mb)
    finally:
        signal.signal(signal.SIGTERM, previous)
        if server is not None:
            server.close()
        shutil.rmtree(root, ignore_errors=True)
        _restore(saved)


def _restore(saved: dict) -> None:
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def register(app: typer.Typer) -> None:
    app.command("ui")(ui_command)
