"""`bdmm ui` for real: the command started on a free port with tiny stand-in weights, driven in
Debian's Chromium by Playwright (upload, Preview, Animate with progress, download, Cancel, a
bad upload, closing the tab), and called through `gradio_client` with both API names.

The screenshot of the page after a run is saved under the test's temporary folder; with
``BDMM_UI_SCREENSHOT=docs/ui.jpg`` it is also written there (the README's picture).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from animate_helpers import MODEL_SIZE
from bdmm_cli.video import count_frames, probe_video
from ui_helpers import PERSON, person_video, ui_args, ui_env

pytestmark = pytest.mark.browser

pytest.importorskip("mediapipe")
gradio_client = pytest.importorskip("gradio_client")
sync_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = Path(os.environ.get("BDMM_CHROMIUM", "/usr/bin/chromium"))
N, FPS = 8, 10.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def chromium():
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} not found: apt-get install chromium (.ci/run does)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """`bdmm ui` in its own process; yields (url, env, tmp root, log path); stopped with SIGTERM."""
    root = tmp_path_factory.mktemp("ui_browser")
    env = ui_env(root)
    env["video"] = person_video(root / "drive.mp4", N, FPS)
    tmp = root / "tmp"  # the server's temporary folders land here (TMPDIR)
    tmp.mkdir()
    port = _free_port()
    log = root / "server.log"
    child_env = dict(os.environ, TMPDIR=str(tmp), BDMM_HOME=str(root / "home"), BDMM_CACHE_DIR=str(root / "cache"),
                     HF_HOME=str(root / "hf"), OMP_NUM_THREADS="1", GRADIO_ANALYTICS_ENABLED="False")
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "bdmm_cli", *ui_args(env, "--port", str(port))],
                                stdout=out, stderr=subprocess.STDOUT, env=child_env, cwd=root)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 180
    try:
        while f"bdmm ui: serving on {url}" not in log.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"bdmm ui did not start (exit {proc.poll()}):\n{log.read_text(errors='replace')}")
            time.sleep(0.5)
        yield url, env, tmp, log
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    # Stopped with SIGTERM: the server's folder (uploads, sessions, gradio's copies) is gone.
    assert proc.returncode == 0, log.read_text(errors="replace")
    assert list(tmp.iterdir()) == []


def _mp4s(tmp: Path) -> list[Path]:
    return sorted(tmp.glob("bdmm-ui-*/sessions/*/*.mp4"))


def test_page_in_chromium(served, chromium, tmp_path):
    url, env, tmp, log = served
    text = tmp_path / "notes.mp4"
    text.write_text("a text file, not a video\n")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 1000}, accept_downloads=True)
        page.goto(url)
        page.locator("#photo input[type=file]").set_input_files(str(PERSON))
        page.locator("#video input[type=file]").set_input_files(str(env["video"]))
        page.wait_for_selector("#video video")

        # Preview: the driver's fit | the retargeted body on the photo.
        page.click("#preview-button")
        page.wait_for_selector("#preview-video video[src]", timeout=90_000)
        sync_api.expect(page.locator("#status")).to_contain_text(
            f"preview: {N} frames, 10 fps, {2 * MODEL_SIZE}x{MODEL_SIZE}", timeout=10_000)

        # Animate: the progress line, then the player and its download link.
        page.click("#animate-button")
        progress = page.locator("#result-video").get_by_text(re.compile(r"animate: \d+/8 frames, .* frames/s, ETA"))
        progress.first.wait_for(timeout=60_000)
        page.wait_for_selector("#result-video video[src]", timeout=120_000)
        sync_api.expect(page.locator("#status")).to_contain_text(
            f"result: {N} frames, 10 fps, {MODEL_SIZE}x{MODEL_SIZE}, retarget shape+camera (auto), keypoints: MediaPipe",
            timeout=10_000)
        page.screenshot(path=str(tmp_path / "bdmm-ui.jpg"), full_page=True, type="jpeg", quality=85)
        with page.expect_download() as info:
            page.locator("#result-video [data-testid=download-link]").click()
        got = tmp_path / "downloaded.mp4"
        info.value.save_as(got)
        meta = probe_video(got)
        assert count_frames(got) == N and meta.fps == pytest.approx(FPS)
        assert meta.duration == pytest.approx(N / FPS, abs=0.05)
        assert (meta.width, meta.height) == (MODEL_SIZE, MODEL_SIZE)

        # A second user, while the first one's run goes on: their place in the queue.
        other = browser.new_page(viewport={"width": 1280, "height": 1000})
        other.goto(url)
        other.locator("#photo input[type=file]").set_input_files(str(PERSON))
        other.locator("#video input[type=file]").set_input_files(str(env["video"]))
        other.wait_for_selector("#video video")
        before = _mp4s(tmp)
        page.click("#animate-button")
        progress.first.wait_for(timeout=60_000)
        other.click("#preview-button")
        other.locator("#preview-video").get_by_text(re.compile(r"queue: 1/1")).first.wait_for(timeout=30_000)

        # Cancel while the run goes on: the page says so, no new MP4 appears, the next user runs.
        page.click("#cancel-button")
        sync_api.expect(page.locator("#status")).to_contain_text("cancelled: the run stops after the current window")
        other.wait_for_selector("#preview-video video[src]", timeout=120_000)
        sync_api.expect(other.locator("#status")).to_contain_text(f"preview: {N} frames")
        mine = [p for p in _mp4s(tmp) if p.parent == before[0].parent]
        assert mine == before and not list(tmp.glob("bdmm-ui-*/sessions/*/.*"))
        other.close()

        # A text file named .mp4: the CLI's one line in the page, no traceback.
        page.locator("#video button[aria-label='Clear']").click()
        page.locator("#video input[type=file]").set_input_files(str(text))
        page.wait_for_selector("#video video")  # uploaded
        page.click("#animate-button")
        error = page.get_by_text(re.compile(r"error: cannot read video .*notes\.mp4"))
        try:
            error.first.wait_for(timeout=30_000)
        finally:
            page.screenshot(path=str(tmp_path / "error.png"), full_page=True)
        assert "Traceback" not in page.content()

        # Closing the tab ends the session: its folder is removed (the other tab's already is).
        deadline = time.monotonic() + 30
        while len(list(tmp.glob("bdmm-ui-*/sessions/*"))) > 1 and time.monotonic() < deadline:
            time.sleep(0.5)
        sessions = list(tmp.glob("bdmm-ui-*/sessions/*"))
        assert sessions == [before[0].parent]
        page.close()
        browser.close()
    deadline = time.monotonic() + 30
    while sessions[0].exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not sessions[0].exists()

    shot = tmp_path / "bdmm-ui.jpg"
    assert shot.read_bytes()[:3] == b"\xff\xd8\xff"  # a JPEG
    if os.environ.get("BDMM_UI_SCREENSHOT"):
        shutil.copyfile(shot, os.environ["BDMM_UI_SCREENSHOT"])
    assert "Traceback" not in log.read_text(errors="replace")


def test_gradio_client_api(served, tmp_path):
    url, env, tmp, log = served
    client = gradio_client.Client(url, verbose=False, download_files=str(tmp_path))
    photo, video = gradio_client.handle_file(str(PERSON)), gradio_client.handle_file(str(env["video"]))
    preview, summary = client.predict(photo, video, api_name="/preview")
    assert count_frames(preview) == N and summary.startswith(f"preview: {N} frames, 10 fps, {2 * MODEL_SIZE}x")
    result, summary = client.predict(photo=photo, video=video, frames="2:6", api_name="/animate")
    assert count_frames(result) == 4 and probe_video(result).fps == pytest.approx(FPS)
    assert summary.startswith(f"result: 4 frames, 10 fps, {MODEL_SIZE}x{MODEL_SIZE}")
    # A failure is the CLI's line, naming the upload by its name only.
    with pytest.raises(gradio_client.exceptions.AppError, match=r"^error: --frames starts at 9 but drive\.mp4 has about 8 frames$"):
        client.predict(photo, video, frames="9:12", api_name="/animate")
