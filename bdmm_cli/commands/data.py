"""`bdmm data ...`: prepare training and evaluation data sets in the authors' layout."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from bdmm_cli.commands._common import ALLOW_TRUNCATED_OPTION, HEAD_FILTER_OPTION, KEYPOINTS_OPTION, REFINE_OPTION, err_console, handle_errors

group = typer.Typer(
    help="""Prepare training and evaluation data sets (the authors' layout).

Examples:

  bdmm data download fashionvideo --accept-licenses

  bdmm data prepare videos/ -o data/mine""",
    no_args_is_help=True,
)


@group.command("prepare")
@handle_errors
def prepare_command(
    videos_dir: Path = typer.Argument(..., help="Folder of videos (or with train/ and test/ subfolders of videos)."),
    out: Path = typer.Option(..., "--out", "-o", help="Data folder to write (train/, test/, test_list.csv)."),
    test_fraction: float = typer.Option(0.0, "--test-fraction", help="Share of the videos (last by name) put in test/."),
    spin: str = typer.Option("spin", "--spin", help="SPIN weights: a registry name or a checkpoint file."),
    device: str = typer.Option(
        "auto", "--device", help="Where SPIN runs: auto (CUDA when available), cpu, cuda or cuda:N."
    ),
    refine: str = REFINE_OPTION,
    head_filter: Optional[bool] = HEAD_FILTER_OPTION,
    force: bool = typer.Option(False, "--force/--no-force", "-f", help="Write into a non-empty output folder, replacing videos."),
    keypoints: str = KEYPOINTS_OPTION,
    allow_truncated: bool = ALLOW_TRUNCATED_OPTION,
) -> None:
    """Run the pose front-end on every video and write the official data layout.

    Per video: 256x256 person crops (frames/frame_%05d.png) and BODY_25 keypoints + SMPL
    (kptsmpls/frame_%05d.json), as the authors' preprocessing (their SMPLify when
    gmm_08.pkl is installed, their head-size frame filter when SMPL is); frames without
    a person are skipped. Test videos also get test_list.csv. Train with `bdmm train --data OUT`.
    How to obtain FashionVideo and iPER: bdmm_cli/dataset/README.md.

    Examples:

      bdmm data prepare my_videos/ -o data/mine

      bdmm data prepare my_videos/ -o data/mine --test-fraction 0.1 --device cuda

      bdmm data prepare my_videos/ -o data/mine --keypoints openpose
      bdmm data prepare my_videos/ -o data/mine --refine off --no-head-filter

      bdmm train --data data/mine --out runs/mine
    """
    run_prepare(videos_dir, out, test_fraction, spin, device, refine, head_filter, force, keypoints, allow_truncated)


def run_prepare(videos_dir: Path, out: Path, test_fraction: float = 0.0, spin: str = "spin", device: str = "auto",
                refine: str = "auto", head_filter: Optional[bool] = None, force: bool = False, keypoints: str = "auto",
                allow_truncated: bool = False) -> None:
    """`bdmm data prepare` (also the last step of `bdmm data download --from-videos`)."""
    from bdmm_cli.progress import progress_bar

    from bdmm_cli.device import resolve_device
    from bdmm_cli.dataset.prepare import plan_splits, prepare_dataset
    from bdmm_cli.pose.estimate import build_estimator, estimate_video
    from bdmm_cli.pose.smplify import resolve_refinement

    from bdmm_cli.dataset.validate import check_video_files
    from bdmm_cli.video.read import allowing_truncated

    splits = plan_splits(videos_dir, test_fraction)  # fail fast on a bad folder before loading weights
    device = resolve_device(device)
    plan = resolve_refinement(refine, head_filter, device)  # a bad --refine / --head-filter before any file is read
    check_video_files([v for _, v in splits])  # every video readable, all bad ones listed at once
    estimator = build_estimator(spin, device, keypoints, plan)
    for note in plan.notes:
        err_console.print(f"note: {note}", highlight=False)
    with progress_bar(unit="videos", field="name") as progress:
        task = progress.add_task("prepare", total=None, name="")

        def on_video(i: int, n: int, name: str) -> None:
            progress.update(task, total=n, completed=i, name=name)

        with allowing_truncated(allow_truncated):
            report = prepare_dataset(videos_dir, out, lambda p: estimate_video(p, estimator), test_fraction,
                                     force, on_video)
        progress.update(task, completed=progress.tasks[0].total)
    for v in report.videos:
        note = f", {len(v.skipped)} frames without a person skipped" if v.skipped else ""
        if v.dropped:
            note += f", {len(v.dropped)} frames dropped (head too small, the authors' rule)"
        err_console.print(f"{v.split}/{v.name}: {v.frames} frames{note}")
    for name, reason in report.failed:
        err_console.print(f"[yellow]skipped[/] {name}: {reason}")
    short = [v.name for v in report.videos if v.split == "train" and v.frames < 30]
    if short:
        err_console.print(f"[yellow]note:[/] {len(short)} training videos have fewer than 30 frames and will not be used")
    err_console.print(f"wrote {out}" + (f" and {report.test_list.name}" if report.test_list else "")
                      + f" (keypoints: {estimator.keypoints_description})")


@group.command("download")
@handle_errors
def download_command(
    name: str = typer.Argument(..., help="fashionvideo (the authors' preprocessed data set), fashionvideo-results "
                                         "(their generated test-set images) or iper (--from the videos you were given)."),
    source: Optional[str] = typer.Option(
        None, "--from", help="The archive (zip/tar) or unpacked folder you downloaded, or an http(s) URL."),
    accept_licenses: bool = typer.Option(
        False, "--accept-licenses/--no-accept-licenses", help="Allow downloading, under the license printed first."),
    force: bool = typer.Option(False, "--force/--no-force", "-f", help="Replace a copy installed from a different archive."),
    data_root: Optional[str] = typer.Option(None, "--data-root", help="Where named data sets live ($BDMM_HOME/datasets)."),
    from_videos: bool = typer.Option(
        False, "--from-videos/--no-from-videos", help="Instead: the raw videos of the data set page, then `bdmm data prepare`."),
    train_list: Optional[str] = typer.Option(None, "--train-list", help="With --from-videos: the training URL list "
                                             "(file or URL; default: the registry's); for iper: train.txt."),
    test_list: Optional[str] = typer.Option(None, "--test-list", help="With --from-videos: the test URL list; "
                                            "for iper: val.txt."),
    workers: int = typer.Option(8, "--workers", help="With --from-videos: parallel downloads."),
    spin: str = typer.Option("spin", "--spin", help="With --from-videos: SPIN weights (registry name or file)."),
    device: str = typer.Option("auto", "--device", help="With --from-videos: where the pose front-end runs."),
    keypoints: str = KEYPOINTS_OPTION,
) -> None:
    """Download the authors' data set or released results, check every file, install it by name.

    fashionvideo: the authors' preprocessed UBC Fashion data (UBC_fashion_smpl: train/,
    test/, train_frames/, test_frames/, fid_stat.npz, test_list.csv), installed as
    $BDMM_HOME/datasets/fashionvideo, so `bdmm train --data fashionvideo` and
    `bdmm eval --checkpoint ... --data fashionvideo` find it. fashionvideo-results: the
    authors' generated test-set images (256x1280 strips), read by `bdmm eval --pred` and
    `bdmm eval --paper fashionvideo`.

    The archive is unpacked safely (a member outside its folder, a link or a truncated
    archive refuses it), every file is checked, and only then is the folder published with
    one rename. Running it again does nothing; an interrupted download resumes. A share
    link that needs a browser is printed with the --from command to finish with.

    Examples:

      bdmm data download fashionvideo --accept-licenses

      bdmm data download fashionvideo --from ~/Downloads/UBC_fashion_smpl.zip

      bdmm data download fashionvideo-results --accept-licenses

      bdmm data download fashionvideo --from-videos --accept-licenses --device cuda

      bdmm data download iper --from ~/Downloads/iPER_1024_video_release.zip --train-list train.txt --test-list val.txt

      bdmm train --data fashionvideo --out runs/fv

    --from-videos is the official route instead (the authors' "Option 2"): the 600 videos of
    the data set page's two URL lists, downloaded in parallel (resumable, each one decoded in
    full), then `bdmm data prepare` with the authors' preprocessing (hours; use a GPU).
    iper: the videos are given on request; --from the archive or folder you were given is
    sorted into train/test by the official split lists (train.txt, val.txt: found inside it,
    or --train-list / --test-list), then prepared the same way.
    """
    from rich.markup import escape

    from bdmm_cli.dataset.download import download_dataset

    if from_videos:
        _from_videos(name, accept_licenses, force, data_root, train_list, test_list, workers, spin, device, keypoints)
        return
    from bdmm_cli.dataset.download import load_sources

    src = load_sources().get(name)
    if src is not None and src.kind == "videos" and source is not None:
        _sorted_videos(name, source, force, data_root, train_list, test_list, spin, device, keypoints)
        return
    if train_list or test_list:
        from bdmm_cli.errors import InputError

        raise InputError("--train-list and --test-list go with --from-videos (or iper --from)")
    result = download_dataset(name, source, accept_licenses=accept_licenses, force=force, data_root=data_root,
                              progress=True, announce=lambda msg: err_console.print(escape(msg)))
    counts = ", ".join(f"{k} {v}" for k, v in result.counts.items())
    err_console.print(f"{result.name}: {result.status} at {escape(str(result.path))}"
                      + (f" ({counts} checked)" if counts and result.status == "installed" else "")
                      + (f"\n  from {escape(result.source)}" if result.source else ""))


def _from_videos(name, accept_licenses, force, data_root, train_list, test_list, workers, spin, device,
                 keypoints) -> None:
    """`bdmm data download NAME --from-videos`: the URL lists' videos, then `bdmm data prepare`."""
    from rich.markup import escape

    from bdmm_cli.dataset.download import load_sources, publish_prepared
    from bdmm_cli.dataset.videos import download_videos
    from bdmm_cli.errors import InputError

    src = load_sources().get(name)
    if src is None or not (src.train_list and src.test_list):
        routes = ", ".join(n for n, s in load_sources().items() if s.train_list)
        raise InputError(f"{name} has no raw-video route (--from-videos works for: {routes or 'none'})")
    from bdmm_cli.dataset.download import installed_path

    have = installed_path(name, data_root)
    if have is not None and not force:
        err_console.print(f"{name}: already installed at {escape(str(have))} (pass --force to prepare it again)")
        return
    lists = {"train": train_list or src.train_list, "test": test_list or src.test_list}
    err_console.print(escape(f"{name} videos: {src.videos_license or src.license}\n  lists: "
                             + ", ".join(lists.values())))
    folder = download_videos(lists, name, accept_licenses=accept_licenses, workers=workers, progress=True,
                             announce=lambda msg: err_console.print(escape(msg)))
    result = publish_prepared(
        name, lambda out: run_prepare(folder, out, spin=spin, device=device, keypoints=keypoints),
        "videos: " + ", ".join(lists.values()), force=force, data_root=data_root, progress=True)
    err_console.print(f"{result.name}: {result.status} at {escape(str(result.path))} (prepared from {escape(str(folder))})")


def _sorted_videos(name, source, force, data_root, train_list, test_list, spin, device, keypoints) -> None:
    """`bdmm data download iper --from ARCHIVE_OR_FOLDER`: sorted by the split lists, then prepared."""
    from rich.markup import escape

    from bdmm_cli.dataset.download import installed_path, publish_prepared
    from bdmm_cli.dataset.videos import sort_videos

    have = installed_path(name, data_root)
    if have is not None and not force:
        err_console.print(f"{name}: already installed at {escape(str(have))} (pass --force to prepare it again)")
        return
    folder, counts = sort_videos(Path(source), name, Path(train_list) if train_list else None,
                                 Path(test_list) if test_list else None, progress=True)
    err_console.print(f"{name}: {counts['train']} training and {counts['test']} test videos (official split lists)")
    result = publish_prepared(
        name, lambda out: run_prepare(folder, out, spin=spin, device=device, keypoints=keypoints),
        str(source), force=force, data_root=data_root, progress=True)
    err_console.print(f"{result.name}: {result.status} at {escape(str(result.path))}")


def register(app: typer.Typer) -> None:
    app.add_typer(group, name="data")
