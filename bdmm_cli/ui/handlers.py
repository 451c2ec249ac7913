"""What the page's buttons do, as plain functions over :class:`bdmm_cli.pipeline.AnimatePipeline`.

    server = UIServer.load(ServeSettings(load=LoadSettings(weights="fashionvideo")))
    session = server.session("abc")
    outcome = run_animate(server, session, "person.jpg", "dance.mp4", PageOptions(), report=print)
    cancel(session)                     # from another thread: stops after the current window
    server.end_session("abc")           # the session's folder and uploads are removed
    server.close()

The page (``bdmm_cli.ui.page``) only maps its widgets onto these functions and their
:class:`~bdmm_cli.errors.BdmmError` onto one line in the page; the tests call them directly.

Serving rules:

- **one pipeline**, loaded by :meth:`UIServer.load` before the page starts (missing weights or
  SMPL model are reported there, as ``bdmm doctor`` reports them), shared by every session;
  a generator in another dtype is a copy made on first use;
- **one run at a time** on the device (:attr:`UIServer.lock`; the page's queue shows the
  waiting users their place);
- **nothing outside the session folder**: runs use no cache (``RunSettings.cache=False``: no
  pose cache, no resume data), outputs go to ``<root>/sessions/<id>/``, removed with the
  uploads the session handed in when the session ends (:meth:`UIServer.end_session`) and
  with everything else when the server stops (:meth:`UIServer.close`);
- **limits**: the photo as the CLI (``video.read_image``: 100 megapixels), the part of the
  driving video used at most ``ServeSettings.max_seconds`` long;
- **cancel** (:func:`cancel`): the run stops at the end of the current window through the
  pipeline's ``on_window`` hook, and the pipeline removes its unfinished output.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

from bdmm_cli.errors import BdmmError, InputError, MissingResourceError
from bdmm_cli.pipeline import AnimatePipeline, AnimateResult, CheckedInputs, LoadSettings, RunSettings, check_run
from bdmm_cli.pipeline import parse_frame_range
from bdmm_cli.pipeline.checks import check_load, resolve_dtype
from bdmm_cli.pipeline.config import DTYPES, RETARGET_CHOICES

#: Seconds of the driving video (from the start of the range) that Preview shows.
PREVIEW_SECONDS = 3.0
#: Default longest part of a driving video one run may use, in seconds (``bdmm ui --max-seconds``).
DEFAULT_MAX_SECONDS = 60.0
#: Seconds after its last run that a session is ended even if its tab is still open.
SESSION_TTL = 3 * 3600.0


class Cancelled(BdmmError):
    """A run stopped by :func:`cancel`; nothing was written."""


@dataclass(frozen=True)
class ServeSettings:
    """What ``bdmm ui`` fixes for every run.

    Attributes:
        load: what the shared pipeline loads (generator, body model, pose front-end, device, dtype).
        size: side of the output frames in pixels.
        model_size: resolution the model runs at (the released weights: 256).
        max_seconds: longest part of a driving video one run may use (0: no limit).
        preview_seconds: seconds of the range that Preview shows.
        session_ttl: seconds after its last run that a session still open is ended anyway
            (API clients never close a tab), checked when a run starts.
    """

    load: LoadSettings = LoadSettings()
    size: int = 256
    model_size: int = 256
    max_seconds: float = DEFAULT_MAX_SECONDS
    preview_seconds: float = PREVIEW_SECONDS
    session_ttl: float = SESSION_TTL


@dataclass(frozen=True)
class PageOptions:
    """The page's settings of one run (each maps onto a ``bdmm animate`` option).

    Attributes:
        retarget: ``--retarget``: auto, none, camera or shape+camera.
        frames: ``--frames`` ``A:B`` of the driving video ("" = all of it).
        max_seconds: use at most this many seconds from the start of the range (None = all).
        side_by_side: ``--side-by-side``.
        window, overlap: ``--window``, ``--overlap``.
        dtype: ``--dtype`` of the generator (None = the server's).
        skip_missing: ``--skip-missing``.
    """

    retarget: str = "auto"
    frames: str = ""
    max_seconds: float | None = None
    side_by_side: bool = False
    window: int = 6
    overlap: int = 0
    dtype: str | None = None
    skip_missing: bool = False


@dataclass(frozen=True)
class Progress:
    """One progress report of a run.

    Attributes:
        stage: "waiting for the device", "preview" or "animate".
        done: output frames written so far.
        total: frames the run writes (None when the video does not say).
        fps: output frames per second so far (0 before the first window).
        eta: seconds left at that rate (None when unknown).
    """

    stage: str
    done: int = 0
    total: int | None = None
    fps: float = 0.0
    eta: float | None = None

    @property
    def line(self) -> str:
        """``animate: 12/48 frames, 3.10 frames/s, ETA 0:12``."""
        if self.stage == "waiting for the device":
            return "waiting for the device (another run is going on)"
        count = f"{self.done}/{self.total}" if self.total else f"{self.done}"
        rate = f"{self.fps:.2f} frames/s" if self.fps else "-- frames/s"
        eta = "--:--" if self.eta is None else f"{int(self.eta) // 60}:{int(self.eta) % 60:02d}"
        return f"{self.stage}: {count} frames, {rate}, ETA {eta}"


@dataclass(frozen=True)
class RunOutcome:
    """A finished run: the MP4, the pipeline's result and the one-paragraph summary shown in the page."""

    video: Path
    result: AnimateResult
    summary: str


@dataclass
class Session:
    """One browser session: its folder, the uploads it handed in, its current run's cancel flag."""

    id: str
    folder: Path
    uploads: set[Path] = field(default_factory=set)
    cancel_event: threading.Event = field(default_factory=threading.Event)
    last_used: float = field(default_factory=time.monotonic)
    running: int = 0
    _names: itertools.count = field(default_factory=itertools.count)

    def output_path(self, kind: str) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        return self.folder / f"{kind}-{next(self._names)}.mp4"


class UIServer:
    """The shared state of one ``bdmm ui``: the pipeline(s), the device lock, the sessions.

    Args:
        pipeline: the loaded pipeline (:meth:`load` builds it from ``settings.load``).
        settings: the serving settings.
        root: the server's temporary folder (None: a new one); removed by :meth:`close`.
    """

    def __init__(self, pipeline: AnimatePipeline, settings: ServeSettings, root: Path | None = None) -> None:
        self.pipeline = pipeline
        self.settings = settings
        self.root = Path(root) if root is not None else Path(tempfile.mkdtemp(prefix="bdmm-ui-"))
        self.lock = threading.Lock()  # one run at a time on the device
        self.sessions: dict[str, Session] = {}
        self._sessions_lock = threading.Lock()
        self._variants: dict[str, AnimatePipeline] = {settings.load.dtype: pipeline}

    @classmethod
    def load(cls, settings: ServeSettings, root: Path | None = None) -> "UIServer":
        """Check what the page needs (as ``bdmm doctor``), then load the pipeline and the pose front-end.

        Raises InputError / MissingResourceError (one line, the fix in ``details``) before
        anything is served.
        """
        check_serving(settings.load)
        pipe = AnimatePipeline.from_config(settings.load, with_generator=True)
        pipe.pose_estimator  # noqa: B018 - loaded now, so a bad --pose-weights stops the start
        return cls(pipe, settings, root)

    @property
    def dtypes(self) -> list[str]:
        """The dtypes the page offers: those the device supports."""
        return [d for d in DTYPES if d == "fp32" or self.pipeline.device.type == "cuda"]

    def pipeline_for(self, dtype: str | None) -> AnimatePipeline:
        """The shared pipeline with its generator in ``dtype`` (a copy made on first use)."""
        dtype = dtype or self.settings.load.dtype
        if dtype not in DTYPES:
            raise InputError(f"--dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
        if dtype not in self._variants:
            base = self.pipeline
            torch_dtype = resolve_dtype(dtype, base.device)
            self._variants[dtype] = AnimatePipeline(
                copy.deepcopy(base.generator), base.body, device=base.device, dtype=torch_dtype,
                pose_estimator=base.pose_estimator, pose_weights=base.pose_weights, keypoints=base.keypoints,
                rasterizer=base.rasterizer)
        return self._variants[dtype]

    def session(self, session_id: str) -> Session:
        """The session ``session_id`` (created on first use)."""
        with self._sessions_lock:
            if session_id not in self.sessions:
                safe = "".join(c for c in session_id if c.isalnum() or c in "-_")[:64] or "session"
                self.sessions[session_id] = Session(session_id, self.root / "sessions" / safe)
            return self.sessions[session_id]

    def track_upload(self, session_id: str, path) -> None:
        """Remember that the session ``session_id`` has the upload ``path`` (the page calls
        this when a file is dropped, so a session that has not run yet keeps its uploads too)."""
        if path:
            self.session(session_id).uploads.add(Path(path))

    def end_session(self, session_id: str) -> None:
        """Stop the session's run and remove its folder and its uploads: those inside the
        server's folder that no other open session has (gradio stores an upload once per
        content, so two sessions that drop the same file share it; a file given by path
        from elsewhere is never touched)."""
        with self._sessions_lock:
            session = self.sessions.pop(session_id, None)
            if session is None:
                return
            shared = set().union(*(s.uploads for s in self.sessions.values()))
        session.cancel_event.set()
        shutil.rmtree(session.folder, ignore_errors=True)
        for path in session.uploads - shared:
            if _inside(path, self.root):
                path.unlink(missing_ok=True)
                with contextlib.suppress(OSError):
                    path.parent.rmdir()  # gradio's per-upload folder, when now empty

    def sweep(self, now: float | None = None) -> list[str]:
        """End the sessions idle (no run going on) for more than ``settings.session_ttl``
        seconds; returns their ids."""
        now = time.monotonic() if now is None else now
        with self._sessions_lock:
            stale = [sid for sid, s in self.sessions.items()
                     if not s.running and now - s.last_used > self.settings.session_ttl]
        for sid in stale:
            self.end_session(sid)
        return stale

    def close(self) -> None:
        """Cancel every run and remove the server's folder."""
        for sid in list(self.sessions):
            self.end_session(sid)
        shutil.rmtree(self.root, ignore_errors=True)


def check_serving(load: LoadSettings) -> None:
    """What ``bdmm ui`` needs before the page starts: the options and files (``check_load``),
    then the SMPL model and the registry weights it will load, checked as ``bdmm doctor``
    checks them. Raises MissingResourceError naming every missing item, each with its fix."""
    from bdmm_cli.hub.resolve import names_a_path
    from bdmm_cli.pipeline import requirements

    check_load(load)
    rows: list = []
    if load.smpl is None:
        rows += requirements.check_smpl()
    wanted = []
    if not names_a_path(load.weights):
        from bdmm_cli.hub.registry import ALIASES

        wanted.append(f"weights: {ALIASES.get(load.weights, load.weights)}")
    pose_named = load.pose_weights is not None and not names_a_path(load.pose_weights)
    if wanted or load.pose_weights is None or pose_named:
        weights = requirements.check_weights()
        rows += [c for c in weights if c.name in wanted]
        if pose_named:
            rows += [c for c in weights if c.name == f"weights: {load.pose_weights}"]
        elif load.pose_weights is None and not any(c.ok for c in weights if "spin" in c.name):
            rows += [c for c in weights if "spin" in c.name][:1]
    missing = [c for c in rows if not c.ok]
    if missing:
        raise MissingResourceError(
            "the page cannot start: missing " + ", ".join(c.name for c in missing)
            + " (`bdmm doctor` lists everything the main job needs)",
            details=[f"{c.name}: {c.detail}; fix: {c.fix}" for c in missing],
        )


# ---------------------------------------------------------------------------------------
# the buttons
# ---------------------------------------------------------------------------------------
def run_preview(server: UIServer, session: Session, photo, video, options: PageOptions = PageOptions(),
                report: Callable[[Progress], None] | None = None) -> RunOutcome:
    """**Preview**: the ``--preview`` frames (the driver's fit | the retargeted body on the
    photo) of the first ``preview_seconds`` of the range, as an MP4."""
    return _run("preview", server, session, photo, video, options, report)


def run_animate(server: UIServer, session: Session, photo, video, options: PageOptions = PageOptions(),
                report: Callable[[Progress], None] | None = None) -> RunOutcome:
    """**Animate**: the MP4 ``bdmm animate`` writes for these inputs and options."""
    return _run("animate", server, session, photo, video, options, report)


def cancel(session: Session) -> str:
    """**Cancel**: the session's run stops after its current window (the pipeline removes
    its unfinished output); returns the line the page shows."""
    session.cancel_event.set()
    return "cancelled: the run stops after the current window; nothing is kept"


def _run(kind: str, server: UIServer, session: Session, photo, video, options: PageOptions,
         report: Callable[[Progress], None] | None) -> RunOutcome:
    report = report or (lambda _p: None)
    session.last_used = time.monotonic()
    session.running += 1
    server.sweep()  # other sessions idle too long
    try:
        return _run_checked(kind, server, session, photo, video, options, report)
    finally:
        session.running -= 1
        session.last_used = time.monotonic()


def _run_checked(kind: str, server: UIServer, session: Session, photo, video, options: PageOptions,
                 report: Callable[[Progress], None]) -> RunOutcome:
    stop_flag = threading.Event()
    session.cancel_event = stop_flag  # Cancel stops this run (an earlier click is forgotten)
    photo, video = _upload(session, photo, "photo"), _upload(session, video, "driving video")
    checked = _check(kind, server, session, photo, video, options)
    run = checked.run
    total = checked.info.num_frames
    total = None if not total else min(total, run.stop or total) - run.start
    if not server.lock.acquire(blocking=False):
        report(Progress("waiting for the device"))
        server.lock.acquire()
    try:
        if stop_flag.is_set():
            raise Cancelled("cancelled before the run started; nothing was written")
        pipe = server.pipeline_for(options.dtype)
        started = time.perf_counter()
        done = 0
        report(Progress(kind, 0, total))

        def on_window(window) -> None:
            nonlocal done
            if stop_flag.is_set():
                raise Cancelled(f"cancelled after {done} frame(s); nothing was written")
            done = max(done, window.stop - window.hold)  # frames written through this window
            elapsed = time.perf_counter() - started
            fps = done / elapsed if elapsed > 0 else 0.0
            eta = (total - done) / fps if (total and fps) else None
            report(Progress(kind, done, total, fps, eta))

        try:
            result = pipe(photo, video, checked.output, run, on_window=on_window, checked=checked)
        except BaseException:
            checked.output.unlink(missing_ok=True)  # the pipeline writes nothing on failure; be sure
            raise
    finally:
        server.lock.release()
    return RunOutcome(checked.output, result, summary(kind, result, run, checked))


def _upload(session: Session, path, what: str) -> Path:
    """An uploaded file's path, remembered for the session's cleanup; InputError when absent."""
    if path is None or str(path) == "":
        raise InputError(f"no {what}: upload one first")
    path = Path(path)
    session.uploads.add(path)
    return path


def _check(kind: str, server: UIServer, session: Session, photo: Path, video: Path,
           options: PageOptions) -> CheckedInputs:
    """Step 1 of the pipeline for the page's inputs, with the page's limits: the range cut
    to ``max_seconds`` (the page's) and to ``preview_seconds`` (Preview), then refused when
    longer than the server's ``max_seconds``."""
    s = server.settings
    if options.retarget not in RETARGET_CHOICES:
        raise InputError(f"--retarget must be one of {', '.join(RETARGET_CHOICES)}, got {options.retarget!r}")
    start, stop = parse_frame_range(options.frames.strip() or None)
    if options.max_seconds is not None and options.max_seconds <= 0:
        raise InputError(f"max seconds must be positive, got {options.max_seconds:g}")
    run = RunSettings(size=s.size, model_size=s.model_size, side_by_side=options.side_by_side,
                      preview=kind == "preview", start=start, stop=stop, window=int(options.window),
                      overlap=int(options.overlap), skip_missing=options.skip_missing,
                      retarget=options.retarget, cache=False)
    output = session.output_path(kind)
    info = check_run(photo, video, output, run).info
    limits = [options.max_seconds] + ([s.preview_seconds] if kind == "preview" else [])
    for seconds in limits:
        if seconds is not None:
            cut = start + max(1, round(seconds * info.fps))
            stop = cut if stop is None else min(stop, cut)
    if s.max_seconds and stop is None and not info.num_frames:  # a length the header does not tell
        stop = start + max(1, round(s.max_seconds * info.fps))
    end = info.num_frames if stop is None else min(stop, info.num_frames or stop)
    if s.max_seconds and end and (end - start) / info.fps > s.max_seconds + 0.5 / info.fps:
        raise InputError(
            f"the driving video's frames {start}:{end} last {(end - start) / info.fps:.1f} s; this page animates at "
            f"most {s.max_seconds:g} s per run: set a frame range or max seconds"
        )
    return CheckedInputs(photo, video, output, replace(run, stop=stop), info)


def summary(kind: str, result: AnimateResult, run: RunSettings, checked: CheckedInputs) -> str:
    """The run summary the page shows (what ``bdmm animate`` prints, plus keypoints and audio)."""
    auto = " (auto)" if run.retarget == "auto" else ""
    audio = "kept" if checked.info.has_audio else "none in the driving video"
    what = "preview" if kind == "preview" else "result"
    return (f"{what}: {result.num_frames} frames, {result.fps:g} fps, {result.size[0]}x{result.size[1]}, "
            f"retarget {result.retarget}{auto}, keypoints: {result.stats.keypoints or 'from the pose files'}, "
            f"audio: {audio}")


def _inside(path: Path, root: Path) -> bool:
    try:
        Path(path).resolve().relative_to(Path(root).resolve())
        return True
    except ValueError:
        return False


__all__ = ["Cancelled", "DEFAULT_MAX_SECONDS", "PREVIEW_SECONDS", "SESSION_TTL", "PageOptions", "Progress", "RunOutcome",
           "ServeSettings", "Session", "UIServer", "cancel", "check_serving", "run_animate",
           "run_preview", "summary"]
