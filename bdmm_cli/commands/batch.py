"""`bdmm batch JOBS -o OUT_DIR`: many (photo, video) pairs, one process or many under torchrun
(a thin layer over bdmm_cli.batch)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional

import typer

from bdmm_cli.commands._common import (
    KEYPOINTS_OPTION, MODEL_SIZE_OPTION, POSE_WEIGHTS_OPTION, RASTERIZER_OPTION, SIZE_OPTION, SMPL_OPTION,
    WEIGHTS_OPTION, err_console, handle_errors,
)


@handle_errors
def batch_command(
    jobs: Optional[Path] = typer.Argument(
        None, help="Job list: CSV (header: photo,video[,output,frames,retarget,side_by_side,overlap,window]) "
                   "or JSONL with the same keys. Relative paths are relative to its folder."),
    out_dir: Path = typer.Option(..., "--output-dir", "-o", help="Folder for the outputs and batch_report.jsonl."),
    photos: Optional[str] = typer.Option(None, "--photos", help="Instead of JOBS: a folder or glob of photos (with --videos: every pair)."),
    videos: Optional[str] = typer.Option(None, "--videos", help="Instead of JOBS: a folder or glob of driving videos."),
    weights: str = WEIGHTS_OPTION,
    smpl: Optional[Path] = SMPL_OPTION,
    pose_weights: Optional[str] = POSE_WEIGHTS_OPTION,
    keypoints: str = KEYPOINTS_OPTION,
    rasterizer: str = RASTERIZER_OPTION,
    size: int = SIZE_OPTION,
    model_size: int = MODEL_SIZE_OPTION,
    side_by_side: bool = typer.Option(False, "--side-by-side/--no-side-by-side", help="Write driving crop | result (default of the side_by_side column)."),
    preview: bool = typer.Option(False, "--preview/--no-preview", help="Alignment check without the generator (see `bdmm animate --help`)."),
    frames: Optional[str] = typer.Option(None, "--frames", help="Frame range A:B of every driving video (default of the frames column)."),
    device: str = typer.Option("auto", "--device", help="auto (CUDA when available; under torchrun each process takes its LOCAL_RANK's GPU), cpu or cuda."),
    dtype: str = typer.Option("fp32", "--dtype", help="fp32, or fp16 / bf16 on a GPU."),
    batch: int = typer.Option(1, "--batch", help="Windows per generator call when windows are independent (--overlap, --preview)."),
    window: int = typer.Option(6, "--window", help="Frames per window (6 in the paper; default of the window column)."),
    overlap: int = typer.Option(0, "--overlap", help="Frames shared by consecutive windows (default of the overlap column)."),
    skip_missing: bool = typer.Option(False, "--skip-missing/--no-skip-missing", help="Interpolate the pose across short gaps where no person is found."),
    max_gap: int = typer.Option(12, "--max-gap", help="Longest run of frames without a person that --skip-missing interpolates."),
    ends: str = typer.Option("trim", "--ends", help="Frames without a person at a video's start or end: trim or hold (see `bdmm animate --help`)."),
    person: Optional[int] = typer.Option(None, "--person", min=1, help="Which person of every driving video to follow: N-th from the left (default: the largest)."),
    retarget: str = typer.Option("auto", "--retarget", help="shape+camera, camera, none or auto (default of the retarget column)."),
    force: bool = typer.Option(False, "--force/--no-force", "-f", help="Overwrite output files that were already there (not written by this batch)."),
    cache: bool = typer.Option(True, "--cache/--no-cache", help="Keep each job's finished windows so a killed job resumes."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bars (rank 0 only under torchrun)."),
    as_json: bool = typer.Option(False, "--json/--no-json", help="Print the summary as JSON on stdout instead of a table."),
    allow_truncated: bool = typer.Option(False, "--allow-truncated/--no-allow-truncated", help="Use a truncated video's decodable frames instead of failing its jobs."),
) -> None:
    """Animate many (photo, video) pairs: load once, estimate each pose once, on one or many GPUs.

    Every row is checked before anything runs (exit 2 with every problem listed). Each driving video's poses and each photo's pose are estimated once for the batch. Outputs go to OUT_DIR/<photo stem>__<video stem>.mp4 (or the row's output, inside OUT_DIR); one object per job is appended to OUT_DIR/batch_report.jsonl. A job that fails (corrupt video, nobody in the photo) fails alone; the exit code is 1 when any job failed. Run the same command again after an interruption: finished jobs are skipped, a half-done job resumes from its last window.

    Under torchrun every process takes the next job from a shared counter (longest video first); only rank 0 draws the progress bars and prints the summary.

    Examples:

      bdmm batch jobs.csv -o out/

      bdmm batch --photos garments/ --videos 'dances/*.mp4' -o out/ --size 512

      torchrun --nproc-per-node 4 --no-python bdmm batch jobs.csv -o out/

      torchrun --nnodes 2 --nproc-per-node 8 --rdzv-backend c10d --rdzv-endpoint head:29500 --no-python bdmm batch jobs.csv -o /shared/out/
    """
    from bdmm_cli.batch import JobListError, read_jobs, run_batch
    from bdmm_cli.errors import MissingResourceError
    from bdmm_cli.pipeline import AnimateConfig, parse_frame_range
    from bdmm_cli.pipeline.checks import check_load
    from bdmm_cli.video.read import allowing_truncated

    start, stop = parse_frame_range(frames)
    config = AnimateConfig(
        weights=weights, smpl=smpl, pose_weights=pose_weights, keypoints=keypoints, rasterizer=rasterizer,
        size=size, model_size=model_size, side_by_side=side_by_side, preview=preview, start=start, stop=stop,
        device=device, dtype=dtype, batch=batch, window=window, overlap=overlap, skip_missing=skip_missing,
        max_gap=max_gap, ends=ends, person=person, retarget=retarget, force=force, cache=cache,
    )
    config.validate_load()
    try:
        todo = read_jobs(jobs, out_dir, config, photos=photos, videos=videos)
    except JobListError as exc:
        if os.environ.get("RANK", "0") != "0":  # under torchrun rank 0 lists the problems
            raise typer.Exit(exc.exit_code) from exc
        raise
    check_load(config)
    try:
        with allowing_truncated(allow_truncated):
            summary = run_batch(todo, out_dir, config, progress=progress)
    except MissingResourceError as exc:
        raise MissingResourceError(f"{exc} (`bdmm doctor` lists everything the main job needs)") from exc
    except KeyboardInterrupt:
        err_console.print("interrupted: finished outputs are kept; run the same command again to finish the rest")
        raise
    if summary.rank != 0:
        return  # rank 0 reports for everyone (and sets the exit code)
    if as_json:
        typer.echo(json.dumps(summary.to_dict(), indent=2))
    else:
        _print_table(summary)
    if summary.failed:
        raise typer.Exit(1)


def _print_table(summary) -> None:
    from rich.table import Table

    table = Table(title=f"bdmm batch: {summary.total} job(s) on {summary.world_size} process(es)")
    for name in ("ok", "skipped", "failed", "frames", "seconds", "jobs/hour", "videos posed", "photos posed"):
        table.add_column(name, justify="right")
    table.add_row(str(summary.ok), str(summary.skipped), str(summary.failed), str(summary.frames),
                  f"{summary.seconds:.1f}", f"{summary.jobs_per_hour:.0f}",
                  str(summary.videos_posed), str(summary.photos_posed))
    err_console.print(table)
    if summary.failures:
        failed = Table(title="failed jobs")
        for name in ("line", "photo", "video", "error"):
            failed.add_column(name, overflow="fold")
        for r in summary.failures:
            failed.add_row(str(r.get("line", "")), Path(r["photo"]).name, Path(r["video"]).name, r.get("error") or "")
        err_console.print(failed)
    err_console.print(f"report: {summary.report}")


def register(app: typer.Typer) -> None:
    app.command("batch")(batch_command)
