"""Step 1 of the pipeline: validate every input and option before anything heavy runs."""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

from bdmm_cli.dataset.layout import POSES_DIR
from bdmm_cli.device import resolve_device
from bdmm_cli.errors import InputError
from bdmm_cli.fileio import check_output_path
from bdmm_cli.pipeline.config import AnimateConfig

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


def check_inputs(photo: Path, video: Path, output: Path, config: AnimateConfig):
    """Validate everything cheap to validate; returns the driving video's VideoInfo.

    Raises InputError (one line) for a missing or unreadable photo, a missing file or one
    that is not a video, a video without a frame rate, an output that exists (without
    ``force``), is an input, sits in a missing / read-only / full directory, a missing pose
    folder, pose file, SMPL file or weights file, or an unavailable device / dtype.
    """
    from bdmm_cli.hub.resolve import names_a_path
    from bdmm_cli.video import probe_video, read_image

    config.validate()
    photo, video, output = Path(photo), Path(video), Path(output)
    read_image(photo)
    info = probe_video(video)
    if not info.fps or info.fps <= 0:
        raise InputError(f"cannot tell the frame rate of {video}")
    if output.suffix.lower() not in OUTPUT_SUFFIXES:
        raise InputError(f"output {output} must be an .mp4 file (or {', '.join(OUTPUT_SUFFIXES[1:])})")
    check_output_path(output, config.force)
    out_resolved = output.expanduser().resolve()
    for name, path in (("photo", photo), ("driving video", video)):
        if out_resolved == path.resolve():
            raise InputError(f"output {output} is the {name}; choose another output file")
    parent = output.expanduser().parent if str(output.parent) else Path(".")
    if shutil.disk_usage(parent).free < MIN_FREE_BYTES:
        raise InputError(f"no space left on the device for {output} (less than {MIN_FREE_BYTES // 1024} KiB free)")
    if config.poses is not None:
        poses = Path(config.poses)
        if not poses.is_dir() or not (poses / POSES_DIR).is_dir():
            raise InputError(f"pose folder {poses} not found (expected frames/ and kptsmpls/ written by `bdmm pose`)")
    if config.source_pose is not None and not Path(config.source_pose).exists():
        raise InputError(f"source pose {config.source_pose} not found")
    if config.smpl is not None and not Path(config.smpl).is_file():
        raise InputError(f"SMPL model file {config.smpl} not found")
    if names_a_path(config.weights) and not Path(config.weights).expanduser().exists():
        raise InputError(f"weights {config.weights} not found")
    device = resolve_device(config.device)
    resolve_dtype(config.dtype, device)
    if config.start > 0 and info.num_frames and config.start >= info.num_frames + 1:
        raise InputError(f"--frames starts at {config.start} but {video} has about {info.num_frames} frames")
    return info


__all__ = ["MIN_FREE_BYTES", "OUTPUT_SUFFIXES", "check_inputs", "resolve_dtype"]
