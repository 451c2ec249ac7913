"""`AnimateConfig`: every setting of one `bdmm animate` run, as one frozen dataclass."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bdmm_cli.errors import InputError

DTYPES = ("fp32", "fp16", "bf16")
DEFAULT_WEIGHTS = "fashionvideo"
#: The pose front-end's crop size; FramePose pixels are in this frame.
CROP_SIZE = 256


@dataclass(frozen=True)
class AnimateConfig:
    """Settings of an animate run (the CLI options, one field each).

    Attributes:
        weights: generator weights: a registry name (``fashionvideo``) or a local
            folder / ``.safetensors`` / authors' ``.pth`` file (``hub.load_generator``).
        smpl: SMPL model file; None = the one installed with ``bdmm body install``.
        poses: a pose folder of the driving video written by ``bdmm pose`` (``frames/`` +
            ``kptsmpls/``); None = run the pose front-end on the video.
        source_pose: a ``kptsmpls`` JSON of the photo (the photo is then the square crop
            that JSON refers to), or a pose folder whose first frame is the photo's crop;
            None = run the pose front-end on the photo.
        pose_weights: SPIN/HMR regressor (registry name or path) for the pose front-end;
            None = the pose front-end's default.
        keypoints: the pose front-end's keypoint model: "auto" (OpenPose BODY_25 when its
            weights ``openpose-body25`` are installed, else MediaPipe), "openpose" or "mediapipe".
        size: side of the output frames in pixels (the result is resized to it).
        model_size: resolution the body model, flows, heatmaps and generator run at (the
            released weights: 256; a multiple of 64, at least 128).
        side_by_side: write driving crop | result (2*size x size).
        preview: write driving crop with the mesh overlay | source warped by the mesh flow,
            without the generator (an alignment check).
        start, stop: frame range [start, stop) of the driving video (stop None = to the end).
        device: "auto" (CUDA when available), "cpu", "cuda", "cuda:1", ...
        dtype: "fp32", or "fp16"/"bf16" (CUDA only) for the generator.
        batch: windows per generator call where windows are independent (overlap mode,
            preview); test mode carries state from window to window and runs them one by one.
        window: frames per window T (6 in the paper).
        overlap: frames shared by consecutive windows K (0 = the authors' test mode).
        skip_missing: interpolate the pose across frames where no person is found.
        max_gap: the longest run of such frames that is interpolated.
        force: overwrite an existing output file.
        cache: keep finished windows in the cache so an interrupted run resumes.
    """

    weights: str = DEFAULT_WEIGHTS
    smpl: Path | None = None
    poses: Path | None = None
    source_pose: Path | None = None
    pose_weights: str | None = None
    keypoints: str = "auto"
    size: int = 256
    model_size: int = 256
    side_by_side: bool = False
    preview: bool = False
    start: int = 0
    stop: int | None = None
    device: str = "auto"
    dtype: str = "fp32"
    batch: int = 1
    window: int = 6
    overlap: int = 0
    skip_missing: bool = False
    max_gap: int = 12
    force: bool = False
    cache: bool = True

    def validate(self) -> None:
        """InputError naming the first bad setting (cheap checks only, no file access)."""
        if self.size < 16 or self.size % 2:
            raise InputError(f"--size must be an even number of pixels >= 16, got {self.size}")
        if self.model_size < 128 or self.model_size % 64:
            raise InputError(f"the model size must be a multiple of 64 and at least 128, got {self.model_size}")
        from bdmm_cli.pose.detector import KEYPOINT_CHOICES

        if self.keypoints not in KEYPOINT_CHOICES:
            raise InputError(f"--keypoints must be one of {', '.join(KEYPOINT_CHOICES)}, got {self.keypoints!r}")
        if self.dtype not in DTYPES:
            raise InputError(f"--dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        if self.batch < 1:
            raise InputError(f"--batch must be at least 1, got {self.batch}")
        if self.max_gap < 0:
            raise InputError(f"the longest gap to interpolate must be >= 0, got {self.max_gap}")
        if self.start < 0 or (self.stop is not None and self.stop <= self.start):
            raise InputError(f"--frames {self.start}:{self.stop} is empty")
        from bdmm_cli.pipeline.windows import WindowSchedule

        WindowSchedule(self.window, self.overlap)  # InputError for a bad --window / --overlap


__all__ = ["AnimateConfig", "CROP_SIZE", "DEFAULT_WEIGHTS", "DTYPES"]
