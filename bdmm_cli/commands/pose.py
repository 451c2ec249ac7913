"""`bdmm pose`: SMPL and BODY_25 keypoints of a video or photo, in the authors' per-frame format."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from bdmm_cli.commands._common import ALLOW_TRUNCATED_OPTION, HEAD_FILTER_OPTION, KEYPOINTS_OPTION, REFINE_OPTION, handle_errors


def _ranges(indices: list[int]) -> str:
    """[1, 2, 3, 7] -> "1-3, 7"."""
    out, start, prev = [], None, None
    for i in indices:
        if start is None:
            start = prev = i
        elif i == prev + 1:
            prev = i
        else:
            out.append(f"{start}-{prev}" if prev != start else f"{start}")
            start = prev = i
    if start is not None:
        out.append(f"{start}-{prev}" if prev != start else f"{start}")
    return ", ".join(out)


def pose_command(
    source: Path = typer.Argument(..., help="A video (mp4, mov, ...) or a photo (jpg, png, ...)."),
    output: Path = typer.Option(..., "--output", "-o", help="Output folder: frames/ and kptsmpls/ are written in it."),
    spin: str = typer.Option("spin", "--spin", help="SPIN weights: a registry name or a checkpoint file/folder."),
    crop: str = typer.Option("union", "--crop", help="union (the authors': running union of boxes) or smoothed."),
    missing_joints: str = typer.Option(
        "official", "--missing-joints",
        help="official: missing joints placed like the authors' data (what the released weights saw); zero: (0, 0, 0).",
    ),
    smooth: bool = typer.Option(True, "--smooth/--no-smooth", help="One-Euro keypoint and SMPL rotation smoothing."),
    refine: str = REFINE_OPTION,
    head_filter: Optional[bool] = HEAD_FILTER_OPTION,
    largest: bool = typer.Option(
        True, "--largest-person/--first-person",
        help="Keep the largest person in each frame (default), or MediaPipe's legacy tracker alone (first person it finds).",
    ),
    keypoints: str = KEYPOINTS_OPTION,
    person: Optional[int] = typer.Option(
        None, "--person", min=1,
        help="Which person of a video to follow: N-th from the left (1 = leftmost) in the first frame with people "
        "(default: the largest).",
    ),
    frames: Optional[str] = typer.Option(None, "--frames", help="Frame range A:B of a video (B exclusive)."),
    device: str = typer.Option("auto", "--device", help="auto (CUDA when available), cpu, cuda or cuda:N."),
    cache: bool = typer.Option(True, "--cache/--no-cache", help="Reuse results of an earlier identical run."),
    force: bool = typer.Option(False, "--force/--no-force", "-f", help="Replace a non-empty output folder."),
    allow_truncated: bool = ALLOW_TRUNCATED_OPTION,
) -> None:
    """Estimate SMPL (SPIN) and BODY_25 keypoints (OpenPose when installed, else MediaPipe) for a video or a photo.

    Writes frames/frame_%05d.png (256x256 person crops) and kptsmpls/frame_%05d.json in
    the authors' format; frames without a person are skipped and listed. With the SMPL
    model installed, SPIN's fit is refined by the authors' SMPLify (when SMPLify's prior
    gmm_08.pkl is installed too) and frames failing the authors' head-size rule are
    dropped and listed. The folder can be used with `bdmm animate --poses DIR`, for
    training or for evaluation.

    Examples:

      bdmm pose dance.mp4 -o dance_poses/

      bdmm pose person.jpg -o person_pose/ --spin ~/models/model_checkpoint.pt

      bdmm pose dance.mp4 -o dance_poses/ --frames 0:300 --refine on

      bdmm pose dance.mp4 -o poses/ --refine off --no-head-filter   # SPIN, all frames

      bdmm pose street.mp4 -o poses/ --person 2   # the 2nd person from the left in the first frame with people

      bdmm pose street.mp4 -o poses/ --first-person   # MediaPipe's legacy single-person tracker

      bdmm pose dance.mp4 -o dance_poses/ --keypoints openpose   # the authors' OpenPose BODY_25

      bdmm pose dance.mp4 -o dance_poses/ --keypoints dwpose     # YOLOX + DWPose, mapped to BODY_25
    """
    from bdmm_cli.video.read import allowing_truncated

    with allowing_truncated(allow_truncated):
        _run(source, output, spin, crop, missing_joints, smooth, refine, head_filter, largest, frames, device, cache,
             force, keypoints, person)


def report_dropped(stream) -> None:
    """One stderr line for the frames the authors' head-size rule dropped (if any)."""
    from bdmm_cli.commands._common import err_console

    dropped = getattr(stream, "dropped", [])
    if dropped:
        err_console.print(f"head too small in {len(dropped)} frame(s): {_ranges(dropped)} (dropped, as the authors' "
                          "preprocessing; --no-head-filter keeps them)", highlight=False)


@handle_errors
def _run(source, output, spin, crop, missing_joints, smooth, refine, head_filter, largest, frames, device, cache,
         force, keypoints="auto", person=None) -> None:
    from bdmm_cli.progress import progress_bar

    from bdmm_cli.commands._common import err_console
    from bdmm_cli.device import resolve_device
    from bdmm_cli.errors import InputError
    from bdmm_cli.pipeline.windows import parse_frame_range
    from bdmm_cli.dataset.pose_dir import write_pose_dir
    from bdmm_cli.pose.estimate import PoseConfig, build_estimator, estimate_image, estimate_video

    source = Path(source).expanduser()
    if not source.exists():
        raise InputError(f"input not found: {source}")
    output = Path(output).expanduser()
    if output.is_dir() and any(output.iterdir()) and not force:
        raise InputError(f"output directory {output} is not empty; use --force to replace it")
    from bdmm_cli.pose.smplify import REFINE_CHOICES, resolve_refinement

    if refine not in REFINE_CHOICES:
        raise InputError(f"--refine must be one of {', '.join(REFINE_CHOICES)}, got {refine!r}")
    try:
        config = PoseConfig(crop_mode=crop, missing_joints=missing_joints, smooth_keypoints=smooth,
                            smooth_smpl=smooth, largest_person=largest, person=person)
    except ValueError as exc:
        raise InputError(str(exc)) from exc
    start, stop = parse_frame_range(frames)
    device = resolve_device(device)
    plan = resolve_refinement(refine, head_filter, device)
    estimator = build_estimator(spin, device, keypoints, plan, config)
    for note in plan.notes:
        err_console.print(f"note: {note}", highlight=False)

    from bdmm_cli.video.image import PHOTO_SUFFIXES

    if source.suffix.lower() in PHOTO_SUFFIXES:
        frame = estimate_image(source, estimator)
        if frame.pose is None and frame.dropped:
            raise InputError(f"{source}: {frame.dropped} (the authors' frame-validity rule); "
                             "use --no-head-filter to keep it")
        if frame.pose is None:
            raise InputError(f"no person found in {source}")
        write_pose_dir(iter([frame]), output, force=force)
        typer.echo(f"wrote {output}/frames/frame_00000.png and kptsmpls/frame_00000.json (keypoints: {estimator.keypoints_description})")
        return

    from bdmm_cli.video import probe_video

    info = probe_video(source)
    total = max(0, (stop if stop is not None else info.num_frames) - start) or None
    stream = estimate_video(source, estimator, start=start, stop=stop, use_cache=cache)
    with progress_bar(unit="frames", transient=True) as progress:
        task = progress.add_task("pose", total=total)
        written, _ = write_pose_dir(stream, output, force=force, on_frame=lambda f: progress.advance(task))
    note = " (from cache)" if stream.from_cache else ""
    typer.echo(f"wrote {written} frames to {output}{note} (keypoints: {estimator.keypoints_description})")
    if stream.follow is not None and stream.follow.people_seen > 1:
        err_console.print(f"{stream.follow.describe()} (--person N follows another)", highlight=False)
    if stream.missing:
        err_console.print(f"no person found in {len(stream.missing)} frame(s): {_ranges(stream.missing)} (skipped)",
                          highlight=False)
    report_dropped(stream)


def register(app: typer.Typer) -> None:
    app.command("pose")(pose_command)
