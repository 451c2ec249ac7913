"""Step 1 of the pipeline: validate every input and option before anything heavy runs
(:func:`check_load` for what is loaded, :func:`check_inputs` for one run)."""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

from bdmm_cli.dataset.layout import POSES_DIR
from bdmm_cli.device import resolve_device
from bdmm_cli.errors import InputError
from bdmm_cli.fileio import check_output_path
from bdmm_cli.pipeline.config import LoadSettings, RunSettings

#: Free space below which the output directory counts as full before anything runs.
MIN_FREE_BYTES = 256 * 1024
OUTPUT_SUFFIXES = (".mp4", ".mov", ".m4v", ".mkv")
_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    """``--dtype`` name -> torch dtype; InputError for fp16/bf16 off CUDA."""
    dtype = _DTYPES[name]
    if dtype != torch.float32 and device.type != "cuda":
        raise InputError(f"--dtype {name} needs a CUDA GPU; use --dtype fp32 on the CPU")
    return dtype


def check_load(settings: LoadSettings) -> None:
    """Validate what the pipeline will load (cheap: no file is read).

    Raises InputError for a bad dtype name, a missing SMPL file or weights file, or an
    unavailable device / dtype.
    """
    from bdmm_cli.hub.resolve import names_a_path

    settings.validate_load()
    if settings.smpl is not None and not Path(settings.smpl).is_file():
        raise InputError(f"SMPL model file {settings.smpl} not found")
    if names_a_path(settings.weights) and not Path(settings.weights).expanduser().exists():
        raise InputError(f"weights {settings.weights} not found")
    resolve_dtype(settings.dtype, resolve_device(settings.device))


def check_inputs(photo: Path, video: Path, output: Path, run: RunSettings):
    """Validate every input of one run, before anything heavy runs; returns the driving video's VideoInfo.

    Raises InputError (one line) for a bad run setting, a missing or unreadable photo, a
    missing file or one that is not a video, a video without a frame rate, an output that
    exists (without ``force``), is an input, sits in a missing / read-only / full directory,
    a missing pose folder or pose file. (What is loaded is checked by :func:`check_load`.)
    """
    from bdmm_cli.video import probe_video, read_image

    run.validate_run()
    photo, video, output = Path(photo), Path(video), Path(output)
    try:
        read_image(photo)
    except InputError:
        _check_order(photo, video)
        raise
    info = probe_video(video)
    if not info.fps or info.fps <= 0:
        raise InputError(f"cannot tell the frame rate of {video}")
    if output.suffix.lower() not in OUTPUT_SUFFIXES:
        raise InputError(f"output {output} must be an .mp4 file (or {', '.join(OUTPUT_SUFFIXES[1:])})")
    check_output_path(output, run.force)
    out_resolved = output.expanduser().resolve()
    for name, path in (("photo", photo), ("driving video", video)):
        if out_resolved == path.resolve():
            raise InputError(f"output {output} is the {name}; choose another output file")
    parent = output.expanduser().parent if str(output.parent) else Path(".")
    if shutil.disk_usage(parent).free < MIN_FREE_BYTES:
        raise InputError(f"no space left on the device for {output} (less than {MIN_FREE_BYTES // 1024} KiB free)")
    if run.poses is not None:
        poses = Path(run.poses)
        if not poses.is_dir() or not (poses / POSES_DIR).is_dir():
            raise InputError(f"pose folder {poses} not found (expected frames/ and kptsmpls/ written by `bdmm pose`)")
    if run.source_pose is not None and not Path(run.source_pose).exists():
        raise InputError(f"source pose {run.source_pose} not found")
    if run.start > 0 and info.num_frames and run.start >= info.num_frames + 1:
        raise InputError(f"--frames starts at {run.start} but {video} has about {info.num_frames} frames")
    return info


def _is_video(path: Path) -> bool:
    from bdmm_cli.video import probe_video

    from bdmm_cli.video.image import PHOTO_SUFFIXES

    if path.suffix.lower() in PHOTO_SUFFIXES:
        return False
    try:
        probe_video(path)
        return True
    except InputError:
        return False


def _is_image(path: Path) -> bool:
    from bdmm_cli.video import read_image

    try:
        read_image(path)
        return True
    except InputError:
        return False


def _check_order(photo: Path, video: Path) -> None:
    """InputError saying so when the photo (unreadable as an image) is a video: given the other way round."""
    if photo.is_file() and _is_video(photo) and (not video.is_file() or _is_image(video)):
        raise InputError(
            f"{photo} is a video{' and ' + str(video) + ' a photo' if video.is_file() else ''}: "
            "give the photo first, then the driving video (bdmm animate PHOTO VIDEO -o OUT)")


__all__ = ["MIN_FREE_BYTES", "OUTPUT_SUFFIXES", "check_inputs", "check_load", "resolve_dtype"]
