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
   ``hub.load_generator``, body model; the pose front-end on first use).
3. **pose of the source photo** (or the pose file given for it).
4. **stream the driving video** through the pose front-end or a pose folder
   (``pipeline.frames``), one frame at a time, cut into windows (``pipeline.stream``);
   frames without a person stop the run with a one-line error naming them, or are
   interpolated (``skip_missing``).
5. **retarget and build the window inputs** (``bdmm_cli.window``): the driving poses are
   mapped onto the source's body and framing (``window.retarget``; ``none`` keeps them),
   then the body model poses the T frames plus the frames before and after the window,
   ``body.window_flows`` renders all T + 2 flows in one batched call,
   ``body.keypoint_heatmaps`` draws the BODY_25 heatmaps (``window.window_inputs``).
6. **generate** the window (forward state carried across windows in test mode), or draw
   the preview (driver's fit | retarget on the source photo).
7. **encode**: blended / padded frames are dropped or mixed, the result (optionally beside
   the driving crop) goes to an H.264 MP4 at the driving video's frame rate, with its audio,
   written to a temporary file and renamed only on success.

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
from typing import Callable, Iterator

import numpy as np
import torch

from bdmm_cli.device import resolve_device
from bdmm_cli.errors import InputError
from bdmm_cli.fileio import module_hash
from bdmm_cli.pipeline.cache import RunStore, hash_path, warn_unwritable
from bdmm_cli.pipeline.checks import check_inputs, check_load, resolve_dtype
from bdmm_cli.pipeline.config import CROP_SIZE, AnimateConfig, LoadSettings, RunSettings, resolve_retarget
from bdmm_cli.pipeline.frames import estimate_driving, fill_gaps, make_pose_estimator, pose_dir_stream
from bdmm_cli.pipeline.render import body_over_photo, mesh_overlay, resize, side_by_side, to_tensor, to_uint8
from bdmm_cli.pipeline.stream import AnimateStats, StageTimer, batched, windowed
from bdmm_cli.window import HEATMAP_SIGMA, Retargeter, Window, WindowFrames, WindowPoses, WindowSchedule, blend_overlap
from bdmm_cli.window import window_inputs as build_window_inputs


@dataclass(frozen=True)
class AnimateResult:
    """What a run produced: output file, frame count, frame rate, frame size, counters,
    run-store key and the retargeting mode used (``auto`` resolved)."""

    output: Path
    num_frames: int
    fps: float
    size: tuple[int, int]
    stats: AnimateStats
    run_key: str | None
    retarget: str = "none"


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
    and ``video(path, start, stop)`` the driving frames' PosedFrames, used instead of the pose
    front-end (``bdmm_cli.batch.BatchPoses``: each input estimated once for a whole batch).
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
            with_generator = not (isinstance(settings, RunSettings) and settings.preview)
        device = resolve_device(settings.device)
        dtype = resolve_dtype(settings.dtype, device)
        generator = load_generator(settings.weights, device=device) if with_generator else None
        body = load_body_model(None if settings.smpl is None else Path(settings.smpl), device=device)
        return cls(generator, body, device=device, dtype=dtype, pose_weights=settings.pose_weights,
                   keypoints=settings.keypoints, rasterizer=resolve_rasterizer(settings.rasterizer, str(device)))

    @property
    def pose_estimator(self):
        if self._pose_estimator is None:
            self._pose_estimator = make_pose_estimator(self.pose_weights, self.device, self.keypoints)
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
        from bdmm_cli.progress import progress_bar
        from bdmm_cli.video import VideoWriter

        run = settings.run_settings
        photo, video, output = Path(photo), Path(video), Path(output)
        # 1. check inputs
        if checked is None or not checked.matches(photo, video, output, run):
            checked = check_run(photo, video, output, run)
        info = checked.info
        # 2. models (loaded by from_config)
        if not run.preview and self.generator is None:
            raise InputError("this pipeline was built for --preview (no generator loaded)")
        mode = resolve_retarget(run)
        stats = AnimateStats()
        timer = StageTimer(stats, self.device)
        store = RunStore(self._key_doc(photo, video, run, mode)) if run.cache and not run.preview else None
        run_lock = store.lock() if store is not None else None  # a concurrent run on the same inputs waits
        done = store.windows_done() if store is not None else 0  # finished by an interrupted run
        # 3. the source photo's pose
        source = self.source_pose(photo, run)
        src_tensor = to_tensor(source.image, run.model_size, self.device)
        # 4. the driving video, posed frame by frame, cut into windows
        posed = timer.iterate("decode+pose", self.driving_frames(video, run, stats))
        schedule = WindowSchedule(run.window, run.overlap)
        independent = run.preview or run.overlap > 0  # batched windows, no carried state
        retarget: Retargeter | None = None
        width = run.size * (2 if (run.side_by_side or run.preview) else 1)
        state, held = None, None
        bar = progress_bar(unit="frames", enabled=progress)
        writer = VideoWriter(output, info.fps, (width, run.size), audio_from=video if info.has_audio else None,
                             audio_start=run.start / info.fps, force=run.force)
        with bar, writer, run_lock or contextlib.nullcontext():
            task = bar.add_task("animating", total=_expected_frames(info, run))
            for batch in batched(windowed(posed, schedule), run.batch if independent else 1):
                if retarget is None:  # frame 0 of the run fixes the camera rule
                    retarget = Retargeter(source.pose, batch[0].frames[0].pose, self.body, mode)
                results: dict[int, np.ndarray] = {}
                for item in batch:
                    if item.window.index < done:
                        results[item.window.index] = store.resume_frames(item.window.index)
                        stats.windows_cached += 1
                todo = [item for item in batch if item.window.index >= done]
                if todo:
                    carry = not independent and todo[0].window.carry_state
                    if carry and state is None and done:
                        state = self._resume_state(store, done - 1)
                    # 5. retarget + window inputs, 6. generate (or preview)
                    out, new_state = self.compute(todo, source, src_tensor, state if carry else None, run,
                                                  retarget, timer)
                    state = None if independent else new_state
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
                        held = self._emit(writer, item, results[w.index], held, run)
                    stats.frames += w.valid - w.hold
                    bar.update(task, advance=w.valid - w.hold)
                    if on_window is not None:
                        on_window(w)
            if stats.frames == 0:
                raise InputError(f"the frame range {run.start}:{run.stop or ''} of {video} has no frames")
            closing = time.perf_counter()
        stats.seconds["encode"] += time.perf_counter() - closing  # flush, audio mux, rename
        if store is not None:
            store.prune()
        stats.keypoints = "" if self._pose_estimator is None else self._pose_estimator.keypoints_description
        return AnimateResult(output=output, num_frames=stats.frames, fps=info.fps, size=(width, run.size),
                             stats=stats, run_key=None if store is None else store.key, retarget=mode)

    # step 3 -------------------------------------------------------------------------
    def source_pose(self, photo: Path, run: RunSettings) -> Source:
        """Step 3: the photo's 256 crop and pose (from ``run.source_pose`` or estimated)."""
        from bdmm_cli.video import read_image

        if run.source_pose is not None:
            sp = Path(run.source_pose)
            if sp.is_dir():
                from bdmm_cli.dataset.pose_dir import read_pose_dir

                first = next(iter(read_pose_dir(sp)), None)
                if first is None or first.pose is None:
                    raise InputError(f"pose folder {sp} holds no posed frame for the photo")
                return Source(first.image, first.pose)
            from bdmm_cli.dataset.kptsmpl import read_kptsmpl

            pose = read_kptsmpl(sp)
            image = read_image(photo)
            h, w = image.shape[:2]
            if abs(h - w) > max(2, 0.02 * max(h, w)):
                raise InputError(
                    f"with --source-pose the photo must be the square crop its pose refers to; {photo} is {w}x{h}"
                )
            return Source(resize(image[None], CROP_SIZE)[0], pose)
        from bdmm_cli.pose.estimate import estimate_image

        if self.pose_source is not None:  # poses estimated once for many runs (``bdmm batch``)
            posed = self.pose_source.photo(photo)
        else:
            posed = estimate_image(read_image(photo), self.pose_estimator)
        if posed.pose is None:
            raise InputError(f"no person found in the photo {photo}")
        return Source(posed.image, posed.pose)

    # step 4 -------------------------------------------------------------------------
    def driving_frames(self, video: Path, run: RunSettings, stats: AnimateStats) -> Iterator:
        """Step 4: posed frames of the driving video's range, gaps filled or refused."""
        from bdmm_cli.video import iter_frames

        if run.poses is not None:
            frames = pose_dir_stream(Path(run.poses), iter_frames(video, run.start, run.stop), run.start, run.stop)
        elif self.pose_source is not None:
            frames = self.pose_source.video(video, run.start, run.stop)
        else:
            frames = estimate_driving(video, self.pose_estimator, run.start, run.stop, run.cache, stats)
        return fill_gaps(frames, video, run.skip_missing, run.max_gap)

    # step 5 -------------------------------------------------------------------------
    def window_inputs(self, source: Source, src_tensor: torch.Tensor, windows: list[WindowFrames], size: int,
                      retarget: Retargeter | None = None):
        """Step 5: retarget the windows' poses, then their flows and heatmaps (``window.window_inputs``).

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
                                     WindowPoses.from_frame_poses(poses, size, self.device),
                                     sigma=HEATMAP_SIGMA * size / CROP_SIZE, rasterizer=self.rasterizer)
        return inputs, poses

    # step 6 -------------------------------------------------------------------------
    def generate(self, inputs, state):
        """Step 6: one generator call on ``n`` windows -> ((n, T, S, S, 3) uint8, state)."""
        from bdmm_cli.model import WindowInputs

        dt = self.dtype
        inputs = WindowInputs(**{f.name: getattr(inputs, f.name).to(dt) for f in fields(inputs)})
        with torch.inference_mode():
            out = self.generator(inputs, state)
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
                retargeted: bool) -> np.ndarray:
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
        return side_by_side(mesh_overlay(crops, driver), body_over_photo(photo, warped, covered))

    def compute(self, todo: list[WindowFrames], source: Source, src_tensor: torch.Tensor, state, run: RunSettings,
                retarget: Retargeter | None, timer: StageTimer):
        """Steps 5 and 6 for a batch of ``n`` windows -> (outputs (n, T, S, W, 3) uint8, state after).

        ``state`` is the carried WindowState or None.
        """
        with timer("flow"):
            inputs, _ = self.window_inputs(source, src_tensor, todo, run.model_size, retarget)
        with timer("generator"):
            if run.preview:
                out = self.preview(source, src_tensor, inputs, todo, run.model_size,
                                   retargeted=retarget is not None and retarget.mode != "none")
                return out.reshape(len(todo), -1, *out.shape[1:]), None
            return self.generate(inputs, state)

    # step 7 -------------------------------------------------------------------------
    def _emit(self, writer, item: WindowFrames, res: np.ndarray, held, run: RunSettings):
        """Step 7: blend the overlap, drop padding, compose and write; returns the new held tail."""
        w = item.window
        a, b = w.emit
        out = res[a:b].copy()
        if w.blend and held is not None:
            out[: w.blend] = blend_overlap(held, res[: w.blend])
        new_held = res[w.valid - w.hold : w.valid].copy() if w.hold else None
        if run.preview:
            side = run.size
            out = np.stack([np.concatenate([resize(o[None, :, : o.shape[1] // 2], side)[0],
                                            resize(o[None, :, o.shape[1] // 2 :], side)[0]], axis=1) for o in out])
        else:
            out = resize(out, run.size)
            if run.side_by_side:
                crops = resize(np.stack([item.frames[p].image for p in range(a, b)]), run.size)
                out = side_by_side(crops, out)
        for frame in out:
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
    "CheckedInputs",
    "Source",
    "animate",
    "check_run",
    "module_identity",
]
