"""Settings of the animate pipeline, split by the moment they are used.

- :class:`LoadSettings`: what ``AnimatePipeline.from_config`` loads once (generator weights,
  body model, pose regressor, device, dtype);
- :class:`RunSettings`: what one call of the pipeline needs (inputs beside the photo and
  video, sizes, frame range, windows, retargeting, output handling);
- :class:`AnimateConfig`: both at once (``load`` and ``run``), built and read by the fields'
  names, one per ``bdmm animate`` option, for the one-call :func:`bdmm_cli.pipeline.animate`
  (``.load_settings`` / ``.run_settings`` hand out the parts).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path

from bdmm_cli.errors import InputError
from bdmm_cli.window.inputs import CROP_SIZE

DTYPES = ("fp32", "fp16", "bf16")
DEFAULT_WEIGHTS = "fashionvideo"
#: ``--retarget`` choices: ``auto`` and the modes of ``window.retarget``.
RETARGET_CHOICES = ("auto", "none", "camera", "shape+camera")


@dataclass(frozen=True)
class LoadSettings:
    """What the pipeline loads (``AnimatePipeline.from_config``).

    Attributes:
        weights: generator weights: a registry name (``fashionvideo``) or a local
            folder / ``.safetensors`` / authors' ``.pth`` file (``model.checkpoint.load_generator``).
        smpl: SMPL model file; None = the one installed with ``bdmm body install``.
        pose_weights: SPIN/HMR regressor (registry name or path) for the pose front-end;
            None = the pose front-end's default (loaded on first use).
        keypoints: the pose front-end's keypoint model: "auto" (OpenPose BODY_25 when its
            weights ``openpose-body25`` are installed, else DWPose when ``dwpose-det`` and
            ``dwpose-pose`` are, else MediaPipe), "openpose", "dwpose" or "mediapipe".
        device: "auto" (CUDA when available), "cpu", "cuda", "cuda:1", ...
        dtype: "fp32", or "fp16"/"bf16" (CUDA only) for the generator.
        rasterizer: the mesh-flow rasterizer: "auto" (pytorch3d where it imports and passes
            the one-triangle conformance check, else the pure-PyTorch one), "torch" or
            "pytorch3d" (``body.pytorch3d_backend.resolve_rasterizer``).
    """

    weights: str = DEFAULT_WEIGHTS
    smpl: Path | None = None
    pose_weights: str | None = None
    keypoints: str = "auto"
    device: str = "auto"
    dtype: str = "fp32"
    rasterizer: str = "auto"

    def validate_load(self) -> None:
        from bdmm_cli.body.pytorch3d_backend import RASTERIZERS

        if self.rasterizer not in RASTERIZERS:
            raise InputError(f"--rasterizer must be one of {', '.join(RASTERIZERS)}, got {self.rasterizer!r}")
        from bdmm_cli.pose.detector import KEYPOINT_CHOICES

        if self.keypoints not in KEYPOINT_CHOICES:
            raise InputError(f"--keypoints must be one of {', '.join(KEYPOINT_CHOICES)}, got {self.keypoints!r}")
        if self.dtype not in DTYPES:
            raise InputError(f"--dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")

    @property
    def load_settings(self) -> "LoadSettings":
        """Itself (an AnimateConfig hands out its ``load`` part under the same name)."""
        return self


@dataclass(frozen=True)
class RunSettings:
    """What one animate call needs (``AnimatePipeline.__call__``).

    Attributes:
        poses: a pose folder of the driving video written by ``bdmm pose`` (``frames/`` +
            ``kptsmpls/``); None = run the pose front-end on the video.
        source_pose: a ``kptsmpls`` JSON of the photo (the photo is then the square crop
            that JSON refers to), or a pose folder whose first frame is the photo's crop;
            None = run the pose front-end on the photo.
        size: side of the output frames in pixels (the result is resized to it).
        model_size: resolution the body model, flows, heatmaps and generator run at (the
            released weights: 256; a multiple of 64, at least 128).
        side_by_side: write driving crop | result (2*size x size).
        preview: write the driver's fit (driving crop + its mesh) | the retargeted body over
            the source photo (the photo warped by the mesh flow, the body outlined),
            without the generator (an alignment check).
        start, stop: frame range [start, stop) of the driving video (stop None = to the end).
        batch: windows per generator call where windows are independent (overlap mode,
            preview); test mode carries state from window to window and runs them one by one.
        window: frames per window T (6 in the paper).
        overlap: frames shared by consecutive windows K (0 = the authors' test mode).
        skip_missing: interpolate the pose across frames inside the clip where no person is found.
        max_gap: the longest run of such frames that is interpolated.
        ends: frames without a person before the first and after the last frame with one
            (a walker entering late): "trim" leaves them out (with a warning), "hold" gives
            them the nearest pose (``pipeline.frames.fill_gaps``).
        person: the person of the driving video to animate with: None = the largest in the
            first frame with people, N = the N-th from the left there (1-based); followed
            through the clip by position, size and keypoints (``pose.follow``).
        retarget: ``auto`` | ``none`` | ``camera`` | ``shape+camera`` (``window.retarget``);
            ``auto`` is ``none`` when the source frame comes from the driving pose folder
            itself (``source_pose`` in ``poses``), else ``shape+camera`` (:func:`resolve_retarget`).
        force: overwrite an existing output file.
        cache: keep finished windows in the cache so an interrupted run resumes.
        allow_truncated: use a truncated driving video's decodable frames (with a warning)
            instead of stopping (``video.read.allowing_truncated`` for the run).
    """

    poses: Path | None = None
    source_pose: Path | None = None
    size: int = 256
    model_size: int = 256
    side_by_side: bool = False
    preview: bool = False
    start: int = 0
    stop: int | None = None
    batch: int = 1
    window: int = 6
    overlap: int = 0
    skip_missing: bool = False
    max_gap: int = 12
    ends: str = "trim"
    person: int | None = None
    retarget: str = "auto"
    force: bool = False
    cache: bool = True
    allow_truncated: bool = False

    def validate_run(self) -> None:
        """InputError naming the first bad setting (cheap checks only, no file access)."""
        if self.size < 16 or self.size % 2:
            raise InputError(f"--size must be an even number of pixels >= 16, got {self.size}")
        if self.model_size < 128 or self.model_size % 64:
            raise InputError(f"the model size must be a multiple of 64 and at least 128, got {self.model_size}")
        if self.batch < 1:
            raise InputError(f"--batch must be at least 1, got {self.batch}")
        if self.max_gap < 0:
            raise InputError(f"the longest gap to interpolate must be >= 0, got {self.max_gap}")
        if self.start < 0 or (self.stop is not None and self.stop <= self.start):
            raise InputError(f"--frames {self.start}:{self.stop} is empty")
        if self.ends not in ("trim", "hold"):
            raise InputError(f"--ends must be trim or hold, got {self.ends!r}")
        if self.person is not None and self.person < 1:
            raise InputError(f"--person counts from 1 (the leftmost person), got {self.person}")
        if self.retarget not in RETARGET_CHOICES:
            raise InputError(f"--retarget must be one of {', '.join(RETARGET_CHOICES)}, got {self.retarget!r}")
        from bdmm_cli.window.schedule import WindowSchedule

        WindowSchedule(self.window, self.overlap)  # InputError for a bad --window / --overlap

    @property
    def run_settings(self) -> "RunSettings":
        """Itself (an AnimateConfig hands out its ``run`` part under the same name)."""
        return self


@dataclass(frozen=True, init=False)
class AnimateConfig:
    """Every setting of one ``bdmm animate`` run, one per CLI option: what is loaded
    (``load``, a :class:`LoadSettings`) and what one call needs (``run``, a :class:`RunSettings`).

    Built from the fields of both by name, ``AnimateConfig(weights="fashionvideo",
    side_by_side=True)`` (or from the two records, ``AnimateConfig(load, run)``), and read the
    same way (``config.weights``, ``config.side_by_side``); ``load_settings`` /
    ``run_settings`` hand each part to ``AnimatePipeline.from_config`` and to the call.
    """

    load: LoadSettings
    run: RunSettings

    def __init__(self, load: LoadSettings | None = None, run: RunSettings | None = None, **settings) -> None:
        load_names = {f.name for f in fields(LoadSettings)}
        run_names = {f.name for f in fields(RunSettings)}
        unknown = sorted(set(settings) - load_names - run_names)
        if unknown:
            raise TypeError(f"AnimateConfig has no setting {', '.join(unknown)}")
        load = replace(load or LoadSettings(), **{k: v for k, v in settings.items() if k in load_names})
        run = replace(run or RunSettings(), **{k: v for k, v in settings.items() if k in run_names})
        object.__setattr__(self, "load", load)
        object.__setattr__(self, "run", run)

    def __getattr__(self, name: str):
        """A setting of either part by its name (``config.weights``, ``config.preview``)."""
        if name in ("load", "run") or name.startswith("__"):
            raise AttributeError(name)
        for part in (self.load, self.run):
            if name in {f.name for f in fields(part)}:
                return getattr(part, name)
        raise AttributeError(f"AnimateConfig has no setting {name!r}")

    @property
    def load_settings(self) -> LoadSettings:
        return self.load

    @property
    def run_settings(self) -> RunSettings:
        return self.run

    def validate(self) -> None:
        """InputError naming the first bad setting (cheap checks only, no file access)."""
        self.run.validate_run()
        self.load.validate_load()

    def validate_run(self) -> None:
        self.run.validate_run()

    def validate_load(self) -> None:
        self.load.validate_load()


def resolve_retarget(run: RunSettings) -> str:
    """The retargeting mode a run uses: ``run.retarget`` unless it is ``auto``.

    ``auto``: ``none`` when the source frame comes from the driving video itself (the
    ``--source-pose`` folder is the ``--poses`` folder, or its JSON lies in that folder's
    ``kptsmpls/``: the authors' test mode, same person), else ``shape+camera`` (a photo of
    someone else). ``bdmm eval --checkpoint --data`` never retargets (the paper's protocol).
    """
    if run.retarget != "auto":
        return run.retarget
    if run.source_pose is not None and run.poses is not None:
        sp = Path(run.source_pose).expanduser().resolve()
        folder = Path(run.poses).expanduser().resolve()
        if sp == folder or (sp.is_file() and sp.parent.parent == folder):
            return "none"
    return "shape+camera"


__all__ = ["AnimateConfig", "CROP_SIZE", "DEFAULT_WEIGHTS", "DTYPES", "LoadSettings", "RETARGET_CHOICES",
           "RunSettings", "resolve_retarget"]
