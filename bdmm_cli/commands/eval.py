"""`bdmm eval`: the paper's metrics on generated frames/videos, or on a checkpoint's test split."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Optional

import typer

from bdmm_cli.commands._common import handle_errors

HELP = """Compute the paper's metrics (SSIM, PSNR, L1, LPIPS, FID, FVD).

Give --pred and --gt: two folders of frames, two folders of videos (video files or
sub-folders of frames, paired by name), or two video files. Or give --checkpoint and
--data to generate the data set's test split first and score it.

Or give --pred a folder of the authors' 256x1280 result strips (ref | ref render | GT |
target render | generated, as their test.py writes them): GT = panel 3, generated =
panel 5, no --gt; with --data the data set's fid_stat.npz and test_frames/ are FID's and
FVD's real data, as in their script. --paper fashionvideo does all of it on the authors'
released images (downloading what is missing) and prints the paper's Table 1 beside it.

--protocol bdmm (default) reproduces the authors' evaluation; --protocol standard uses the
settings most other papers report (see bdmm_cli/metrics/README.md for every difference).

Examples:

  bdmm eval --metric all --pred results/ --gt test_frames/

  bdmm eval --metric ssim,psnr,lpips --pred out.mp4 --gt dance.mp4 --json scores.json

  bdmm eval --metric fid --pred results/ --gt gt/ --fid-stats UBC_fashion_smpl/fid_stat.npz

  bdmm eval --metric fvd --protocol standard --pred gen_videos/ --gt test_frames/ --seed 1

  bdmm eval --metric all --checkpoint generator-fashionvideo --data UBC_fashion_smpl/

  bdmm eval --pred eval_bdmm_dancefashion_checkpoints/ --data fashionvideo

  bdmm eval --paper fashionvideo --accept-licenses --json table1.json
"""


def _json_safe(value):
    """NaN/inf are not JSON: write them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def _format(value) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, dict):
        return f"{value['mean']:.4f} ± {value['std']:.4f}"
    return f"{value:.4f}"


def print_table(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    meta = result["meta"]
    table = Table(title=f"bdmm eval (protocol {meta['protocol']})")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("notes")
    for key, value in result.items():
        if key == "meta":
            continue
        note = ""
        if key.startswith("fvd"):
            info = meta.get("fvd", {}).get(key, {})
            note = info.get("skipped") or (
                f"{info.get('videos_fake')} vs {info.get('videos_real')} videos, {info.get('runs')} run(s)"
            )
        elif key == "fid":
            note = f"real statistics: {meta.get('fid_real')}"
        table.add_row(key, _format(value), note)
    Console().print(table)
    counts = meta["counts"]
    Console().print(
        f"{counts['videos']} video(s), {counts['frames_pred']} generated frame(s), "
        f"{meta['seconds']:.1f} s on {meta['device']}"
    )


@handle_errors
def eval_command(
    metric: str = typer.Option("all", "--metric", "-m", help="Comma list of ssim, psnr, l1, lpips, fid, fvd, or all."),
    pred: Optional[Path] = typer.Option(None, "--pred", help="Generated frames/videos (folder or video file)."),
    gt: Optional[Path] = typer.Option(None, "--gt", help="Ground-truth frames/videos, same layout as --pred."),
    checkpoint: Optional[str] = typer.Option(
        None, "--checkpoint", help="Generator (registry name, folder or authors' .pth) to generate the test split."
    ),
    data: Optional[str] = typer.Option(
        None, "--data", help="Data set root (UBC_fashion_smpl layout) or 'fashionvideo' (the installed copy)."
    ),
    protocol: str = typer.Option("bdmm", "--protocol", help="bdmm (the authors' protocol) or standard."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the results as one JSON object here."),
    force: bool = typer.Option(False, "--force/--no-force", help="Overwrite an existing --json file."),
    seed: int = typer.Option(0, "--seed", help="Seed of the FVD real-clip sampling."),
    device: str = typer.Option("auto", "--device", help="auto (CUDA when available), cpu, cuda or cuda:N."),
    batch: int = typer.Option(16, "--batch", help="Images per batch for the image networks."),
    fid_stats: Optional[Path] = typer.Option(
        None, "--fid-stats", help="Real FID statistics (.npz with mu, sigma), e.g. the data set's fid_stat.npz."
    ),
    fvd_runs: Optional[int] = typer.Option(
        None, "--fvd-runs", help="Override the protocol's number of FVD runs per variant (bdmm: 100/50/50)."
    ),
    cache: bool = typer.Option(True, "--cache/--no-cache", help="Reuse cached real-data statistics (--no-cache: recompute them)."),
    inception: Optional[Path] = typer.Option(
        None, "--inception", help="Local Inception-v3 weights for FID instead of the registry's (the protocol's kind)."
    ),
    alexnet: Optional[Path] = typer.Option(None, "--alexnet", help="Local AlexNet weights for LPIPS instead of the registry's."),
    i3d: Optional[Path] = typer.Option(None, "--i3d", help="Local I3D TorchScript detector for FVD (i3d_torchscript.pt)."),
    keep: Optional[Path] = typer.Option(
        None, "--keep", help="With --checkpoint: keep the generated test split in this new folder."
    ),
    body_model: Optional[Path] = typer.Option(
        None, "--body-model", help="With --checkpoint: SMPL model file (default: the installed one)."
    ),
    layout: str = typer.Option(
        "auto", "--layout", help="auto (detect the authors' result strips), strips or files."),
    fvd_real: Optional[Path] = typer.Option(
        None, "--fvd-real", help="Real videos of FVD (e.g. test_frames/); default: the ground truth."),
    paper: Optional[str] = typer.Option(
        None, "--paper", help="fashionvideo: the paper's Table 1 beside the authors' released images."),
    accept_licenses: bool = typer.Option(
        False, "--accept-licenses/--no-accept-licenses", help="With --paper: allow downloading the data set and the released images."),
) -> None:
    from bdmm_cli.errors import InputError
    from bdmm_cli.fileio import check_output_path

    from bdmm_cli.metrics.evaluate import EvalConfig, FeatureNetworks

    if json_out is not None:
        check_output_path(json_out, force)
    defaults = FeatureNetworks()
    networks = FeatureNetworks(
        inception=inception,
        lpips_backbone=alexnet if alexnet is not None else defaults.lpips_backbone,
        i3d=i3d if i3d is not None else defaults.i3d,
    )
    config = EvalConfig(
        metrics=metric, protocol=protocol, seed=seed, device=device, batch_size=batch,
        fid_stats=fid_stats, fvd_runs=fvd_runs, use_cache=cache, layout=layout, fvd_real=fvd_real,
    )
    if paper is not None:
        if any(x is not None for x in (pred, gt, checkpoint, data, keep, body_model, fid_stats, fvd_real)):
            raise InputError("--paper takes the data set and the released images by name: drop --pred, --gt, "
                             "--checkpoint, --data, --fid-stats and --fvd-real")
        from rich.console import Console
        from rich.markup import escape

        from bdmm_cli.metrics.paper import paper_comparison

        console = Console(stderr=True, highlight=False, soft_wrap=True)
        report = paper_comparison(paper, config, networks, accept_licenses=accept_licenses, progress=True,
                                  announce=lambda msg: console.print(escape(msg)))
        print_table(report["eval"])
        print_paper_table(report)
        _write_json(json_out, report, force)
        return
    if pred is not None and data is not None and checkpoint is None:  # released strips + the data set's statistics
        import dataclasses

        from bdmm_cli.dataset.layout import resolve_dataset

        root = resolve_dataset(data)
        config = dataclasses.replace(
            config, fid_stats=fid_stats or (root / "fid_stat.npz" if (root / "fid_stat.npz").is_file() else None),
            fvd_real=fvd_real or (root / "test_frames" if (root / "test_frames").is_dir() else None))
        data = None
    if checkpoint is not None or data is not None:
        if pred is not None or gt is not None:
            raise InputError("give either --pred/--gt or --checkpoint/--data, not both")
        if checkpoint is None or data is None:
            raise InputError("--checkpoint and --data go together")
        from bdmm_cli.metrics.testsplit import evaluate_checkpoint

        result = evaluate_checkpoint(
            checkpoint, data, config, networks, progress=True, body_model=body_model, keep=keep
        )
    else:
        if keep is not None or body_model is not None:
            raise InputError("--keep and --body-model go with --checkpoint/--data")
        if pred is None:
            raise InputError("give --pred and --gt, --pred STRIPS, --checkpoint and --data, or --paper")
        from bdmm_cli.metrics.evaluate import evaluate

        result = evaluate(pred, gt, config, networks, progress=True)
    print_table(result)
    _write_json(json_out, result, force)


def _write_json(json_out: Optional[Path], result: dict, force: bool) -> None:
    from bdmm_cli.fileio import atomic_output

    if json_out is not None:
        with atomic_output(json_out, force=force) as tmp:
            tmp.write_text(json.dumps(_json_safe(result), indent=2, allow_nan=False) + "\n")
        typer.echo(f"wrote {json_out}")


def print_paper_table(report: dict) -> None:
    """metric | paper | the authors' released images | difference."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{report['source']} vs the authors' released images")
    for col in ("metric", "paper", "released images", "difference"):
        table.add_column(col, justify="left" if col == "metric" else "right")
    for row in report["rows"]:
        label = row["metric"] if row["key"] == row["metric"] else f"{row['metric']} ({row['key']})"
        table.add_row(label, _format(row["paper"]), _format(row["released"]),
                      "n/a" if row["difference"] is None else f"{row['difference']:+.4f}")
    Console().print(table)


eval_command.__doc__ = HELP


def register(app: typer.Typer) -> None:
    app.command("eval", help=HELP)(eval_command)
