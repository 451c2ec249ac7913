"""`AnimatePipeline`: photo + driving video -> MP4, streamed window by window.

    from bdmm_cli.pipeline import AnimateConfig, animate
    result = animate("person.jpg", "dance.mp4", "out.mp4", AnimateConfig())

One call, numbered steps (diffusers style):

1. **check inputs** (``pipeline.checks``): every file, option and the output path, before
   anything heavy runs.
2. **load models**: generator weights (``hub.load_generator``), body model, and the pose
   front-end when a pose has to be estimated.
3. **pose of the source photo** (or the pose file given for it).
4. **stream the driving video** through the pose front-end or a pose folder
   (``pipeline.frames``), one frame at a time, cut into windows (``pipeline.stream``);
   frames without a person stop the run with a one-line error naming them, or are
   interpolated (``skip_missing``).
5. **mesh flows and heatmaps per window**: the body model poses the T frames plus the
   frames before and after the window, ``body.window_flows`` renders all T + 2 flows in one
   batched call, ``body.keypoint_heatmaps`` draws the BODY_25 heatmaps.
6. **generate** the window (forward state carried across windows in test mode), or warp the
   source for ``preview``.
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
from bdmm_cli.pipeline.checks import check_inputs, resolve_dtype
from bdmm_cli.pipeline.config import CROP_SIZE, AnimateConfig
from bdmm_cli.pipeline.frames import estimate_driving, fill_gaps, make_pose_estimator, pose_dir_stream
from bdmm_cli.pipeline.render import mesh_overlay, resize, side_by_side, to_tensor, to_uint8
from bdmm_cli.pipeline.stream import AnimateStats, StageTimer, batched, windowed
from bdmm_cli.pipeline.windows import Window, WindowSchedule, blend_overlap


@dataclass(frozen=True)
class AnimateResult:
    """What a run produced: output file, frame count, frame rate, frame size, counters."""

    output: Path
    num_frames: int
    fps: float
    size: tuple[int, int]
    stats: AnimateStats
    run_key: str | None


@dataclass(frozen=True)
class Source:
    """The source person: crop (S0, S0, 3) uint8 RGB and its FramePose (256-crop pixels)."""

    image: np.ndarray
    pose: object


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
    """

    def __init__(
        self,
        generator,
        body,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
        pose_estimator=None,
        pose_weights: str | None = None,
    ) -> None:
        self.device = torch.device(device)
        self.dtype = dtype
        self.generator = None if generator is None else generator.to(self.device, dtype).eval()
        self.body = body.to(self.device)
        self._pose_estimator = pose_estimator
        self.pose_weights = pose_weights
        self._ids: dict[str, str] = {}

    # step 2 -------------------------------------------------------------------------
    @classmethod
    def from_config(cls, config: AnimateConfig) -> "AnimatePipeline":
        """Step 2: load the generator (registry name, folder, safetensors or authors' .pth)
        and the body model; CheckpointError when the weights are not a BDMM generator."""
        from bdmm_cli.body import load_body_model
        from bdmm_cli.hub import load_generator

        device = resolve_device(config.device)
        dtype = resolve_dtype(config.dtype, device)
        generator = None if config.preview else load_generator(config.weights, device=device)
        body = load_body_model(None if config.smpl is None else Path(config.smpl), device=device)
        return cls(generator, body, device=device, dtype=dtype, pose_weights=config.pose_weights)

    @property
    def pose_estimator(self):
        if self._pose_estimator is None:
            self._pose_estimator = make_pose_estimator(self.pose_weights, self.device)
        return self._pose_estimator

    def identity(self, what: str) -> str:
        if what not in self._ids:
            module = self.generator if what == "generator" else self.body
            self._ids[what] = "none" if module is None else module_identity(module)
        return self._ids[what]

    # step 3 -------------------------------------------------------------------------
    def source_pose(self, photo: Path, config: AnimateConfig) -> Source:
        """Step 3: the photo's 256 crop and pose (from ``config.source_pose`` or estimated)."""
        from bdmm_cli.video import read_image

        if config.source_pose is not None:
            sp = Path(config.source_pose)
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

        posed = estimate_image(read_image(photo), self.pose_estimator)
        if posed.pose is None:
            raise InputError(f"no person found in the photo {photo}")
        return Source(posed.image, posed.pose)

    # step 4 -------------------------------------------------------------------------
    def driving_frames(self, video: Path, config: AnimateConfig, stats: AnimateStats) -> Iterator:
        """Step 4: posed frames of the driving video's range, gaps filled or refused."""
        from bdmm_cli.video import iter_frames

        if config.poses is not None:
            frames = pose_dir_stream(Path(config.poses), iter_frames(video, config.start, config.stop),
                                     config.start, config.stop)
        else:
            frames = estimate_driving(video, self.pose_estimator, config.start, config.stop, config.cache, stats)
        return fill_gaps(frames, video, config.skip_missing, config.max_gap)

    # step 5 -------------------------------------------------------------------------
    def window_inputs(self, source: Source, src_tensor: torch.Tensor, batch: list, size: int):
        """Step 5: flows (one batched ``window_flows`` call) and heatmaps of a batch of windows.

        Returns (flows (n, T, S, S, 2), flow_pre (n, S, S, 2), flow_post (n, S, S, 2),
        heatmaps (n, T, 25, S, S)).
        """
        from bdmm_cli.body import keypoint_heatmaps, window_flows

        dev = self.device
        n = len(batch)
        t = len(batch[0][1])
        poses = []
        for _, frames, pre, post in batch:
            poses += [f.pose for f in frames] + [pre.pose, post.pose]
        poses.append(source.pose)
        betas = torch.from_numpy(np.stack([p.shape_beta for p in poses])).to(dev)
        theta = torch.from_numpy(np.stack([p.pose_theta for p in poses])).to(dev)
        cams = torch.from_numpy(np.stack([p.cam for p in poses])).to(dev, torch.float32)
        verts = self.body(betas, theta).float()  # (n*(T+2)+1, V, 3)
        v_src, c_src = verts[-1:], cams[-1:]
        verts = verts[:-1].view(n, t + 2, *verts.shape[1:])
        cams = cams[:-1].view(n, t + 2, 3)
        flows, flow_pre, flow_post = window_flows(
            v_src.expand(n, -1, -1), c_src.expand(n, -1),
            verts[:, :t], cams[:, :t],
            verts[:, t], cams[:, t], verts[:, t + 1], cams[:, t + 1],
            self.body.faces, size,
        )
        kp = np.stack([f.pose.keypoints for _, frames, _, _ in batch for f in frames]).astype(np.float32)
        scale = size / CROP_SIZE
        kp_t = torch.from_numpy(kp).to(dev)
        kp_t = torch.cat([kp_t[..., :2] * scale, kp_t[..., 2:]], dim=-1)
        heat = keypoint_heatmaps(kp_t, image_size=size, sigma=6.0 * scale)
        heat = heat.view(n, t, *heat.shape[1:])
        return flows, flow_pre, flow_post, heat

    # step 6 -------------------------------------------------------------------------
    def generate(self, src_tensor, flows, flow_pre, flow_post, heat, state):
        """Step 6: one generator call on ``n`` windows -> ((n, T, S, S, 3) uint8, state)."""
        from bdmm_cli.model import WindowInputs

        n = flows.shape[0]
        dt = self.dtype
        inputs = WindowInputs(
            source=src_tensor.expand(n, -1, -1, -1).to(dt),
            heatmaps=heat.to(dt),
            flows=flows.to(dt),
            flow_pre=flow_pre.to(dt),
            flow_post=flow_post.to(dt),
        )
        with torch.inference_mode():
            out = self.generator(inputs, state)
        frames = out.frames
        return to_uint8(frames.reshape(-1, *frames.shape[2:])).reshape(n, frames.shape[1], *frames.shape[3:], 3), out.state

    def preview(self, src_tensor, flows, crops: np.ndarray) -> np.ndarray:
        """``preview`` instead of step 6: (n*T, S, 2S, 3) uint8 = mesh overlay | warped source."""
        from bdmm_cli.body import warp

        m = flows.shape[0] * flows.shape[1]
        f = flows.reshape(m, *flows.shape[2:])
        warped = to_uint8(warp(src_tensor.expand(m, -1, -1, -1), f))
        return side_by_side(mesh_overlay(crops, f.float().cpu()), warped)

    def compute(self, todo: list, source: Source, src_tensor: torch.Tensor, state, config: AnimateConfig,
                timer: StageTimer):
        """Steps 5 and 6 for a batch of ``n`` windows -> (outputs (n, T, S, W, 3) uint8, state after).

        ``todo`` holds ``windowed`` items; ``state`` is the carried WindowState or None.
        """
        with timer("flow"):
            flows, flow_pre, flow_post, heat = self.window_inputs(source, src_tensor, todo, config.model_size)
        with timer("generator"):
            if config.preview:
                crops = resize(np.stack([f.image for _, frames, _, _ in todo for f in frames]), config.model_size)
                out = self.preview(src_tensor, flows, crops)
                return out.reshape(len(todo), -1, *out.shape[1:]), None
            return self.generate(src_tensor, flows, flow_pre, flow_post, heat, state)

    # the call -----------------------------------------------------------------------
    def __call__(
        self,
        photo: str | Path,
        video: str | Path,
        output: str | Path,
        config: AnimateConfig = AnimateConfig(),
        on_window: Callable[[Window], None] | None = None,
        progress: bool = False,
    ) -> AnimateResult:
        """Animate ``photo`` with the motion of ``video`` into ``output`` (steps 1, 3-7).

        ``on_window(window)`` is called after each window is finished and stored (a hook for
        progress reporting and tests; an exception raised there aborts the run like Ctrl-C,
        leaving no output file and a resumable run store).
        """
        from bdmm_cli.progress import progress_bar
        from bdmm_cli.video import VideoWriter

        photo, video, output = Path(photo), Path(video), Path(output)
        info = check_inputs(photo, video, output, config)  # step 1
        if config.preview is False and self.generator is None:
            raise InputError("this pipeline was built for --preview (no generator loaded)")
        stats = AnimateStats()
        timer = StageTimer(stats, self.device)
        schedule = WindowSchedule(config.window, config.overlap)
        # windows are independent (batched, no carried state) in overlap mode and for previews
        independent = config.preview or config.overlap > 0

        store = RunStore(self._key_doc(photo, video, config)) if config.cache and not config.preview else None
        run_lock = store.lock() if store is not None else None  # a concurrent run on the same inputs waits
        done = store.windows_done() if store is not None else 0  # finished by an interrupted run

        source = self.source_pose(photo, config)  # step 3
        src_tensor = to_tensor(source.image, config.model_size, self.device)
        posed = timer.iterate("decode+pose", self.driving_frames(video, config, stats))  # step 4

        width = config.size * (2 if (config.side_by_side or config.preview) else 1)
        state = None
        held: np.ndarray | None = None
        bar = progress_bar(unit="frames", enabled=progress)
        writer = VideoWriter(output, info.fps, (width, config.size), audio_from=video if info.has_audio else None,
                             audio_start=config.start / info.fps, force=config.force)
        with bar, writer, run_lock or contextlib.nullcontext():
            task = bar.add_task("animating", total=_expected_frames(info, config))
            for batch in batched(windowed(posed, schedule), config.batch if independent else 1):
                results: dict[int, np.ndarray] = {}
                for w, *_ in batch:
                    if w.index < done:
                        results[w.index] = store.resume_frames(w.index)
                        stats.windows_cached += 1
                todo = [item for item in batch if item[0].index >= done]
                if todo:
                    carry = not independent and todo[0][0].carry_state
                    if carry and state is None and done:
                        state = self._resume_state(store, done - 1)
                    out, new_state = self.compute(todo, source, src_tensor, state if carry else None, config, timer)
                    state = None if independent else new_state
                    for k, (w, *_) in enumerate(todo):
                        results[w.index] = out[k, : w.valid]
                        stats.windows_generated += 1
                        store = _save_window(store, w.index, results[w.index], state)
                for w, frames, _, _ in batch:
                    stats.windows += 1
                    with timer("encode"):
                        held = self._emit(writer, w, frames, results[w.index], held, config)
                    stats.frames += w.valid - w.hold
                    bar.update(task, advance=w.valid - w.hold)
                    if on_window is not None:
                        on_window(w)
            if stats.frames == 0:
                raise InputError(f"the frame range {config.start}:{config.stop or ''} of {video} has no frames")
            closing = time.perf_counter()
        stats.seconds["encode"] += time.perf_counter() - closing  # flush, audio mux, rename
        if store is not None:
            store.prune()
        return AnimateResult(output=output, num_frames=stats.frames, fps=info.fps,
                             size=(width, config.size), stats=stats, run_key=None if store is None else store.key)

    # step 7 -------------------------------------------------------------------------
    def _emit(self, writer, w: Window, frames: list, res: np.ndarray, held, config: AnimateConfig):
        """Step 7: blend the overlap, drop padding, compose and write; returns the new held tail."""
        a, b = w.emit
        out = res[a:b].copy()
        if w.blend and held is not None:
            out[: w.blend] = blend_overlap(held, res[: w.blend])
        new_held = res[w.valid - w.hold : w.valid].copy() if w.hold else None
        if config.preview:
            side = config.size
            out = np.stack([np.concatenate([resize(o[None, :, : o.shape[1] // 2], side)[0],
                                            resize(o[None, :, o.shape[1] // 2 :], side)[0]], axis=1) for o in out])
        else:
            out = resize(out, config.size)
            if config.side_by_side:
                crops = resize(np.stack([frames[p].image for p in range(a, b)]), config.size)
                out = side_by_side(crops, out)
        for frame in out:
            writer.write(np.ascontiguousarray(frame))
        return new_held

    def _key_doc(self, photo: Path, video: Path, config: AnimateConfig) -> dict:
        """What identifies a run's generated frames (see pipeline.cache)."""
        return {
            "version": 1,
            "photo": hash_path(photo),
            "source_pose": None if config.source_pose is None else hash_path(Path(config.source_pose)),
            "video": hash_path(video),
            "poses": None if config.poses is None else hash_path(Path(config.poses)),
            "pose_weights": config.pose_weights,
            "range": [config.start, config.stop],
            "window": config.window,
            "overlap": config.overlap,
            "model_size": config.model_size,
            "skip_missing": config.skip_missing,
            "max_gap": config.max_gap,
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


def _expected_frames(info, config: AnimateConfig) -> int | None:
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
    check_inputs(Path(photo), Path(video), Path(output), config)
    pipe = AnimatePipeline.from_config(config)
    return pipe(photo, video, output, config, on_window=on_window, progress=progress)


__all__ = [
    "AnimatePipeline",
    "AnimateResult",
    "Source",
    "animate",
    "module_identity",
]
