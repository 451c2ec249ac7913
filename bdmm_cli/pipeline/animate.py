"""`AnimatePipeline`: photo + driving video -> MP4, streamed window by window.

    from bdmm_cli.pipeline import AnimateConfig, animate
    result = animate("person.jpg", "dance.mp4", "out.mp4", AnimateConfig())

    # or: load once, run many times
    pipe = AnimatePipeline.from_config(LoadSettings(weights="fashionvideo"))
    pipe("person.jpg", "dance.mp4", "out.mp4", RunSettings(retarget="camera"))

The pipeline is built once from what it loads (:class:`LoadSettings`: generator weights,
body model, pose regressor, device, dtype) and called with what a run needs
(:class:`RunSettings`). One call, numbered steps (diffusers style):

1. **check inputs** (``pipeline.checks``): every file, option and the output path, before
   anything heavy runs (once per ``animate`` call: the one-call helper checks before
   loading and hands the result to the pipeline).
2. **models**: loaded by :meth:`AnimatePipeline.from_config` (generator through
   ``model.checkpoint.load_generator``, body model; the pose front-end on first use).
3. **pose of the source photo** (or the pose file given for it), checked (nobody, a failed
   fit, a waist-up or small photo, several people: ``check_photo_pose``).
4. **stream the driving video** through the pose front-end (one person followed,
   ``pose.follow``) or a pose folder (``pipeline.frames``), one frame at a time, cut into
   windows (``window.stream.windowed``); frames without a person at the ends are trimmed
   (or held), inside the clip they stop the run with a one-line error naming them, or are
   interpolated (``skip_missing``); windows an interrupted run finished come back from the
   run store (``RunStore.split``).
5. **retarget and build the window inputs** (``bdmm_cli.window``): the driving poses are
   mapped onto the source's body and framing (``window.retarget``; ``none`` keeps them),
   then the body model poses the T frames plus the frames before and after the window,
   ``body.window_flows`` renders all T + 2 flows in one batched call,
   ``body.keypoint_heatmaps`` draws the BODY_25 heatmaps (``window.window_inputs``).
6. **generate** the window (forward state carried across windows in test mode), or draw
   the preview (driver's fit | retarget on the source photo): the run's :class:`Render`
   strategy, :class:`Generate` or :class:`Preview`.
7. **encode**: blended / padded frames are dropped or mixed, the result composed by the
   strategy (optionally beside the driving crop) goes to an H.264 MP4 at the driving video's
   frame rate, with its audio, written to a temporary file and renamed only on success.

Memory stays bounded: frames flow through generators, and at most one batch of windows
(plus the next window's first frame, the previous window's last frame and the ``K`` held
frames of an overlap) is alive at a time, whatever the video length. After each window its
outputs and the carried state go to the run store (``pipeline.cache``), so an interrupted
run resumes from the first unfinished window.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch

from bdmm_cli.device import resolve_device
from bdmm_cli.errors import InputError
from bdmm_cli.fileio import module_hash
from bdmm_cli.pipeline.cache import RunStore, enforce_cache_cap, hash_path, warn_unwritable
from bdmm_cli.pipeline.checks import check_inputs, check_load, resolve_dtype
from bdmm_cli.pipeline.config import CROP_SIZE, AnimateConfig, LoadSettings, RunSettings, resolve_retarget
from bdmm_cli.pipeline.frames import GapReport, estimate_driving, fill_gaps, make_pose_estimator, pose_dir_stream
from bdmm_cli.pipeline.render import body_over_photo, label_frames, mesh_overlay, side_by_side
from bdmm_cli.pipeline.stream import AnimateStats, StageTimer
from bdmm_cli.video.image import resize, to_tensor, to_uint8
from bdmm_cli.window import Retargeter, Window, WindowFrames, WindowPoses, WindowSchedule, blend_overlap

from bdmm_cli.window import window_inputs as build_window_inputs
from bdmm_cli.window.stream import batched, windowed


@dataclass(frozen=True)
class AnimateResult:
    """What a run produced: output file, frame count, frame rate, frame size, counters,
    run-store key, the retargeting mode used (``auto`` resolved) and the wall time."""

    output: Path
    num_frames: int
    fps: float
    size: tuple[int, int]
    stats: AnimateStats
    run_key: str | None
    retarget: str = "none"
    seconds: float = 0.0
    preview: bool = False

    def summary(self) -> dict:
        """The run summary as plain data (``bdmm animate --json``): output, frames, fps, size,
        seconds, per-stage ``timings`` (``stream.STAGES``), the keypoint detector, the people
        seen in the driving video and the one followed, frames trimmed, warnings."""
        s = self.stats
        follow = s.follow.as_dict() if s.follow is not None else None
        gaps = s.gaps
        return {
            "output": str(self.output),
            "preview": self.preview,
            "frames": self.num_frames,
            "fps": self.fps,
            "size": list(self.size),
            "seconds": round(self.seconds, 3),
            "timings": s.timings(),
            "keypoints": s.keypoints,
            "people_seen": None if follow is None else follow["people_seen"],
            "person_followed": None if follow is None else follow["followed"],
            "follow": follow,
            "retarget": self.retarget,
            "trimmed": None if gaps is None else {"start": list(gaps.lead) if gaps.lead and gaps.ends == "trim" else None,
                                                  "end": list(gaps.tail) if gaps.tail and gaps.ends == "trim" else None},
            "frames_interpolated": 0 if gaps is None else gaps.filled,
            "windows": s.windows,
            "windows_reused": s.windows_cached,
            "pose_from_cache": s.pose_from_cache,
            "warnings": list(s.warnings),
        }

    def describe_timings(self) -> str:
        """One line: "load 1.2 s, decode 0.1 s, ..., total 9.8 s"."""
        parts = [f"{k} {v:.1f} s" for k, v in self.stats.timings().items()]
        return ", ".join(parts + [f"total {self.seconds:.1f} s"])


@dataclass(frozen=True)
class Source:
    """The source person: crop (S0, S0, 3) uint8 RGB and its FramePose (256-crop pixels)."""

    image: np.ndarray
    pose: object


@dataclass(frozen=True)
class CheckedInputs:
    """The outcome of step 1 for one (photo, video, output, run settings): the video's info."""

    photo: Path
    video: Path
    output: Path
    run: RunSettings
    info: object

    def matches(self, photo: Path, video: Path, output: Path, run: RunSettings) -> bool:
        return (self.photo, self.video, self.output, self.run) == (Path(photo), Path(video), Path(output), run)


def check_run(photo, video, output, settings: RunSettings) -> CheckedInputs:
    """Step 1 for one run (``checks.check_inputs``) as a record the pipeline accepts."""
    run = settings.run_settings
    photo, video, output = Path(photo), Path(video), Path(output)
    return CheckedInputs(photo, video, output, run, check_inputs(photo, video, output, run))


#: sha256 over a module's parameters and buffers (the one module hash: ``fileio.module_hash``).
module_identity = module_hash


# ---------------------------------------------------------------------------------------
# the pipeline
# ---------------------------------------------------------------------------------------
class AnimatePipeline:
    """The loaded models of the main job; call it to animate a photo.

    Args:
        generator: a BDMMGenerator (None allowed for ``preview`` runs only).
        body: a BodyModel (``body.load_body_model``).
        device, dtype: where and in which precision the generator runs.
        pose_estimator: a ``pose.PoseEstimator``, created on first use when None.
        pose_weights: regressor for that lazily created estimator (registry name / path).

    ``pose_source``: None, or an object whose ``photo(path)`` returns the photo's PosedFrame
    (``people(path)``: the people seen in it, or None) and ``video(path, start, stop, person)``
    the driving frames' PosedFrames, used instead of the pose front-end (``bdmm_cli.batch.BatchPoses``: each input estimated once for a whole batch).
    """

    pose_source = None

    def __init__(
        self,
        generator,
        body,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
        pose_estimator=None,
        pose_weights: str | None = None,
        keypoints: str = "auto",
        rasterizer: str = "torch",
    ) -> None:
        self.device = torch.device(device)
        self.dtype = dtype
        self.generator = None if generator is None else generator.to(self.device, dtype).eval()
        self.body = body.to(self.device)
        self._pose_estimator = pose_estimator
        self.pose_weights = pose_weights
        self.keypoints = keypoints
        self.rasterizer = rasterizer  # a backend name of body.window_flows ("torch" or "pytorch3d")
        self._ids: dict[str, str] = {}
        self.load_seconds = 0.0  # loading not yet reported in a run's timings

    @classmethod
    def from_config(cls, settings: LoadSettings, with_generator: bool | None = None) -> "AnimatePipeline":
        """Step 2: load the generator (registry name, folder, safetensors or authors' .pth)
        and the body model; CheckpointError when the weights are not a BDMM generator.

        ``with_generator`` False builds a preview-only pipeline; None: False exactly when
        ``settings`` is an AnimateConfig asking for a preview.
        """
        from bdmm_cli.body import load_body_model
        from bdmm_cli.body.pytorch3d_backend import resolve_rasterizer
        from bdmm_cli.model.checkpoint import load_generator

        if with_generator is None:
            with_generator = not getattr(settings, "preview", False)  # a RunSettings / AnimateConfig asking for a preview
        t0 = time.perf_counter()
        device = resolve_device(settings.device)
        dtype = resolve_dtype(settings.dtype, device)
        generator = load_generator(settings.weights, device=device) if with_generator else None
        body = load_body_model(None if settings.smpl is None else Path(settings.smpl), device=device)
        pipe = cls(generator, body, device=device, dtype=dtype, pose_weights=settings.pose_weights,
                   keypoints=settings.keypoints, rasterizer=resolve_rasterizer(settings.rasterizer, str(device)))
        pipe.load_seconds = time.perf_counter() - t0
        return pipe

    @property
    def pose_estimator(self):
        if self._pose_estimator is None:
            t0 = time.perf_counter()
            self._pose_estimator = make_pose_estimator(self.pose_weights, self.device, self.keypoints)
            self.load_seconds += time.perf_counter() - t0
        return self._pose_estimator

    def identity(self, what: str) -> str:
        if what not in self._ids:
            module = self.generator if what == "generator" else self.body
            self._ids[what] = "none" if module is None else module_identity(module)
        return self._ids[what]

    # the call -----------------------------------------------------------------------
    def __call__(
        self,
        photo: str | Path,
        video: str | Path,
        output: str | Path,
        settings: RunSettings = RunSettings(),
        on_window: Callable[[Window], None] | None = None,
        progress: bool = False,
        checked: CheckedInputs | None = None,
    ) -> AnimateResult:
        """Animate ``photo`` with the motion of ``video`` into ``output`` (steps 1, 3-7).

        ``settings``: the run's :class:`RunSettings` (an AnimateConfig is accepted; its load
        fields were for ``from_config`` and are not looked at here). ``checked``: step 1's
        result when the caller already ran it for these inputs (``animate`` does).
        ``on_window(window)`` is called after each window is finished and stored (a hook for
        progress reporting and tests; an exception raised there aborts the run like Ctrl-C,
        leaving no output file and a resumable run store).
        """
        from bdmm_cli.noise import recording_warnings
        from bdmm_cli.video.read import allowing_truncated

        run = settings.run_settings
        stats = AnimateStats()
        truncated = allowing_truncated() if run.allow_truncated else contextlib.nullcontext()  # else: the caller's
        with recording_warnings(stats.warnings), truncated:
            return self._run(photo, video, output, run, stats, on_window, progress, checked)

    def _run(self, photo, video, output, run: RunSettings, stats: AnimateStats, on_window, progress: bool,
             checked: CheckedInputs | None) -> AnimateResult:
        from bdmm_cli.progress import progress_bar
        from bdmm_cli.video import VideoWriter

        t_start = time.perf_counter()
        photo, video, output = Path(photo), Path(video), Path(output)
        # 1. check inputs
        if checked is None or not checked.matches(photo, video, output, run):
            checked = check_run(photo, video, output, run)
        info = checked.info
        # 2. models (loaded by from_config)
        if not run.preview and self.generator is None:
            raise InputError("this pipeline was built for --preview (no generator loaded)")
        mode = resolve_retarget(run)
        render: Render = Preview(stats) if run.preview else Generate()
        timer = StageTimer(stats, self.device)
        est_before = self._estimator_timings()
        store = RunStore(self._key_doc(photo, video, run, mode)) if run.cache and render.resumable else None
        run_lock = store.lock() if store is not None else None  # a concurrent run on the same inputs waits
        done = store.windows_done() if store is not None else 0  # finished by an interrupted run
        _announce_resume(done, info, run)
        # 3. the source photo's pose
        with timer("pose"):
            source = self.source_pose(photo, run, mode)
        src_tensor = to_tensor(source.image, run.model_size, self.device)
        with timer("generate"):
            render.prepare(self, src_tensor)  # the generator's per-photo step (nothing for a preview)
        # 4. the driving video, posed frame by frame, cut into windows
        gaps = GapReport()
        stats.gaps = gaps
        posed = timer.iterate("pose", self.driving_frames(video, run, stats, gaps, info.fps))
        windows = windowed(posed, WindowSchedule(run.window, run.overlap))
        carries = render.carries_state and run.overlap == 0  # test mode: state from window to window
        retarget: Retargeter | None = None
        width = render.width(run)
        state, held = None, None
        bar = progress_bar(unit="frames", enabled=progress)
        writer = VideoWriter(output, info.fps, (width, run.size), audio_from=video if info.has_audio else None,
                             audio_start=run.start / info.fps, force=run.force)
        with bar, writer, run_lock or contextlib.nullcontext():
            expected = _expected_frames(info, run)
            task = bar.add_task(render.label, total=expected)
            for batch in batched(windows, 1 if carries else run.batch):
                if retarget is None:  # frame 0 of the run fixes the camera rule
                    retarget = Retargeter(source.pose, batch[0].frames[0].pose, self.body, mode)
                    if expected is not None and gaps.first is not None and gaps.first > run.start:
                        bar.update(task, total=expected - (gaps.first - run.start))  # the trimmed lead
                results, todo = store.split(batch, done) if store is not None else ({}, batch)
                stats.windows_cached += len(results)
                if todo:
                    carry = carries and todo[0].window.carry_state
                    if carry and state is None and done:
                        state = self._resume_state(store, done - 1)
                    # 5. retarget + window inputs
                    with timer("flows"):
                        inputs, _ = self.window_inputs(source, src_tensor, todo, retarget)
                    # 6. generate (or draw the preview)
                    with timer("generate"):
                        out, new_state = render(self, todo, source, src_tensor, inputs, state if carry else None,
                                                run, retarget)
                    state = new_state if carries else None
                    for k, item in enumerate(todo):
                        w = item.window
                        results[w.index] = out[k, : w.valid]
                        stats.windows_generated += 1
                        store = _save_window(store, w.index, results[w.index], state)
                # 7. encode
                for item in batch:
                    w = item.window
                    stats.windows += 1
                    with timer("encode"):
                        held = self._emit(writer, item, results[w.index], held, run, render)
                    stats.frames += w.valid - w.hold
                    bar.update(task, advance=w.valid - w.hold)
                    if on_window is not None:
                        on_window(w)
            if stats.frames == 0:
                raise InputError(f"the frame range {run.start}:{run.stop or ''} of {video} has no frames")
            if gaps.first is not None:  # the audio starts with the first frame kept
                writer.audio_start = gaps.first / info.fps
            render.finish()
            closing = time.perf_counter()
        stats.seconds["encode"] += time.perf_counter() - closing  # flush, audio mux, rename
        if store is not None:
            store.prune()
        if run.cache:  # BDMM_CACHE_MAX_GB, least recently used first (this run stays)
            enforce_cache_cap(keep=None if store is None else store.dir)
        self._split_pose_time(stats, est_before)
        stats.seconds["load"] += self.load_seconds
        total = time.perf_counter() - t_start + self.load_seconds
        self.load_seconds = 0.0  # reported once
        stats.keypoints = "" if self._pose_estimator is None else self._pose_estimator.keypoints_description
        return AnimateResult(output=output, num_frames=stats.frames, fps=info.fps, size=(width, run.size),
                             stats=stats, run_key=None if store is None else store.key, retarget=mode,
                             seconds=total, preview=run.preview)

    def _estimator_timings(self) -> dict[str, float]:
        est = self._pose_estimator
        return dict(est.timings) if est is not None else {"decode": 0.0, "pose": 0.0, "fit": 0.0}

    def _split_pose_time(self, stats: AnimateStats, before: dict[str, float]) -> None:
        """The time spent waiting for poses (``seconds["pose"]``) split into the pose
        front-end's decode and fit time; the rest (keypoints, crops, reading poses) stays "pose"."""
        after = self._estimator_timings()
        for key in ("decode", "fit"):
            spent = after.get(key, 0.0) - before.get(key, 0.0)
            stats.seconds[key] += spent
            stats.seconds["pose"] -= spent
        stats.seconds["pose"] = max(stats.seconds["pose"], 0.0)

    # step 3 -------------------------------------------------------------------------
    def source_pose(self, photo: Path, run: RunSettings, mode: str | None = None) -> Source:
        """Step 3: the photo's 256 crop and pose (from ``run.source_pose`` or estimated).

        An estimated pose is checked (``checks.check_photo_pose``): nobody found, or a failed
        body fit when ``mode`` (the resolved retargeting) needs the photo's camera, is an
        InputError naming the photo and what to try; a waist-up photo, a small person or
        several people give one warning each.
        """
        from bdmm_cli.video import read_image

        if run.source_pose is not None:
            sp = Path(run.source_pose)
            if sp.is_dir():
                from bdmm_cli.dataset.pose_dir import read_pose_dir

                first = next(iter(read_pose_dir(sp)), None)
                if first is None or first.pose is None:
                    raise InputError(f"pose folder {sp} holds no posed frame for the photo")
                _check_source_scale(photo, first.pose, resolve_retarget(run) if mode is None else mode)
                return Source(first.image, first.pose)
            from bdmm_cli.dataset.kptsmpl import read_kptsmpl

            pose = read_kptsmpl(sp)
            image = read_image(photo)
            h, w = image.shape[:2]
            if abs(h - w) > max(2, 0.02 * max(h, w)):
                raise InputError(
                    f"with --source-pose the photo must be the square crop its pose refers to; {photo} is {w}x{h}"
                )
            _check_source_scale(photo, pose, resolve_retarget(run) if mode is None else mode)
            return Source(resize(image[None], CROP_SIZE)[0], pose)
        from bdmm_cli.pose.estimate import estimate_image

        estimator = self.pose_estimator
        if self.pose_source is not None:  # poses estimated once for many runs (``bdmm batch``)
            posed, people = self.pose_source.photo(photo), self.pose_source.people(photo)
        else:
            posed = estimate_image(read_image(photo), estimator)
            people = estimator.people_in_last_image()
        check_photo_pose(photo, posed, estimator.keypoints_kind, people, resolve_retarget(run) if mode is None else mode)
        return Source(posed.image, posed.pose)

    # step 4 -------------------------------------------------------------------------
    def driving_frames(self, video: Path, run: RunSettings, stats: AnimateStats, gaps: GapReport | None = None,
                       fps: float | None = None) -> Iterator:
        """Step 4: posed frames of the driving video's range, one person followed
        (``run.person``), the frames without a person trimmed or held at the ends and
        filled or refused inside (``frames.fill_gaps``; ``gaps`` says what was done)."""
        from bdmm_cli.video import iter_frames

        if run.poses is not None:
            frames = pose_dir_stream(Path(run.poses), iter_frames(video, run.start, run.stop), run.start, run.stop)
            detector = ""
        elif self.pose_source is not None:
            frames = self.pose_source.video(video, run.start, run.stop, run.person)
            detector = self.pose_estimator.keypoints_kind
        else:
            estimator = self.pose_estimator.configured(person=run.person)
            frames = estimate_driving(video, estimator, run.start, run.stop, run.cache, stats)
            detector = estimator.keypoints_kind
        return fill_gaps(frames, video, run.skip_missing, run.max_gap, run.ends, gaps, detector, fps)

    # step 5 -------------------------------------------------------------------------
    def window_inputs(self, source: Source, src_tensor: torch.Tensor, windows: list[WindowFrames],
                      retarget: Retargeter | None = None):
        """Step 5: retarget the windows' poses, then their flows and heatmaps (``window.window_inputs``;
        the model size is the source tensor's, (1, 3, S, S)).

        Returns (``model.WindowInputs`` of the n windows, float32; the retargeted
        FramePoses, n lists of T + 2).
        """
        flat = [p for item in windows for p in item.poses()]
        if retarget is not None:
            flat = retarget(flat)
        t2 = len(windows[0].frames) + 2
        poses = [flat[k * t2:(k + 1) * t2] for k in range(len(windows))]
        src_smpl = torch.from_numpy(source.pose.smpl[None].astype(np.float32)).to(self.device)
        inputs = build_window_inputs(self.body, src_tensor, src_smpl,
                                     WindowPoses.from_frame_poses(poses, self.device), rasterizer=self.rasterizer)
        return inputs, poses

    # step 6 -------------------------------------------------------------------------
    def prepare(self, src_tensor: torch.Tensor) -> Callable[[int], Any]:
        """The generator's per-photo step (``BDMMGenerator.prepare``) of the (1, 3, S, S) photo:
        returns n -> its constants for a batch of n windows, each n computed once (on the photo
        repeated n times: on the CPU a convolution's last bits depend on the batch size, so a
        batch of windows gets the constants it always had; ``tests/test_generator_prepare.py``)."""
        done: dict[int, Any] = {}

        def for_batch(n: int):
            if n not in done:
                with torch.inference_mode():
                    done[n] = self.generator.prepare(src_tensor.to(self.dtype).expand(n, -1, -1, -1))
            return done[n]

        return for_batch

    def generate(self, inputs, state, prepared=None):
        """Step 6: one generator call on ``n`` windows -> ((n, T, S, S, 3) uint8, state);
        ``prepared``: :meth:`prepare` of the photo (None: computed in this call)."""
        from bdmm_cli.model import WindowInputs

        dt = self.dtype
        inputs = WindowInputs(**{f.name: getattr(inputs, f.name).to(dt) for f in fields(inputs)})
        with torch.inference_mode():
            out = self.generator(inputs, state, None if prepared is None else prepared(inputs.batch_size))
        frames = out.frames
        n = frames.shape[0]
        return to_uint8(frames.reshape(-1, *frames.shape[2:])).reshape(n, frames.shape[1], *frames.shape[3:], 3), out.state

    def coverage(self, poses: list, size: int) -> torch.Tensor:
        """(N, S, S) bool: the pixels the bodies of ``poses`` (FramePoses) cover."""
        from bdmm_cli.body import project_ndc, rasterize

        smpl = torch.from_numpy(np.stack([p.smpl for p in poses]).astype(np.float32)).to(self.device)
        with torch.no_grad():
            verts = self.body(smpl[:, 75:85].contiguous(), smpl[:, 3:75].contiguous()).float()
            frags = rasterize(project_ndc(verts, smpl[:, :3]), self.body.faces, size)
        return frags.pix_to_face >= 0

    def preview(self, source: Source, src_tensor, inputs, windows: list[WindowFrames], size: int,
                retargeted: bool, outlines: "_Outlines | None" = None) -> np.ndarray:
        """``preview`` instead of step 6: (n*T, S, 2S, 3) uint8 = driving crop + the driver's
        mesh | the source photo warped onto the retargeted body, outlined, over the faded photo."""
        from bdmm_cli.body import warp

        flows = inputs.flows
        m = flows.shape[0] * flows.shape[1]
        f = flows.reshape(m, *flows.shape[2:])
        covered = f[..., 0] > -1.5  # the retargeted (target) body
        crops = resize(np.stack([fr.image for item in windows for fr in item.frames]), size)
        driver = self.coverage([fr.pose for item in windows for fr in item.frames], size) if retargeted else covered
        warped = to_uint8(warp(src_tensor.expand(m, -1, -1, -1), f))
        photo = resize(np.array(source.image)[None], size)[0]
        if outlines is not None:
            outlines.add([fr.index for item in windows for fr in item.frames],
                         covered.flatten(1).any(1).cpu().numpy(), driver.flatten(1).any(1).cpu().numpy())
        return side_by_side(mesh_overlay(crops, driver), body_over_photo(photo, warped, covered))


    # step 7 -------------------------------------------------------------------------
    def _emit(self, writer, item: WindowFrames, res: np.ndarray, held, run: RunSettings, render: "Render"):
        """Step 7: blend the overlap, drop padding, compose (``render.compose``) and write;
        returns the new held tail."""
        w = item.window
        a, b = w.emit
        out = res[a:b].copy()
        if w.blend and held is not None:
            out[: w.blend] = blend_overlap(held, res[: w.blend])
        new_held = res[w.valid - w.hold : w.valid].copy() if w.hold else None
        for frame in render.compose(item, out, run):
            writer.write(np.ascontiguousarray(frame))
        return new_held

    def _key_doc(self, photo: Path, video: Path, run: RunSettings, retarget: str | None = None) -> dict:
        """What identifies a run's generated frames (see pipeline.cache)."""
        from bdmm_cli.pose.detector import resolve_keypoints

        return {
            "version": 2,
            "photo": hash_path(photo),
            "source_pose": None if run.source_pose is None else hash_path(Path(run.source_pose)),
            "video": hash_path(video),
            "poses": None if run.poses is None else hash_path(Path(run.poses)),
            "pose_weights": self.pose_weights,
            "rasterizer": self.rasterizer,
            "keypoints": resolve_keypoints(self.keypoints),
            "range": [run.start, run.stop],
            "window": run.window,
            "overlap": run.overlap,
            "model_size": run.model_size,
            "skip_missing": run.skip_missing,
            "max_gap": run.max_gap,
            "ends": run.ends,
            "person": run.person,
            "retarget": resolve_retarget(run) if retarget is None else retarget,
            "generator": self.identity("generator"),
            "body": self.identity("body"),
            "device": self.device.type,
            "dtype": str(self.dtype),
        }

    def _resume_state(self, store: RunStore, index: int):
        from bdmm_cli.model import WindowState

        tensors = store.resume_state(index)
        return WindowState(**{k: v.to(self.device, self.dtype) for k, v in tensors.items()})


class Render:
    """Step 6 of a run, and how its windows are composed in step 7: :class:`Generate` (the
    generator's frames) or :class:`Preview` (the alignment check, no generator).

    Attributes:
        label: the progress bar's text.
        resumable: finished windows go to the run store (an interrupted run resumes).
        carries_state: windows carry the generator's state to the next (test mode; with
            ``--overlap`` every window is independent).
    """

    label = "animating"
    resumable = True
    carries_state = True

    def width(self, run: RunSettings) -> int:
        """Width of the output frames."""
        return run.size * (2 if run.side_by_side else 1)

    def prepare(self, pipe: AnimatePipeline, src_tensor: torch.Tensor) -> None:
        """Once per photo, before the windows (the source photo (1, 3, S, S))."""

    def __call__(self, pipe: AnimatePipeline, todo: list[WindowFrames], source: Source, src_tensor: torch.Tensor,
                 inputs, state, run: RunSettings, retarget: Retargeter | None):
        """``n`` windows with their ``WindowInputs`` -> (frames (n, T, S, W, 3) uint8, state after)."""
        raise NotImplementedError

    def compose(self, item: WindowFrames, frames: np.ndarray, run: RunSettings) -> np.ndarray:
        """Frames ``item.window.emit`` of a window (k, S, W, 3) -> the output frames (k, size, width, 3)."""
        out = resize(frames, run.size)
        if run.side_by_side:
            a, b = item.window.emit
            out = side_by_side(resize(np.stack([item.frames[p].image for p in range(a, b)]), run.size), out)
        return out

    def finish(self) -> None:
        """After the last window (warnings about the whole run)."""


class Generate(Render):
    """The generator's frames (``AnimatePipeline.generate``), with the photo's constants
    prepared once per run (``AnimatePipeline.prepare``)."""

    prepared = None

    def prepare(self, pipe, src_tensor):
        self.prepared = pipe.prepare(src_tensor)

    def __call__(self, pipe, todo, source, src_tensor, inputs, state, run, retarget):
        return pipe.generate(inputs, state, self.prepared)


class Preview(Render):
    """``--preview``: driving crop + the driver's mesh | the photo warped onto the retargeted
    body (``AnimatePipeline.preview``), each half at the output size; no store, no state;
    one warning at the end for frames where a body lies outside the picture. When the
    driving video has several people (``stats.follow``), the left half says which one is
    followed ("person 2 of 3"; ``--person N`` picks another)."""

    label = "previewing"
    resumable = False
    carries_state = False

    def __init__(self, stats: AnimateStats | None = None) -> None:
        self.outlines = _Outlines()
        self.stats = stats

    def width(self, run: RunSettings) -> int:
        return 2 * run.size

    def __call__(self, pipe, todo, source, src_tensor, inputs, state, run, retarget):
        out = pipe.preview(source, src_tensor, inputs, todo, run.model_size,
                           retargeted=retarget is not None and retarget.mode != "none", outlines=self.outlines)
        return out.reshape(len(todo), -1, *out.shape[1:]), None

    def compose(self, item, frames, run):
        half = frames.shape[2] // 2
        left = resize(frames[:, :, :half], run.size)
        follow = None if self.stats is None else self.stats.follow
        if follow is not None and follow.people_seen > 1 and follow.followed is not None:
            left = label_frames(left, f"person {follow.followed} of {follow.people_at_pick}")
        return np.concatenate([left, resize(frames[:, :, half:], run.size)], axis=2)

    def finish(self) -> None:
        self.outlines.warn()


class _Outlines:
    """Which preview frames could draw the bodies (the retargeted body on the photo, the
    driver's mesh on the crop); one warning at the end for the frames where one is missing."""

    def __init__(self) -> None:
        self.missing_target: list[int] = []
        self.missing_driver: list[int] = []

    def add(self, indices: list[int], target: np.ndarray, driver: np.ndarray) -> None:
        self.missing_target += [i for i, ok in zip(indices, target) if not ok]
        self.missing_driver += [i for i, ok in zip(indices, driver) if not ok]

    def warn(self) -> None:
        import warnings

        from bdmm_cli.errors import BdmmWarning

        for what, frames in (("the retargeted body (right)", self.missing_target),
                             ("the driver's mesh (left)", self.missing_driver)):
            if frames:
                warnings.warn(BdmmWarning(
                    f"--preview: {what} lies outside the picture in {len(frames)} frame(s) "
                    f"({_frames_text(frames)}), so no outline is drawn there: the body fit of those frames "
                    "(or of the photo) is off; try --retarget none, or check the photo"), stacklevel=2)


def _frames_text(frames: list[int]) -> str:
    shown = ", ".join(str(f) for f in frames[:8])
    return f"frames {shown}{', ...' if len(frames) > 8 else ''}"


def check_photo_pose(photo: Path, posed, detector: str, people: int | None, mode: str) -> None:
    """The source photo's pose, checked (see ``AnimatePipeline.source_pose``)."""
    import warnings

    from bdmm_cli.errors import BdmmWarning
    from bdmm_cli.pose.detector import detector_hint

    if posed.pose is None:
        raise InputError(f"no person found in the photo {photo}: {detector_hint(detector)}")
    _check_source_scale(photo, posed.pose, mode)
    for message in photo_warnings(posed, people):
        warnings.warn(BdmmWarning(f"{message} ({photo})"), stacklevel=3)


def _check_source_scale(photo: Path, pose, mode: str) -> None:
    """A failed body fit of the photo (camera scale not positive) is an InputError where the
    retargeting needs the photo's camera (every mode but ``none``)."""
    scale = float(pose.cam[0])
    if not scale > 0 and mode != "none":
        raise InputError(f"the body fit of the photo {photo} failed (camera scale {scale:.3g}): use another photo "
                         "of the person, or --retarget none to draw the dancer's body and framing instead")


#: BODY_25 rows of the ankles, big toes, small toes and heels.
FEET = (11, 14, 19, 20, 21, 22, 23, 24)
#: A person shorter than this (pixels of the photo) is too small for the model's 256 crop.
MIN_PERSON_PX = 100


def photo_warnings(posed, people: int | None) -> list[str]:
    """What the model would not expect in a source photo: no feet in view (a waist-up
    photo), a person under ``MIN_PERSON_PX`` px tall, several people."""
    out = []
    kp = np.asarray(posed.pose.keypoints)
    if not (kp[list(FEET), 2] > 0).any():
        out.append("the photo shows no feet (waist-up?): the model was trained on full-body photos, "
                   "so the legs it draws are guessed")
    box = posed.source_box
    if box is not None and box[3] - box[1] < MIN_PERSON_PX:
        out.append(f"the person in the photo is only {box[3] - box[1]:.0f} px tall: the model expects at "
                   f"least ~{MIN_PERSON_PX} px; use a larger or closer photo")
    if people is not None and people > 1:
        out.append(f"the photo shows {people} people: the largest is animated (crop the photo to choose another)")
    return out


def _save_window(store: RunStore | None, index: int, frames: np.ndarray, state) -> RunStore | None:
    """Store a finished window and the state after it; returns the store, or None when the
    cache disk is full or read-only (the run goes on without resume data)."""
    if store is None:
        return None
    tensors = None if state is None else {f.name: getattr(state, f.name) for f in fields(state)}
    try:
        store.save_window(index, frames, tensors)
    except OSError as exc:
        warn_unwritable(store.root, exc)
        return None
    return store


def _announce_resume(done: int, info, run: RunSettings) -> None:
    """One BdmmWarning "resuming from window N of M" when an interrupted run's windows are
    reused (nothing when all of them are: that run finished, only the encoding is redone)."""
    frames = _expected_frames(info, run)
    total = WindowSchedule(run.window, run.overlap).num_windows(frames) if frames else None
    if done and (total is None or done < total):
        import warnings

        from bdmm_cli.errors import BdmmWarning

        of = f" of {total}" if total else ""
        warnings.warn(BdmmWarning(f"resuming from window {done + 1}{of}: the first {done} window(s) of an "
                                  "interrupted run on the same inputs are reused (--no-cache starts afresh)"),
                      stacklevel=3)


def _expected_frames(info, config: RunSettings) -> int | None:
    total = info.num_frames or None
    if config.stop is not None:
        total = config.stop if total is None else min(total, config.stop)
    if total is None:
        return None
    return max(total - config.start, 0)


def animate(
    photo: str | Path,
    video: str | Path,
    output: str | Path,
    config: AnimateConfig = AnimateConfig(),
    on_window: Callable[[Window], None] | None = None,
    progress: bool = False,
) -> AnimateResult:
    """The main job in one call: check inputs (1), load models (2), then run (3-7)."""
    checked = check_run(photo, video, output, config)  # 1. once, before anything heavy
    check_load(config)
    pipe = AnimatePipeline.from_config(config.load_settings, with_generator=not config.preview)  # 2.
    return pipe(photo, video, output, checked.run, on_window=on_window, progress=progress, checked=checked)


__all__ = [
    "AnimatePipeline",
    "AnimateResult",
    "Generate",
    "Preview",
    "Render",
    "CheckedInputs",
    "Source",
    "animate",
    "check_photo_pose",
    "check_run",
    "module_identity",
    "photo_warnings",
]
