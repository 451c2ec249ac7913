"""The handlers of `bdmm ui`, called directly (no server): Preview and Animate on real uploads
(the sample photo, a video made from it; MediaPipe keypoints, SPIN with random weights, a
tiny generator), progress, limits, bad inputs, Cancel and the session's cleanup; the checks
that run before the page starts; the command's one-line errors."""

from __future__ import annotations

import sys
import threading

import numpy as np
import pytest
from typer.testing import CliRunner

from animate_helpers import MODEL_SIZE
from bdmm_cli.cli import app
from bdmm_cli.errors import InputError, MissingResourceError
from bdmm_cli.pipeline import AnimateConfig, LoadSettings, animate
from bdmm_cli.ui import (Cancelled, PageOptions, ServeSettings, UIServer, cancel, check_serving, run_animate,
                         run_preview)
from bdmm_cli.video import count_frames, iter_frames, probe_video
from ui_helpers import PERSON, load_settings, person_video, ui_args, ui_env

pytest.importorskip("mediapipe")

N, FPS = 8, 10.0


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("ui")
    env = ui_env(root)
    env["video"] = person_video(root / "drive.mp4", N, FPS)
    env["root"] = root
    return env


@pytest.fixture(scope="module")
def server(env, tmp_path_factory):
    settings = ServeSettings(load=load_settings(env), size=MODEL_SIZE, model_size=MODEL_SIZE, max_seconds=60,
                             preview_seconds=0.5)
    srv = UIServer.load(settings, root=tmp_path_factory.mktemp("server"))
    yield srv
    srv.close()


def _mp4s(session):
    return sorted(session.folder.glob("*.mp4*")) + sorted(session.folder.glob(".*"))


def test_animate_is_the_cli_result_with_progress(env, server, tmp_path):
    session = server.session("good")
    reports = []
    outcome = run_animate(server, session, PERSON, env["video"], PageOptions(window=3), report=reports.append)
    # The MP4: every frame of the driving video, at its rate.
    assert outcome.video.parent == session.folder
    assert count_frames(outcome.video) == N and probe_video(outcome.video).fps == pytest.approx(FPS)
    # Same pipeline as `bdmm animate`: the one-call API on the same inputs gives the same frames.
    cli = animate(PERSON, env["video"], tmp_path / "cli.mp4",
                  AnimateConfig(**vars(load_settings(env)), size=MODEL_SIZE, model_size=MODEL_SIZE, window=3,
                                cache=False))
    assert cli.num_frames == N
    for a, b in zip(iter_frames(outcome.video), iter_frames(tmp_path / "cli.mp4"), strict=True):
        np.testing.assert_array_equal(a, b)
    # Progress: frames written per window (windows of 3: 3, 6, 8) out of N, a rate and an ETA.
    assert [r.done for r in reports] == [0, 3, 6, 8]
    assert all(r.stage == "animate" and r.total == N for r in reports)
    assert all(r.fps > 0 and r.eta is not None for r in reports[1:]) and reports[-1].eta == 0
    assert reports[1].line.startswith("animate: 3/8 frames, ") and "frames/s, ETA 0:" in reports[1].line
    # The summary: frames, fps, retarget mode, keypoints, audio.
    assert outcome.summary.startswith(f"result: {N} frames, 10 fps, {MODEL_SIZE}x{MODEL_SIZE}, retarget shape+camera (auto)")
    assert "keypoints: MediaPipe" in outcome.summary and "audio: none in the driving video" in outcome.summary


def test_preview_range_and_max_seconds(env, server):
    session = server.session("preview")
    out = run_preview(server, session, PERSON, env["video"], PageOptions(retarget="camera"))
    # Preview: the first preview_seconds (0.5 s = 5 frames) of the range, driver | photo side by side.
    assert count_frames(out.video) == 5 and out.result.size == (2 * MODEL_SIZE, MODEL_SIZE)
    assert out.result.retarget == "camera" and out.summary.startswith("preview: 5 frames")
    # A frame range, then max seconds from its start.
    out = run_animate(server, session, PERSON, env["video"], PageOptions(frames="2:7", max_seconds=0.3,
                                                                          side_by_side=True))
    assert count_frames(out.video) == 3 and out.result.size == (2 * MODEL_SIZE, MODEL_SIZE)
    out = run_animate(server, session, PERSON, env["video"], PageOptions(frames="5:", overlap=1, window=2))
    assert count_frames(out.video) == N - 5


@pytest.mark.parametrize("photo, video, options, message", [
    (None, "video", PageOptions(), "no photo: upload one first"),
    ("photo", None, PageOptions(), "no driving video: upload one first"),
    ("photo", "text.mp4", PageOptions(), "cannot read video"),
    ("text.mp4", "video", PageOptions(), "cannot read"),
    ("photo", "video", PageOptions(frames="x"), "--frames"),
    ("photo", "video", PageOptions(frames="9:"), "--frames starts at 9"),
    ("photo", "video", PageOptions(retarget="sideways"), "--retarget must be one of"),
    ("photo", "video", PageOptions(window=0), "window"),
    ("photo", "video", PageOptions(max_seconds=-1), "max seconds must be positive"),
    ("photo", "video", PageOptions(dtype="fp16"), "--dtype fp16 needs a CUDA GPU"),
])
def test_bad_inputs_are_one_line(env, server, photo, video, options, message):
    text = env["root"] / "text.mp4"
    text.write_text("not a video\n")
    files = {"photo": PERSON, "video": env["video"], "text.mp4": text, None: None}
    session = server.session(f"bad-{message[:8]}")
    with pytest.raises(InputError) as info:
        run_animate(server, session, files[photo], files[video], options)
    assert message in str(info.value) and "\n" not in str(info.value)
    assert _mp4s(session) == []


def test_server_video_length_limit(env, server):
    short = UIServer(server.pipeline, ServeSettings(load=server.settings.load, size=MODEL_SIZE,
                                                    model_size=MODEL_SIZE, max_seconds=0.5), root=server.root / "lim")
    session = short.session("limit")
    with pytest.raises(InputError, match=r"frames 0:8 last 0.8 s; this page animates at most 0.5 s per run"):
        run_animate(short, session, PERSON, env["video"], PageOptions())
    out = run_animate(short, session, PERSON, env["video"], PageOptions(max_seconds=0.5))  # within the limit
    assert count_frames(out.video) == 5


def test_cancel_stops_between_windows_and_leaves_nothing(env, server):
    session = server.session("cancel")
    seen = []

    def report(p):
        seen.append(p.done)
        if p.done >= 2:
            cancel(session)  # the Cancel button, pressed while the run goes on

    with pytest.raises(Cancelled, match=r"cancelled after 2 frame\(s\); nothing was written"):
        run_animate(server, session, PERSON, env["video"], PageOptions(window=2), report=report)
    assert seen == [0, 2]  # stopped at the end of the next window, not later
    assert _mp4s(session) == [] and not list((server.root).glob("**/.*.mp4*"))
    # The next run of the session is not cancelled by the earlier click.
    out = run_preview(server, session, PERSON, env["video"], PageOptions())
    assert count_frames(out.video) == 5


def test_cancel_from_another_thread(env, server):
    session = server.session("thread")
    started = threading.Event()
    errors = []

    def go():
        try:
            run_animate(server, session, PERSON, env["video"], PageOptions(window=2),
                        report=lambda p: started.set() if p.stage == "animate" else None)
        except Cancelled as exc:
            errors.append(exc)

    worker = threading.Thread(target=go)
    worker.start()
    assert started.wait(60)
    assert cancel(session).startswith("cancelled")
    worker.join(120)
    assert len(errors) == 1 and _mp4s(session) == []


def test_one_run_at_a_time(env, server):
    """A second session waits for the device and is told so."""
    a, b = server.session("first"), server.session("second")
    waiting = threading.Event()
    results = {}

    def second():
        results["b"] = run_preview(server, b, PERSON, env["video"], PageOptions(),
                                   report=lambda p: waiting.set() if p.stage == "waiting for the device" else None)

    thread = None

    def report(p):
        nonlocal thread
        if p.done == 0 and thread is None:
            thread = threading.Thread(target=second)
            thread.start()
            assert waiting.wait(30)  # b is queued behind a, which holds the device

    results["a"] = run_preview(server, a, PERSON, env["video"], PageOptions(), report=report)
    thread.join(120)
    assert count_frames(results["a"].video) == count_frames(results["b"].video) == 5


def test_end_session_removes_its_files_only(env, server):
    session = server.session("bye")
    upload = server.root / "gradio" / "abc123" / "drive.mp4"  # where gradio puts an upload
    upload.parent.mkdir(parents=True)
    upload.write_bytes(env["video"].read_bytes())
    out = run_preview(server, session, PERSON, upload, PageOptions())
    assert out.video.is_file()
    server.end_session("bye")
    assert not session.folder.exists() and not upload.exists() and not upload.parent.exists()
    assert PERSON.is_file()  # handed in by path from outside the server's folder: never touched
    assert "bye" not in server.sessions


def test_an_upload_two_sessions_share_stays_until_both_end(env, server):
    """Gradio stores an upload once per content: two tabs that drop the same file get one path."""
    upload = server.root / "gradio" / "samefile" / "drive.mp4"
    upload.parent.mkdir(parents=True)
    upload.write_bytes(env["video"].read_bytes())
    a = server.session("tab-a")
    run_preview(server, a, PERSON, upload, PageOptions(frames="0:2"))
    server.track_upload("tab-b", upload)  # dropped in tab b, which has not run anything
    server.end_session("tab-a")
    assert upload.is_file() and not a.folder.exists()
    server.end_session("tab-b")
    assert not upload.exists()


def test_idle_sessions_are_swept(env, server):
    """A session whose tab never closes (an API client) is ended session_ttl after its last run."""
    idle = server.session("idle-api-client")
    run_preview(server, idle, PERSON, env["video"], PageOptions(frames="0:2"))
    busy = server.session("busy")
    busy.running = 1  # a run going on: never swept
    later = idle.last_used + server.settings.session_ttl + 1
    busy.last_used = idle.last_used
    assert "idle-api-client" not in server.sweep(now=later - 2)  # (sessions of earlier tests may go)
    assert "idle-api-client" in server.sweep(now=later) and not idle.folder.exists()
    assert "busy" in server.sessions
    busy.running = 0


def test_check_serving_reports_what_is_missing(env):
    # No SMPL model installed (the tests' BDMM_HOME is empty) and the registry's generator not cached.
    bare = LoadSettings(weights="fashionvideo", pose_weights=str(env["spin"]), device="cpu")
    with pytest.raises(MissingResourceError) as info:
        check_serving(bare)
    msg = str(info.value)
    assert "SMPL model" in msg and "weights: generator-fashionvideo" in msg and "bdmm doctor" in msg
    assert any("bdmm setup --accept-licenses" in line for line in info.value.details)
    check_serving(load_settings(env))  # everything given by path: nothing missing


def test_command_errors_are_one_line(env, monkeypatch):
    runner = CliRunner()
    result = runner.invoke(app, ui_args(env, "--host", "0.0.0.0", "--smpl", str(env["root"] / "nope.pkl")))
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert lines[0].startswith("warning: listening on 0.0.0.0") and "--auth USER:PASS" in lines[0]
    assert lines[-1].startswith("error: SMPL model file") and "Traceback" not in result.output
    monkeypatch.setitem(sys.modules, "gradio", None)  # gradio not installed
    result = runner.invoke(app, ui_args(env))
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [result.output.strip()]
    assert 'error: the web page needs gradio' in result.output and 'pip install "bdmm[ui]"' in result.output


def test_port_in_use_is_one_line_before_loading(env):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(app, ui_args(env, "--port", str(port)))
    assert result.exit_code == 1
    assert result.output == f"error: cannot listen on 127.0.0.1:{port} (Address already in use): choose another --port or --host\n"


def test_page_handler_turns_every_failure_into_one_line(env, server, monkeypatch):
    """The page's wrapper (no server): the handler's one line (uploads named by file name), and
    an unexpected exception as one line too, its traceback only in the server's log."""
    gr = pytest.importorskip("gradio")
    from bdmm_cli.ui import page

    text = env["root"] / "notes.mp4"
    text.write_text("not a video\n")
    animate_handler = page._handler(server, run_animate)
    with pytest.raises(gr.Error) as info:
        animate_handler(str(PERSON), str(text))
    assert info.value.message.startswith("error: cannot read video notes.mp4: ") and "\n" not in info.value.message
    video, summary = page._handler(server, run_preview)(str(PERSON), str(env["video"]), "camera", "0:4")
    assert count_frames(video) == 4 and summary.startswith("preview: 4 frames") and "retarget camera" in summary

    def broken(*args):
        raise RuntimeError("a bug\nwith two lines")

    broken.__name__ = "run_animate"
    with pytest.raises(gr.Error) as info:
        page._handler(server, broken)(str(PERSON), str(env["video"]))
    assert info.value.message == "error: internal error (RuntimeError); the server's log has the details"
