"""`bdmm animate PHOTO VIDEO -o OUT`: the main job (a thin layer over bdmm_cli.pipeline)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from bdmm_cli.commands._common import (
    ALLOW_TRUNCATED_OPTION, KEYPOINTS_OPTION, MODEL_SIZE_OPTION, POSE_WEIGHTS_OPTION, RASTERIZER_OPTION,
    SIZE_OPTION, SMPL_OPTION, WEIGHTS_OPTION, err_console, handle_errors,
)


@handle_errors
def animate_command(
    photo: Path = typer.Argument(..., help="Photo of the person to animate (full body works best)."),
    video: Path = typer.Argument(..., help="Driving video whose motion is transferred."),
    output: Path = typer.Option(..., "--output", "-o", help="Output MP4 (refused if it exists, unless --force)."),
    poses: Optional[Path] = typer.Option(
        None, "--poses", help="Pose folder of the driving video written by `bdmm pose` (skips pose estimation)."
    ),
    source_pose: Optional[Path] = typer.Option(
        None, "--source-pose",
        help="kptsmpls JSON of the photo (the photo is then the square crop it refers to), or a pose folder.",
    ),
    weights: str = WEIGHTS_OPTION,
    smpl: Optional[Path] = SMPL_OPTION,
    pose_weights: Optional[str] = POSE_WEIGHTS_OPTION,
    keypoints: str = KEYPOINTS_OPTION,
    rasterizer: str = RASTERIZER_OPTION,
    size: int = SIZE_OPTION,
    model_size: int = MODEL_SIZE_OPTION,
    side_by_side: bool = typer.Option(False, "--side-by-side/--no-side-by-side", help="Write driving crop | result."),
    preview: bool = typer.Option(
        False, "--preview/--no-preview", help="Alignment check without the generator: driving crop + mesh | source warped by the mesh flow."
    ),
    frames: Optional[str] = typer.Option(None, "--frames", help="Frame range A:B of the driving video (B exclusive)."),
    device: str = typer.Option("auto", "--device", help="auto (CUDA when available), cpu, cuda or cuda:N."),
    dtype: str = typer.Option("fp32", "--dtype", help="fp32, or fp16 / bf16 on a GPU."),
    batch: int = typer.Option(1, "--batch", help="Windows per generator call when windows are independent (--overlap, --preview)."),
    window: int = typer.Option(6, "--window", help="Frames per window (6 in the paper)."),
    overlap: int = typer.Option(0, "--overlap", help="Frames shared by consecutive windows, cross-faded (0 = the authors' test mode)."),
    skip_missing: bool = typer.Option(False, "--skip-missing/--no-skip-missing", help="Interpolate the pose across short gaps where no person is found."),
    max_gap: int = typer.Option(12, "--max-gap", help="Longest run of frames without a person that --skip-missing interpolates."),
    ends: str = typer.Option(
        "trim", "--ends",
        help="Frames without a person before the first and after the last frame with one (someone entering late): "
        "trim (leave them out, with a warning; the audio follows) or hold (keep them, with the nearest pose).",
    ),
    person: Optional[int] = typer.Option(
        None, "--person", min=1,
        help="Which person of the driving video to follow: N-th from the left (1 = leftmost) in the first frame "
        "where people are found (default: the largest). The run summary says how many were seen.",
    ),
    retarget: str = typer.Option(
        "auto", "--retarget",
        help="Whose body and framing the motion is drawn with: shape+camera (the photo's body shape, size and "
        "position), camera (the dancer's shape in the photo's framing), none (the dancer's body as in the video: "
        "the authors' test mode) or auto (shape+camera; none when --source-pose comes from the --poses folder).",
    ),
    force: bool = typer.Option(False, "--force/--no-force", "-f", help="Overwrite the output file."),
    cache: bool = typer.Option(True, "--cache/--no-cache", help="Use and write the pose cache and the resume data (--no-cache: neither)."),
    quiet: bool = typer.Option(False, "--quiet/--no-quiet", "-q", help="No progress bar."),
    json_out: bool = typer.Option(
        False, "--json/--no-json",
        help="Print the run summary as one JSON object on stdout (timings per stage, people seen, warnings).",
    ),
    allow_truncated: bool = ALLOW_TRUNCATED_OPTION,
) -> None:
    """Animate a person photo with the motion of a driving video.

    Writes an H.264 MP4 at the driving video's frame rate, with its audio. An interrupted run (Ctrl-C, kill) resumes from the last finished window when run again.

    Retargeting (--retarget): the driving motion is redrawn on the photo's body (shape+camera, the default for a photo): the dancer's pose, the photo's body shape, the photo's size and position in the frame (moves are scaled by photo size / dancer size in the first frame). camera keeps the dancer's body shape; none keeps the dancer's body and framing as in the video. --preview shows the dancer's fit (left) beside the retargeted body on the photo (right).

    Examples:

      bdmm animate person.jpg dance.mp4 -o out.mp4

      bdmm animate person.jpg dance.mp4 -o out.mp4 --side-by-side --frames 0:150

      bdmm animate person.jpg dance.mp4 -o check.mp4 --preview

      bdmm animate person.jpg dance.mp4 -o out.mp4 --retarget camera

      bdmm animate crop.png dance.mp4 -o out.mp4 --source-pose crop.json --poses dance_poses/

      bdmm animate person.jpg dance.mp4 -o out.mp4 --weights latest_net_G.pth --device cuda --dtype fp16

      bdmm animate person.jpg dance.mp4 -o out.mp4 --keypoints openpose

      bdmm animate person.jpg crowd.mp4 -o out.mp4 --person 2 --preview   # the 2nd person from the left

      bdmm animate person.jpg dance.mp4 -o out.mp4 --json > summary.json
    """
    from bdmm_cli.errors import MissingResourceError
    from bdmm_cli.pipeline import AnimateConfig, animate, parse_frame_range

    start, stop = parse_frame_range(frames)
    config = AnimateConfig(
        weights=weights, smpl=smpl, poses=poses, source_pose=source_pose, pose_weights=pose_weights,
        keypoints=keypoints, rasterizer=rasterizer, size=size, model_size=model_size, side_by_side=side_by_side, preview=preview, start=start, stop=stop,
        device=device, dtype=dtype, batch=batch, window=window, overlap=overlap, skip_missing=skip_missing,
        max_gap=max_gap, ends=ends, person=person, retarget=retarget, force=force, cache=cache,
        allow_truncated=allow_truncated,
    )
    try:
        result = animate(photo, video, output, config, progress=not quiet)
    except MissingResourceError as exc:
        raise MissingResourceError(f"{exc} (`bdmm doctor` lists everything the main job needs)") from exc
    except KeyboardInterrupt:
        if cache:
            err_console.print("interrupted: finished windows are kept; run the same command again to resume")
        raise
    if json_out:
        import json

        typer.echo(json.dumps(result.summary()))
        return
    s = result.stats
    resumed = f", {s.windows_cached} window(s) reused" if s.windows_cached else ""
    resumed += f", keypoints: {s.keypoints}" if s.keypoints else ""
    err_console.print(
        f"wrote {result.output} ({result.num_frames} frames, {result.fps:g} fps, "
        f"{result.size[0]}x{result.size[1]}, retarget {result.retarget}{' (auto)' if retarget == 'auto' else ''}{resumed})",
        markup=False,
    )
    if s.follow is not None:
        err_console.print(f"driving video: {s.follow.describe()}", markup=False)
    err_console.print(f"time: {result.describe_timings()}", markup=False)


def register(app: typer.Typer) -> None:
    app.command("animate")(animate_command)
