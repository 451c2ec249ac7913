"""`bdmm setup`: everything the main job needs, from the authors' release, in one command."""

from __future__ import annotations

from typing import List, Optional

import typer

from bdmm_cli.commands._common import handle_errors


@handle_errors
def setup_command(
    sources: Optional[List[str]] = typer.Option(
        None, "--from", help="A zip/tar archive, an unpacked folder, a file, or an http(s) URL; repeatable."),
    accept_licenses: bool = typer.Option(
        False, "--accept-licenses/--no-accept-licenses",
        help="Allow downloads (URLs, or the authors' archives and SPIN's files when no --from is given) "
             "under the licenses printed first."),
    force: bool = typer.Option(False, "--force/--no-force", "-f", help="Replace items installed earlier from a different file."),
    eval_networks: bool = typer.Option(
        False, "--eval/--no-eval",
        help="Instead: the feature networks of `bdmm eval` (Inception-v3 x2, AlexNet, LPIPS, I3D)."),
    trust_unverified: bool = typer.Option(
        False, "--trust-unverified/--no-trust-unverified",
        help="With --eval: accept the I3D detector, which has no published checksum."),
) -> None:
    """Install the SMPL model, SPIN, the BDMM weights and the authors' other files in one step.

    Files are recognised by name at any depth of each --from: smpl_model.pkl /
    SMPL_NEUTRAL.pkl, spin_ckpt.pth / model_checkpoint.pt, smpl_mean_params.npz,
    gmm_08.pkl, openpose_body25.pth, latest_net_G.pth, latest_net_D.pth,
    latest_net_D_V.pth, and DWPose's yolox_l.onnx and dw-ll_ucoco_384.onnx
    (for --keypoints dwpose; downloads are checked against their published sha256). Every file is checked by the same strict, safe loader as
    `bdmm body install` / `bdmm weights import` before anything is installed; a bad archive
    (truncated, corrupt, a member outside its folder) installs nothing. Installed files
    become the defaults: afterwards `bdmm animate PHOTO VIDEO -o OUT` needs no weight
    options and `bdmm doctor` reports the main job ready. Running it again installs nothing.

    Local archives and folders need no --accept-licenses; downloads do (each item's license
    and source is printed first). A share link that cannot be downloaded without a browser
    is printed with the `--from FILE` command to finish with.

    Examples:

      bdmm setup --accept-licenses

      bdmm setup --from ~/Downloads/SMPLDataset.zip --from ~/Downloads/bdmm_dancefashion_checkpoints.zip

      bdmm setup --from BDMM/SMPLDataset/checkpoints --from BDMM/checkpoints/bdmm_dancefashion_checkpoints

      bdmm setup --from https://example.org/model_checkpoint.pt --accept-licenses

      bdmm setup --eval --accept-licenses --trust-unverified

      bdmm setup --from ~/Downloads/yolox_l.onnx --from ~/Downloads/dw-ll_ucoco_384.onnx
    """
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from bdmm_cli.setup import run_setup

    console = Console(highlight=False, soft_wrap=True)
    if eval_networks:
        _setup_eval(console, accept_licenses, trust_unverified)
        return
    result = run_setup(list(sources or []), accept_licenses=accept_licenses, force=force,
                       announce=lambda msg: console.print(escape(msg)))
    table = Table(title="bdmm setup")
    table.add_column("item", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("from", overflow="fold")
    table.add_column("sha256", no_wrap=True)
    style = {"installed": "[green]installed[/]", "already installed": "already installed",
             "missing": "[yellow]missing[/]"}
    for row in result.rows:
        table.add_row(escape(row.item.name), style[row.status], escape(row.origin), row.sha256[:16])
    console.print(table)
    missing = [r.item for r in result.rows if r.status == "missing"]
    if missing:
        console.print("still missing: " + ", ".join(
            f"{i.name} ({' / '.join(i.files)}{', needed by bdmm animate' if i.required else ''})" for i in missing))
    else:
        console.print("everything bdmm setup installs is in place.")
    from bdmm_cli.pose.detector import keypoint_detectors

    console.print("keypoint detectors: " + "; ".join(
        f"{d.name} " + ("available" if d.available else f"not available ({escape(d.fix)})") for d in keypoint_detectors()))
    if result.unfetched:
        for u in result.unfetched:
            console.print(f"to finish: open {escape(u.source.url)}, save {escape(u.source.filename)}, "
                          f"then run `bdmm setup --from {escape(u.source.filename)}`")
        raise typer.Exit(1)


def _setup_eval(console, accept_licenses: bool, trust_unverified: bool) -> None:
    """`bdmm setup --eval`: the feature networks, verified, in a table."""
    from rich.markup import escape
    from rich.table import Table

    from bdmm_cli.metrics.networks import setup_eval_networks

    rows = setup_eval_networks(accept_licenses, trust_unverified or None, announce=lambda msg: console.print(escape(msg)))
    table = Table(title="bdmm setup --eval")
    for col in ("network", "verification", "sha256", "file"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(r["name"], r["verification"], r["sha256"][:16], escape(r["path"]))
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command("setup")(setup_command)
